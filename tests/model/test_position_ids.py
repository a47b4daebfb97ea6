"""The reference image's RoPE ids reach the DiT as the reference inference.py builds them, at inference and
in training: v1.1 (1, r+1, c+1), v1.0 (0, r, c), the target (0, r, c) and the text (0, 0, 0)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from model.data import Batch
from model.latents import image_ids, image_to_pixels
from model.mllm import Step1XMLLMEncoder
from model.tiny import TINY_TRANSFORMER, byte_tokenizer, tiny_qwen, tiny_transformer, tiny_vae
from model.train import Features, TrainConfig, flow_loss

PHOTO = "examples/photos/chelsea.png"


def upstream_ids(version: str, h: int, w: int) -> torch.Tensor:
    """[2*h*w, 3]: the target's ids then the reference's, by the reference prepare()'s rule written out:
    zeros (target, and v1.0's reference) or ones (v1.1's reference), plus the row and column ranges."""
    out = []
    for start in (torch.zeros, torch.zeros if version == "v1.0" else torch.ones):
        ids = start(h, w, 3)
        ids[..., 1] = ids[..., 1] + torch.arange(h)[:, None]
        ids[..., 2] = ids[..., 2] + torch.arange(w)[None, :]
        out.append(ids.reshape(h * w, 3))
    return torch.cat(out)


class CapturedIds:
    """Records the img_ids and txt_ids of every DiT call."""

    def __init__(self, dit: torch.nn.Module) -> None:
        self.img: list[torch.Tensor] = []
        self.txt: list[torch.Tensor] = []
        self.handle = dit.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):  # noqa: ANN001, ANN202 - torch's hook signature
        self.img.append(kwargs["img_ids"].cpu())
        self.txt.append(kwargs["txt_ids"].cpu())


def test_image_ids_follow_the_upstream_rule() -> None:
    assert torch.equal(image_ids(3, 5, (1, 1, 1)), upstream_ids("v1.1", 3, 5)[15:])
    assert torch.equal(image_ids(3, 5), upstream_ids("v1.0", 3, 5)[15:])
    assert image_ids(3, 5, (1, 1, 1))[0].tolist() == [1, 1, 1]  # the reference starts one token down-right


@pytest.mark.parametrize("version", ["v1.0", "v1.1"])
def test_inference_passes_the_upstream_ids(version: str) -> None:
    model = tiny_transformer(version)
    captured = CapturedIds(model.dit)
    grid = (3, 4)
    n, c = grid[0] * grid[1], TINY_TRANSFORMER["in_channels"]
    states = torch.randn(2, 7, TINY_TRANSFORMER["mllm_hidden_size"])
    with torch.no_grad():
        model(
            torch.randn(2, n, c),
            torch.randn(2, n, c),
            states,
            torch.ones(2, 7),
            torch.tensor([0.5, 0.5]),
            grid,
        )
    assert torch.equal(captured.img[0], upstream_ids(version, *grid))
    assert torch.equal(captured.txt[0], torch.zeros(7, 3))


@pytest.mark.parametrize("version", ["v1.0", "v1.1"])
def test_training_passes_the_upstream_ids(version: str) -> None:
    """flow_loss, the trainer's objective, runs the same forward with the same ids as inference."""
    transformer, vae = tiny_transformer(version), tiny_vae()
    encoder = Step1XMLLMEncoder(tiny_qwen(), byte_tokenizer())
    features = Features(vae, encoder, None, torch.device("cpu"))
    photo = Image.open(PHOTO).convert("RGB").resize((48, 32))
    pixels = image_to_pixels(photo)[None]
    batch = Batch(
        ids=["a"],
        source=pixels,
        target=pixels.flip(-1),
        mask=torch.ones(1, 1, 32, 48),
        instructions=["mirror it"],
        languages=["en"],
        instruction_options=[{"en": "mirror it"}],
        source_images=[photo],
    )
    captured = CapturedIds(transformer.dit)
    cfg = TrainConfig(version=version)
    scale = (vae.config.shift_factor, vae.config.scaling_factor)
    loss = flow_loss(
        cfg, transformer, features, batch, torch.Generator().manual_seed(0), torch.device("cpu"), scale
    )
    loss.backward()
    assert torch.isfinite(loss)
    # the tiny VAE downsamples 2x: 32x48 pixels -> 16x24 latents -> an 8x12 token grid
    assert torch.equal(captured.img[0], upstream_ids(version, 8, 12))
