"""Full-size Step1X-Edit components with random weights, built directly on the device.

For benchmarks and `step1x-train --init random`: the released shapes (12.4 B-parameter DiT + connector,
Qwen2.5-VL-7B, the FLUX VAE) with nothing to load, so a run at full size needs no weights. Building on the
device takes seconds (the random initialisation runs there too); nothing these models produce is a trained
model's output. The tokenizer is the offline byte-level one of `model/tiny.py`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from diffusers import AutoencoderKL

from model.latents import FLUX_VAE_CONFIG
from model.mllm import Step1XMLLMEncoder
from model.tiny import byte_tokenizer, qwen_config
from model.transformer import Step1XEditTransformer


@contextlib.contextmanager
def built_on(device: torch.device | str, dtype: torch.dtype) -> Iterator[None]:
    """Modules constructed inside are allocated (and initialised) on `device`, in `dtype`."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def random_transformer(
    version: str, device: torch.device | str, dtype: torch.dtype, seed: int = 0, **overrides
) -> Step1XEditTransformer:
    """The DiT + connector of `version`; `overrides` change dimensions (e.g. fewer blocks)."""
    torch.manual_seed(seed)
    with built_on(device, dtype):
        return Step1XEditTransformer.for_version(version, **overrides)


def random_encoder(device: torch.device | str, seed: int = 0) -> Step1XMLLMEncoder:
    """Qwen2.5-VL-7B's dimensions in bf16, as the released encoder runs."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    with built_on(device, torch.bfloat16):
        qwen = Qwen2_5_VLForConditionalGeneration._from_config(
            qwen_config(full_size=True), attn_implementation="sdpa"
        )
    return Step1XMLLMEncoder(qwen, byte_tokenizer())


def random_vae(device: torch.device | str, seed: int = 0) -> AutoencoderKL:
    """The FLUX VAE's configuration in fp32, as the reference runs it."""
    torch.manual_seed(seed)
    with built_on(device, torch.float32):
        return AutoencoderKL(**FLUX_VAE_CONFIG)
