"""The sampler end to end on tiny random models (CPU), and its pieces against the documented formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from model.cli_edit import main as edit_main
from model.latents import pack, unpack
from model.mllm import Step1XMLLMEncoder
from model.sampler import (
    Step1XEditPipeline,
    StepSkipping,
    damped_cfg,
    make_scheduler,
    resize_for_size_level,
)
from model.tiny import byte_tokenizer, tiny_qwen, tiny_transformer, tiny_vae

PHOTO = "examples/photos/chelsea.png"


@pytest.fixture(scope="module")
def sampler() -> Step1XEditPipeline:
    encoder = Step1XMLLMEncoder(tiny_qwen(), byte_tokenizer())
    return Step1XEditPipeline.from_parts(tiny_transformer("v1.1"), tiny_vae(), encoder)


def test_edit_end_to_end_batches_sizes_and_seeds(sampler: Step1XEditPipeline) -> None:
    photo = Image.open(PHOTO)
    small = photo.resize((90, 130))
    images, instructions = [photo, small, photo], ["make it blue", "add snow", "make it blue"]
    result = sampler.edit(images, instructions, size_level=48, num_steps=3, seed=7)
    assert [im.size for im in result.images] == [im.size for im in images]  # resized back to the input
    w, h = resize_for_size_level(*photo.size, 48)
    assert result.latents[0].shape == (4, h // 2, w // 2)  # tiny VAE downsamples 2x
    assert np.asarray(result.images[0]).std() > 1  # not a constant image
    # images 0 and 2 ran in one batch with identical inputs: the same output, and the same as alone
    torch.testing.assert_close(result.latents[0], result.latents[2])
    again = sampler.edit([photo], ["make it blue"], size_level=48, num_steps=3, seed=7)
    torch.testing.assert_close(again.latents[0], result.latents[0])  # seeded, batch-independent
    other = sampler.edit([photo], ["make it blue"], size_level=48, num_steps=3, seed=8)
    assert not torch.equal(other.latents[0], result.latents[0])
    # the instruction reaches the output through the MLLM states
    instr = sampler.edit([photo], ["remove the cat"], size_level=48, num_steps=3, seed=7)
    assert not torch.equal(instr.latents[0], result.latents[0])


def test_offload_gives_the_same_result(sampler: Step1XEditPipeline) -> None:
    photo = Image.open(PHOTO)
    on = sampler.edit([photo], ["add a hat"], size_level=32, num_steps=2, seed=1)
    offloaded = Step1XEditPipeline.from_parts(sampler.transformer, sampler.vae, sampler.encoder, offload=True)
    off = offloaded.edit([photo], ["add a hat"], size_level=32, num_steps=2, seed=1)
    assert torch.equal(on.latents[0], off.latents[0])


def test_low_memory_vae_tiles_in_bf16_close_to_the_reference_vae(sampler: Step1XEditPipeline) -> None:
    photo = Image.open(PHOTO)
    low = Step1XEditPipeline.from_parts(sampler.transformer, tiny_vae(), sampler.encoder)
    low.low_memory_vae(torch.bfloat16, tile=32)  # a 64-pixel edit is encoded and decoded as 4 blended tiles
    assert low.vae.dtype == torch.bfloat16 and low.vae.tile_latent_min_size == 16
    ref = sampler.edit([photo], ["add a hat"], size_level=64, num_steps=2, seed=5)
    out = low.edit([photo], ["add a hat"], size_level=64, num_steps=2, seed=5)
    a = np.asarray(ref.images[0], dtype=np.float32)
    b = np.asarray(out.images[0], dtype=np.float32)
    assert a.shape == b.shape and 0 < np.abs(a - b).mean() < 8  # changed by tiling and bf16, but slightly


def test_step_skipping_runs_the_dit_on_its_schedule_only(sampler: Step1XEditPipeline) -> None:
    photo = Image.open(PHOTO)
    calls: list[int] = []
    hook = sampler.transformer.register_forward_hook(lambda *_: calls.append(1))
    try:
        full = sampler.edit([photo], ["add a hat"], size_level=32, num_steps=8, seed=3)
        assert len(calls) == 8
        sampler.step_skipping = StepSkipping(warmup=2, interval=1)  # every step computes: the same result
        every = sampler.edit([photo], ["add a hat"], size_level=32, num_steps=8, seed=3)
        assert len(calls) == 16 and torch.equal(every.latents[0], full.latents[0])
        sampler.step_skipping = StepSkipping(warmup=2, interval=3)  # steps 0, 1, 3, 6 run the DiT
        skipped = sampler.edit([photo], ["add a hat"], size_level=32, num_steps=8, seed=3)
        assert len(calls) == 20
        assert torch.isfinite(skipped.latents[0]).all()
        assert not torch.equal(skipped.latents[0], full.latents[0])
        # an extrapolated velocity stays close to the computed one on a smooth trajectory
        err = (skipped.latents[0] - full.latents[0]).norm() / full.latents[0].norm()
        assert err < 0.1
    finally:
        hook.remove()
        sampler.step_skipping = None
    with pytest.raises(ValueError, match="warmup"):
        StepSkipping(warmup=1)


@pytest.mark.parametrize(
    ("w", "h", "level"), [(451, 300, 512), (300, 451, 512), (1024, 1024, 1024), (640, 480, 768)]
)
def test_size_level_resize(w: int, h: int, level: int) -> None:
    nw, nh = resize_for_size_level(w, h, level)
    assert nw % 16 == 0 and nh % 16 == 0
    assert abs(nw * nh - level**2) / level**2 < 0.08
    assert abs(nw / nh - w / h) < 0.08


def test_schedule_is_step1x_get_schedule() -> None:
    """sigmas = shift(linspace(1, 0, N+1)) with mu = 0.5 + 0.65 (L - 256) / 3840 (step1x_model.md §6.2)."""
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    for tokens, steps in ((1024, 28), (4096, 28), (256, 4)):
        sched = make_scheduler()
        sched.set_timesteps(
            sigmas=np.linspace(1, 1 / steps, steps), mu=calculate_shift(tokens, 256, 4096, 0.5, 1.15)
        )
        mu = 0.5 + (1.15 - 0.5) * (tokens - 256) / (4096 - 256)
        t = np.linspace(1, 0, steps + 1)
        with np.errstate(divide="ignore"):
            expected = np.where(t > 0, math.exp(mu) / (math.exp(mu) + (1 / t - 1)), 0.0)
        np.testing.assert_allclose(sched.sigmas.numpy(), expected, atol=1e-6)
    assert math.isclose(math.exp(1.15), 3.158, rel_tol=1e-3)  # the 1024^2 shift quoted in the reference


def test_damped_cfg() -> None:
    cond, uncond = torch.randn(2, 5, 64) * 3, torch.randn(2, 5, 64) * 3
    assert torch.allclose(damped_cfg(cond, uncond, 6.0, damp=False), uncond + 6 * (cond - uncond))
    diff = cond - uncond
    norm = diff.norm(dim=-1, keepdim=True)
    expected = uncond + 6 * diff / torch.where(norm > 1, norm**0.4, torch.ones_like(norm))
    assert torch.allclose(damped_cfg(cond, uncond, 6.0, damp=True), expected, atol=1e-6)
    small = uncond + 0.01 * torch.randn(2, 5, 64)  # |diff| < 1: no damping
    assert torch.allclose(damped_cfg(small, uncond, 6.0, True), damped_cfg(small, uncond, 6.0, False))


def test_pack_layout_and_inverse() -> None:
    z = torch.randn(2, 16, 6, 8)
    tokens = pack(z)
    assert tokens.shape == (2, 12, 64)
    # feature index c*4 + ph*2 + pw of token (row r, col c) is z[c, 2r+ph, 2c+pw]
    assert tokens[1, 1 * 4 + 2, 5 * 4 + 1 * 2 + 0] == z[1, 5, 2 * 1 + 1, 2 * 2 + 0]
    assert torch.equal(unpack(tokens, 3, 4), z)


def test_cli_tiny(tmp_path, keep_torch_threads) -> None:
    out = tmp_path / "out.png"
    edit_main(
        [
            "--tiny",
            "--image",
            PHOTO,
            "--instruction",
            "make it snow",
            "--out",
            str(out),
            "--size-level",
            "32",
            "--steps",
            "2",
            "--device",
            "cpu",
        ]
    )
    assert Image.open(out).size == Image.open(PHOTO).size
    skipped = tmp_path / "skipped.png"
    args = ["--tiny", "--image", PHOTO, "--instruction", "make it snow", "--out", str(skipped)]
    edit_main([*args, "--size-level", "32", "--steps", "5", "--skip-steps", "2,2", "--device", "cpu"])
    assert Image.open(skipped).size == Image.open(PHOTO).size
    with pytest.raises(ValueError, match="must be one of"):
        edit_main([*args, "--attention", "no-such-kernel", "--device", "cpu"])


def test_missing_models_folder_is_one_clear_error(tmp_path) -> None:
    from model.loading import load_sampler

    with pytest.raises(FileNotFoundError, match="step1x-edit-v1p1-official.safetensors"):
        load_sampler(tmp_path, "v1.1", device="cpu")
