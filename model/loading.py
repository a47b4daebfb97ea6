"""Loading from the local models folder (official checkpoints), from diffusers-layout folders, and saving.

Models folder layout (`--models-dir` or STEP1X_MODELS), subfolders named after the upstream repositories:

    Step1X-Edit/step1x-edit-i1258.safetensors          v1.0 DiT + connector
    Step1X-Edit/step1x-edit-v1p1-official.safetensors  v1.1 DiT + connector
    Step1X-Edit/vae.safetensors                        FLUX autoencoder (LDM key names)
    Qwen2.5-VL-7B-Instruct/                            transformers folder

A diffusers-layout folder (upstream's Step1X-Edit-v1p1-diffusers, or `Step1XEditPipeline.save_pretrained`):
model_index.json, scheduler/, vae/, text_encoder/, processor/, transformer/ (upstream's
Step1XEditTransformer2DModel names, or this project's Step1XEditTransformer as `step1x-train` saves it).

A `step1x-train` output: `transformer/` (save_pretrained) for a full fine-tune, and/or `lora/` (diffusers/peft
LoRA safetensors) on top of the official weights. Only safetensors are read; nothing is unpickled.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from model.convert import (
    DIFFUSERS_CLASS,
    convert_official_state_dict,
    from_diffusers_config,
    from_diffusers_state_dict,
    to_diffusers_config,
    to_diffusers_state_dict,
)
from model.latents import FLUX_VAE_CONFIG
from model.mllm import MAX_PIXELS, MIN_PIXELS, Step1XMLLMEncoder
from model.sampler import Step1XEditPipeline, make_scheduler
from model.transformer import Step1XEditTransformer

OFFICIAL_CHECKPOINTS = {
    "v1.0": "Step1X-Edit/step1x-edit-i1258.safetensors",
    "v1.1": "Step1X-Edit/step1x-edit-v1p1-official.safetensors",
}
VAE_FILE = "Step1X-Edit/vae.safetensors"
QWEN_DIR = "Qwen2.5-VL-7B-Instruct"
SHARD_BYTES = 10 * 2**30  # diffusers' default shard size


def resolve_models_dir(models_dir: str | os.PathLike | None) -> Path:
    value = models_dir or os.environ.get("STEP1X_MODELS")
    if not value:
        raise FileNotFoundError("no models folder: pass --models-dir or set STEP1X_MODELS")
    return Path(value)


def require(path: Path, needed_by: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"missing {path} (needed by {needed_by}); nothing is downloaded at run time")
    return path


# ---- single components ----


def official_version(path: str | os.PathLike) -> str:
    """ "v1.0" or "v1.1" from an official checkpoint's keys: only v1.0's connector has a scale factor."""
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
    v1_0 = {"connector.scale_factor", "model.diffusion_model.connector.scale_factor"}
    return "v1.0" if v1_0 & keys else "v1.1"


def load_official_transformer(
    path: str | os.PathLike, version: str, dtype: torch.dtype = torch.bfloat16, **dims: int
) -> Step1XEditTransformer:
    """Official checkpoint file -> Step1XEditTransformer, strict: no missing or unexpected key."""
    state = convert_official_state_dict(load_file(str(path)))
    with init_empty_weights():  # no 12 B random init before the real weights arrive
        model = Step1XEditTransformer.for_version(version, **dims)
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True, assign=True)
    return model


def load_transformer_folder(path: str | os.PathLike, dtype: torch.dtype) -> Step1XEditTransformer:
    """A transformer/ folder: upstream's diffusers layout (Step1XEditTransformer2DModel) or ours."""
    folder = Path(path)
    config = json.loads(require(folder / "config.json", "the Step1X-Edit transformer").read_text())
    if config.get("_class_name") != DIFFUSERS_CLASS:
        return Step1XEditTransformer.from_pretrained(folder, torch_dtype=dtype, use_safetensors=True)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder} holds no .safetensors weights (other formats are never unpickled)")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_file(str(file)))
    with init_empty_weights():
        model = Step1XEditTransformer(**from_diffusers_config(config))
    model.load_state_dict(
        {k: v.to(dtype) for k, v in from_diffusers_state_dict(state).items()}, strict=True, assign=True
    )
    return model


