"""The one place where evaluation calls the Step1X-Edit sampler: settings in, an edit function out.

Everything else in model/eval sees `Editor` only, so pointing evaluation at another sampler entry point (a
diffusers pipeline, another model) changes this file alone. torch and the model code are imported only when
an editor is built: scoring and reporting do without them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from PIL import Image

# (input images, instructions) -> edited images at the input sizes, in order
Editor = Callable[[list[Image.Image], list[str]], list[Image.Image]]


@dataclass(frozen=True)
class EditSettings:
    """What decides the edited images: recorded with the outputs, and checked again on resume."""

    version: str = "v1.1"
    ckpt: str | None = None
    lora_scale: float = 1.0
    tiny: bool = False  # tiny random models (tests, smoke runs): not a real evaluation
    size_level: int = 512
    steps: int = 28
    cfg: float = 6.0
    seed: int = 42

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def batch_size_key(image_size: tuple[int, int], settings: EditSettings) -> tuple[int, int]:
    """The size an input is edited at: inputs with the same one run as one denoiser batch."""
    from model.sampler import resize_for_size_level  # torch and diffusers: only when generating

    return resize_for_size_level(*image_size, settings.size_level)


def load_editor(
    settings: EditSettings, device: str, models_dir: str | None, offload: bool = False, compile: bool = False
) -> Editor:
    """Build the sampler for `settings` on `device` (weights from the local models folder)."""
    import torch

    if settings.tiny:
        from model.mllm import Step1XMLLMEncoder
        from model.sampler import Step1XEditSampler
        from model.tiny import byte_tokenizer, tiny_qwen, tiny_transformer, tiny_vae

        encoder = Step1XMLLMEncoder(tiny_qwen(), byte_tokenizer())
        sampler = Step1XEditSampler(
            tiny_transformer(settings.version), tiny_vae(), encoder, device=device, version=settings.version
        )
    else:
        from model.loading import load_sampler

        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        sampler = load_sampler(
            models_dir,
            settings.version,
            settings.ckpt,
            device,
            dtype=dtype,
            offload=offload,
            lora_scale=settings.lora_scale,
        )
    if compile:
        sampler.compile_blocks()

    def edit(images: list[Image.Image], instructions: list[str]) -> list[Image.Image]:
        result = sampler.edit(
            images,
            instructions,
            size_level=settings.size_level,
            num_steps=settings.steps,
            guidance=settings.cfg,
            seed=settings.seed,
        )
        return result.images

    return edit
