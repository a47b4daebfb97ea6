"""Step1XEditPipeline as a diffusers pipeline: save_pretrained -> from_pretrained in upstream's layout gives
the same edits bit for bit, and the sampling numerics follow the reference scripts (dtypes of t and of the
latents, the truncating uint8 conversion, both resizes, v1.1's bf16 encode, the upstream-style noise)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from model.latents import image_to_pixels, pack, pixels_to_uint8, vae_downsample
from model.mllm import Step1XMLLMEncoder
from model.sampler import Step1XEditPipeline, damped_cfg, resize_for_size_level
from model.tiny import byte_tokenizer, tiny_qwen, tiny_transformer, tiny_vae

PHOTO = "examples/photos/chelsea.png"


def tiny(version: str = "v1.1") -> Step1XEditPipeline:
    encoder = Step1XMLLMEncoder(tiny_qwen(), byte_tokenizer())
    pipe = Step1XEditPipeline.from_parts(tiny_transformer(version), tiny_vae(), encoder, version=version)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("version", ["v1.0", "v1.1"])
def test_save_pretrained_then_from_pretrained_edits_identically(tmp_path, version: str) -> None:
    pipe = tiny(version)
    photo = Image.open(PHOTO)
    before = pipe(image=photo, prompt="add a red hat", size_level=48, num_inference_steps=3, seed=1)
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert {k for k in index if not k.startswith("_")} == {
        "scheduler",
        "vae",
        "text_encoder",
        "processor",
        "transformer",
        "version",
    }
    assert (
        index["transformer"] == ["diffusers", "Step1XEditTransformer2DModel"] and index["version"] == version
    )
    config = json.loads((tmp_path / "transformer" / "config.json").read_text())
    assert config["_class_name"] == "Step1XEditTransformer2DModel" and config["connector_depth"] == 1
    with safe_open(str(tmp_path / "transformer" / "diffusion_pytorch_model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert {
        "time_embed.in_layer.weight",
        "connector.S.individual_token_refiner.blocks.0.self_attn_qkv.weight",
    } <= keys
    assert ("connector.scale_factor" in keys) == (version == "v1.0")
    again = Step1XEditPipeline.from_pretrained(tmp_path, torch_dtype=torch.float32)
    again.set_progress_bar_config(disable=True)
    assert again.config.version == version
    assert again.transformer.config.reference_id_offset == pipe.transformer.config.reference_id_offset
    after = again(image=photo, prompt="add a red hat", size_level=48, num_inference_steps=3, seed=1)
    assert torch.equal(after.latents[0], before.latents[0])
    assert np.array_equal(np.asarray(after.images[0]), np.asarray(before.images[0]))


def test_uint8_conversion_truncates_like_torchvision_and_rounds_by_default() -> None:
    from torchvision.transforms.functional import to_pil_image

    pixels = torch.rand(3, 17, 23) * 2.2 - 1.1  # a little outside [-1, 1] too: clamped
    expected = np.asarray(to_pil_image(pixels.clamp(-1, 1).mul(0.5).add(0.5)))  # the reference's conversion
    assert np.array_equal(pixels_to_uint8(pixels, truncate=True), expected)
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    assert np.array_equal(pixels_to_uint8(image_to_pixels(Image.fromarray(photo))), photo)  # exact round trip


@pytest.mark.parametrize(("version", "resample"), [("v1.0", Image.BICUBIC), ("v1.1", Image.LANCZOS)])
def test_resizes_and_encode_precision_follow_the_release_script(version: str, resample: int) -> None:
    pipe = tiny(version)
    photo = Image.open(PHOTO)
    seen: dict = {}

    def on_encode(module, args):  # noqa: ANN001, ANN202 - torch's hook signature
        seen["pixels"], seen["autocast"] = args[0].float(), torch.is_autocast_enabled("cpu")

    handle = pipe.vae.encoder.register_forward_pre_hook(on_encode)
    try:
        result = pipe(image=photo, prompt="make it snow", size_level=48, num_inference_steps=2, seed=3)
    finally:
        handle.remove()
    size = resize_for_size_level(*photo.size, 48)
    assert torch.equal(seen["pixels"][0], image_to_pixels(photo.convert("RGB").resize(size, resample)))
    assert seen["autocast"] == (version == "v1.1")  # v1.1 encodes under bf16 autocast
    decoded = pipe._decode(result.latents[0][None])[0]
    # back to the input size with PIL's default filter (bicubic), as both scripts do
    assert np.array_equal(np.asarray(result.images[0]), np.asarray(decoded.resize(photo.size, Image.BICUBIC)))


def reference_state_dtypes(sigmas: list[float], truncate: float) -> list[torch.dtype]:
    """The dtype of the reference loop's latents (and so of its t) at each step, written out: bf16 noise;
    pred is fp32 on norm-damped steps (t > truncate), bf16 otherwise; img + dt * pred promotes."""
    state, dtypes = torch.bfloat16, []
    for t in sigmas:
        dtypes.append(state)
        state = torch.promote_types(state, torch.float32 if t > truncate else torch.bfloat16)
    return dtypes


@pytest.mark.parametrize("version", ["v1.0", "v1.1"])
def test_timestep_and_latents_dtype_follow_the_reference(version: str) -> None:
    pipe = tiny(version)
    pipe.transformer.to(torch.bfloat16)
    steps, seen_t, seen_x = 5, [], []

    def on_connector(module, args):  # noqa: ANN001, ANN202
        seen_t.append(args[2].dtype)  # (hidden_states, mask, timestep)

    def on_transformer(module, args, kwargs):  # noqa: ANN001, ANN202
        seen_x.append(kwargs["latents"].dtype)

    hooks = [
        pipe.transformer.connector.register_forward_pre_hook(on_connector),
        pipe.transformer.register_forward_pre_hook(on_transformer, with_kwargs=True),
    ]
    try:
        pipe(image=Image.open(PHOTO), prompt="add a hat", size_level=32, num_inference_steps=steps, seed=2)
    finally:
        for h in hooks:
            h.remove()
    sigmas = pipe.scheduler.sigmas[:steps].tolist()
    expected = reference_state_dtypes(sigmas, pipe.recipe.cfg_truncate)
    assert seen_t == expected and seen_x == expected
    assert (torch.float32 in expected) == (version == "v1.1")  # v1.1's damped first step promotes


def test_damped_cfg_returns_the_reference_dtypes() -> None:
    cond, uncond = (torch.randn(1, 4, 8).bfloat16() * 3 for _ in range(2))
    assert damped_cfg(cond, uncond, 6.0, damp=True).dtype == torch.float32
    assert damped_cfg(cond, uncond, 6.0, damp=False).dtype == torch.bfloat16


def test_noise_like_upstream_is_the_reference_draw() -> None:
    pipe = tiny()
    pipe.transformer.to(torch.bfloat16)
    pipe.noise_like_upstream = True
    first: list[torch.Tensor] = []
    handle = pipe.transformer.register_forward_pre_hook(
        lambda m, a, k: first.append(k["latents"]) if not first else None, with_kwargs=True
    )
    photo = Image.open(PHOTO)
    try:
        pipe(image=[photo, photo], prompt="add a hat", size_level=32, num_inference_steps=1, seed=9)
    finally:
        handle.remove()
    w, h = resize_for_size_level(*photo.size, 32)
    f = vae_downsample(pipe.vae)
    shape = (1, pipe.vae.config.latent_channels, h // f, w // f)
    # the reference: torch.randn(..., dtype=bf16, generator=torch.Generator(device).manual_seed(seed))
    noise = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(9), dtype=torch.bfloat16)
    assert torch.equal(first[0], pack(noise).repeat(4, 1, 1))  # both images, cond and uncond: one draw


def test_attention_backend_applies_to_the_dit_only() -> None:
    pipe = tiny()
    photo = Image.open(PHOTO)
    before = pipe(image=photo, prompt="add a hat", size_level=32, num_inference_steps=2).latents[0]
    pipe.transformer.set_attention_backend("native")  # what a diffusers user calls
    blocks = [*pipe.transformer.dit.transformer_blocks, *pipe.transformer.dit.single_transformer_blocks]
    assert all(b.attn.processor._attention_backend == "native" for b in blocks)
    refiner = pipe.transformer.connector.refiner.token_refiner.refiner_blocks[0].attn.processor
    assert getattr(refiner, "_attention_backend", None) is None
    after = pipe(image=photo, prompt="add a hat", size_level=32, num_inference_steps=2).latents[0]
    assert torch.equal(after, before)  # the default already is torch SDPA
    with pytest.raises(ValueError, match="must be one of"):
        pipe.transformer.set_attention_backend("no-such-kernel")