def save_transformer_folder(model: Step1XEditTransformer, folder: Path) -> None:
    """Upstream's diffusers layout: config.json and safetensors shards of at most 10 GiB (+ index)."""
    from huggingface_hub import split_torch_state_dict_into_shards

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in to_diffusers_state_dict(model.state_dict()).items()}
    (folder / "config.json").write_text(json.dumps(to_diffusers_config(dict(model.config)), indent=2))
    split = split_torch_state_dict_into_shards(
        state, filename_pattern="diffusion_pytorch_model{suffix}.safetensors", max_shard_size=SHARD_BYTES
    )
    for filename, names in split.filename_to_tensors.items():
        save_file({n: state[n].cpu() for n in names}, str(folder / filename), metadata={"format": "pt"})
    if split.is_sharded:
        index = {"metadata": split.metadata, "weight_map": split.tensor_to_filename}
        (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def load_flux_vae(path: str | os.PathLike, config: dict | None = None) -> AutoencoderKL:
    """The FLUX `ae.safetensors` / Step1X `vae.safetensors` (LDM names) -> diffusers AutoencoderKL."""
    config = config or FLUX_VAE_CONFIG
    state = convert_ldm_vae_checkpoint(load_file(str(path)), config)
    with init_empty_weights():
        vae = AutoencoderKL(**config)
    vae.load_state_dict(state, strict=True, assign=True)
    return vae.float()  # the reference runs the AE in fp32


def qwen_processor(tokenizer, image_processor=None):
    """A Qwen2.5-VL processor around a tokenizer (the pipeline's `processor` component); without an image
    processor, transformers' PIL one at Step1X's 256-324 visual tokens."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessorPil, Qwen2VLVideoProcessor

    if image_processor is None:
        image_processor = Qwen2VLImageProcessorPil(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    return Qwen2_5_VLProcessor(
        image_processor=image_processor, tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor()
    )


def load_qwen(
    path: str | os.PathLike,
    dtype: torch.dtype = torch.bfloat16,
    class_name: str | None = None,
    processor_path: str | os.PathLike | None = None,
):
    """(Qwen2.5-VL backbone, processor) from a transformers folder (the processor from its own folder when
    given). A checkpoint with an output head loads whole and keeps only the backbone: Step1X reads the last
    hidden state, the head would be 1 GiB idle."""
    import transformers
    from transformers import AutoProcessor

    folder = Path(path)
    if class_name is None:
        class_name = json.loads((folder / "config.json").read_text())["architectures"][0]
    model = getattr(transformers, class_name).from_pretrained(
        str(folder), dtype=dtype, attn_implementation="sdpa", use_safetensors=True
    )
    processor = AutoProcessor.from_pretrained(
        str(processor_path or folder), min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS
    )
    return (model.model if hasattr(model, "lm_head") else model), processor


def load_qwen_encoder(path: str | os.PathLike, dtype: torch.dtype = torch.bfloat16) -> Step1XMLLMEncoder:
    model, processor = load_qwen(path, dtype)
    return Step1XMLLMEncoder(model, processor.tokenizer, image_processor=processor.image_processor)


# ---- whole pipelines ----


def load_single_file(
    cls: type[Step1XEditPipeline],
    checkpoint: str | os.PathLike,
    dtype: torch.dtype = torch.bfloat16,
    vae_path: str | os.PathLike | None = None,
    qwen_path: str | os.PathLike | None = None,
    transformer_config: dict | None = None,
    **components,
) -> Step1XEditPipeline:
    """The pipeline around an official checkpoint file; `components` (vae, text_encoder, processor)
    replace the ones that would be loaded from beside it. transformer_config: dimensions other than the
    released ones (Step1XEditTransformer arguments; the RoPE axes cannot be read from the weights)."""
    checkpoint = require(Path(checkpoint), "Step1X-Edit")
    version = official_version(checkpoint)
    vae = components.get("vae")
    if vae is None:
        vae_file = Path(vae_path or checkpoint.parent / "vae.safetensors")
        vae = load_flux_vae(require(vae_file, "the Step1X-Edit VAE"))
    text_encoder, processor = components.get("text_encoder"), components.get("processor")
    if text_encoder is None or processor is None:
        if qwen_path is None:  # the reference keeps it beside the checkpoint, our models folder one level up
            near = [checkpoint.parent / QWEN_DIR, checkpoint.parent.parent / QWEN_DIR]
            qwen_path = next((p for p in near if p.exists()), near[-1])
        text_encoder, processor = load_qwen(require(Path(qwen_path), "the Step1X-Edit MLLM encoder"), dtype)
    transformer = load_official_transformer(checkpoint, version, dtype, **(transformer_config or {}))
    return cls(make_scheduler(), vae, text_encoder, processor, transformer, version=version)


def load_pipeline_folder(
    cls: type[Step1XEditPipeline], path: str | os.PathLike, dtype: torch.dtype = torch.bfloat16
) -> Step1XEditPipeline:
    folder = Path(path)
    index = json.loads(require(folder / "model_index.json", "a diffusers-layout folder").read_text())
    scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(
        str(require(folder / "scheduler", "the pipeline folder"))
    )
    # the reference runs the VAE in fp32 whatever dtype it was saved in
    vae = AutoencoderKL.from_pretrained(
        str(require(folder / "vae", "the pipeline folder")), torch_dtype=torch.float32, use_safetensors=True
    )
    text_encoder, processor = load_qwen(
        require(folder / "text_encoder", "the pipeline folder"),
        dtype,
        class_name=index["text_encoder"][1],
        processor_path=require(folder / "processor", "the pipeline folder"),
    )
    transformer = load_transformer_folder(folder / "transformer", dtype)
    return cls(scheduler, vae, text_encoder, processor, transformer, version=index.get("version", "v1.1"))


def save_pipeline_folder(pipe: Step1XEditPipeline, path: str | os.PathLike) -> None:
    import diffusers

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    pipe.scheduler.save_pretrained(folder / "scheduler")
    pipe.vae.save_pretrained(folder / "vae", safe_serialization=True)
    pipe.text_encoder.save_pretrained(folder / "text_encoder", safe_serialization=True)
    pipe.processor.save_pretrained(folder / "processor")
    save_transformer_folder(pipe.transformer, folder / "transformer")
    index = {
        "_class_name": "Step1XEditPipeline",
        "_diffusers_version": diffusers.__version__,
        "scheduler": ["diffusers", type(pipe.scheduler).__name__],
        "vae": ["diffusers", type(pipe.vae).__name__],
        "text_encoder": ["transformers", type(pipe.text_encoder).__name__],
        "processor": ["transformers", type(pipe.processor).__name__],
        "transformer": ["diffusers", DIFFUSERS_CLASS],
        "version": pipe.config.version,
    }
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))


def load_sampler(
    models_dir: str | os.PathLike | None,
    version: str = "v1.1",
    ckpt: str | os.PathLike | None = None,
    device: str = "cuda",
    dtype: torch.dtype = torch.bfloat16,
    offload: bool = False,
    lora_scale: float = 1.0,
) -> Step1XEditPipeline:
    """The pipeline from the models folder, optionally with a fine-tuned transformer or a LoRA."""
    root = resolve_models_dir(models_dir)
    ckpt_dir = Path(ckpt) if ckpt else None
    if ckpt_dir is not None and not any((ckpt_dir / sub).exists() for sub in ("transformer", "lora")):
        raise FileNotFoundError(f"{ckpt_dir} holds neither transformer/ nor lora/ (a step1x-train output)")
    if ckpt_dir is not None and (ckpt_dir / "transformer" / "config.json").exists():
        transformer = load_transformer_folder(ckpt_dir / "transformer", dtype)
    else:
        transformer = load_official_transformer(
            require(root / OFFICIAL_CHECKPOINTS[version], f"Step1X-Edit {version}"), version, dtype
        )
    vae = load_flux_vae(require(root / VAE_FILE, "the Step1X-Edit VAE"))
    text_encoder, processor = load_qwen(require(root / QWEN_DIR, "the Step1X-Edit MLLM encoder"), dtype)
    pipe = Step1XEditPipeline(make_scheduler(), vae, text_encoder, processor, transformer, version=version)
    pipe.set_offload(offload, device)
    if ckpt_dir is not None and (ckpt_dir / "lora").exists():
        pipe.load_lora(str(ckpt_dir / "lora"), scale=lora_scale)
    return pipe
