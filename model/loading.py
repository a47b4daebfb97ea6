"""Loading from the local models folder (official checkpoints) and from our own saved format.

Models folder layout (`--models-dir` or STEP1X_MODELS), subfolders named after the upstream repositories:

    Step1X-Edit/step1x-edit-i1258.safetensors          v1.0 DiT + connector
    Step1X-Edit/step1x-edit-v1p1-official.safetensors  v1.1 DiT + connector
    Step1X-Edit/vae.safetensors                        FLUX autoencoder (LDM key names)
    Qwen2.5-VL-7B-Instruct/                            transformers folder

Our own format: a folder with `transformer/` (save_pretrained: config.json + safetensors) for a full
fine-tune, and/or `lora/` (diffusers/peft LoRA safetensors) on top of the official weights. Only
safetensors are read; nothing is unpickled.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
from safetensors.torch import load_file

from model.convert import convert_official_state_dict
from model.latents import FLUX_VAE_CONFIG
from model.mllm import MAX_PIXELS, MIN_PIXELS, Step1XMLLMEncoder
from model.sampler import Step1XEditSampler
from model.transformer import Step1XEditTransformer

OFFICIAL_CHECKPOINTS = {
    "v1.0": "Step1X-Edit/step1x-edit-i1258.safetensors",
    "v1.1": "Step1X-Edit/step1x-edit-v1p1-official.safetensors",
}
VAE_FILE = "Step1X-Edit/vae.safetensors"
QWEN_DIR = "Qwen2.5-VL-7B-Instruct"


def resolve_models_dir(models_dir: str | os.PathLike | None) -> Path:
    value = models_dir or os.environ.get("STEP1X_MODELS")
    if not value:
        raise FileNotFoundError("no models folder: pass --models-dir or set STEP1X_MODELS")
    return Path(value)


def require(path: Path, needed_by: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"missing {path} (needed by {needed_by}); nothing is downloaded at run time")
    return path


def load_official_transformer(
    path: str | os.PathLike, version: str, dtype: torch.dtype = torch.bfloat16, **dims: int
) -> Step1XEditTransformer:
    """Official checkpoint file -> Step1XEditTransformer, strict: no missing or unexpected key."""
    state = convert_official_state_dict(load_file(str(path)))
    with init_empty_weights():  # no 12 B random init before the real weights arrive
        model = Step1XEditTransformer.for_version(version, **dims)
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True, assign=True)
    return model.to(dtype)


def load_flux_vae(path: str | os.PathLike, config: dict | None = None) -> AutoencoderKL:
    """The FLUX `ae.safetensors` / Step1X `vae.safetensors` (LDM names) -> diffusers AutoencoderKL."""
    config = config or FLUX_VAE_CONFIG
    state = convert_ldm_vae_checkpoint(load_file(str(path)), config)
    with init_empty_weights():
        vae = AutoencoderKL(**config)
    vae.load_state_dict(state, strict=True, assign=True)
    return vae.float()  # the reference runs the AE in fp32


def load_qwen_encoder(path: str | os.PathLike, dtype: torch.dtype = torch.bfloat16) -> Step1XMLLMEncoder:
    import importlib.util

    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        str(path), dtype=dtype, attn_implementation="sdpa", use_safetensors=True
    )
    image_processor = None
    # transformers 5's Qwen processor needs torchvision; without it the numpy preprocessing in model/mllm.py
    # (the same algorithm) is used.
    if importlib.util.find_spec("torchvision") is not None:
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(str(path), min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
        image_processor = processor.image_processor
    return Step1XMLLMEncoder(model, AutoTokenizer.from_pretrained(str(path)), image_processor=image_processor)


def load_sampler(
    models_dir: str | os.PathLike | None,
    version: str = "v1.1",
    ckpt: str | os.PathLike | None = None,
    device: str = "cuda",
    dtype: torch.dtype = torch.bfloat16,
    offload: bool = False,
    lora_scale: float = 1.0,
) -> Step1XEditSampler:
    """Build the sampler from the models folder, optionally with a fine-tuned transformer or a LoRA."""
    root = resolve_models_dir(models_dir)
    ckpt_dir = Path(ckpt) if ckpt else None
    if ckpt_dir is not None and not any((ckpt_dir / sub).exists() for sub in ("transformer", "lora")):
        raise FileNotFoundError(f"{ckpt_dir} holds neither transformer/ nor lora/ (a step1x-train output)")
    if ckpt_dir is not None and (ckpt_dir / "transformer" / "config.json").exists():
        transformer = Step1XEditTransformer.from_pretrained(ckpt_dir / "transformer", torch_dtype=dtype)
    else:
        transformer = load_official_transformer(
            require(root / OFFICIAL_CHECKPOINTS[version], f"Step1X-Edit {version}"), version, dtype
        )
    vae = load_flux_vae(require(root / VAE_FILE, "the Step1X-Edit VAE"))
    encoder = load_qwen_encoder(require(root / QWEN_DIR, "the Step1X-Edit MLLM encoder"), dtype)
    sampler = Step1XEditSampler(
        transformer, vae, encoder, device=device, dtype=dtype, version=version, offload=offload
    )
    if ckpt_dir is not None and (ckpt_dir / "lora").exists():
        sampler.load_lora(str(ckpt_dir / "lora"), scale=lora_scale)
    return sampler
