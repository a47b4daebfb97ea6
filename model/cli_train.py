"""`step1x-train`: train Step1X-Edit on data-engine shards. Options come from a YAML file (--config) and
from flags named like its keys; flags win. The effective config is written to OUT/config.yaml.

    step1x-train --shards 'runs/demo/views/kept/shards/*.tar' --init official --models-dir /models --out ckpt/
    step1x-train --gpus 2 --config cluster/train/full_fsdp.yaml      # full fine-tuning sharded over 2 GPUs
    accelerate launch --config_file cluster/accelerate/ddp_gpus.yaml -m model.cli_train --config train.yaml
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from pathlib import Path

import yaml

from model.distributed import launched, nvls_off, relaunch
from model.optim import OPTIMIZERS
from model.train import LORA_DTYPES, TrainConfig, train
from model.transformer import REFERENCE_ID_OFFSET

FIELD_CHOICES: dict[str, list[str]] = {
    "version": list(REFERENCE_ID_OFFSET),
    "mode": ["lora", "full"],
    "optimizer": list(OPTIMIZERS),
    "lora_dtype": list(LORA_DTYPES),
    "mixed_precision": ["no", "fp16", "bf16"],
}
# Help for every TrainConfig key (tests/model/test_cli_help.py checks that none is missing).
FIELD_HELP: dict[str, str] = {
    "shards": "training shards: WebDataset tars written by step1x-data (globs allowed, quote them)",
    "out": "output folder: checkpoint-STEP/ folders, config.yaml and TensorBoard logs",
    "init": "starting weights: official (the --version checkpoint from --models-dir), a folder saved by "
    "save_pretrained (a transformer/ of an earlier run), random (the full-size models with random weights, "
    "built on the GPU: benchmarks, no weights needed) or tiny (tiny random models, for tests)",
    "models_dir": "local models folder with Step1X-Edit/ and Qwen2.5-VL-7B-Instruct/ "
    "(default: $STEP1X_MODELS)",
    "version": "v1.0 or v1.1 (default): the official checkpoint --init official loads, and the reference "
    "image position ids the model is trained with (v1.1: the reference at (1, r+1, c+1), as v1.1 infers)",
    "mode": "lora (default): rank --lora-rank adapters on every Linear of the DiT blocks, the rest frozen; "
    "full: the connector and the DiT trained whole (at full size: --fsdp on 2+ GPUs)",
    "fsdp": "full fine-tuning sharded over the processes (torch FSDP2): each GPU holds 1/N of the fp32 "
    "weights, gradients and AdamW moments (16 bytes per parameter: 99 GB each on 2 GPUs at full size); "
    "needs --gpus 2 or more",
    "save_full_weights": "with --fsdp: also gather the full weights into each checkpoint's transformer/ "
    "(what step1x-edit --ckpt loads; 50 GB at full size); the shards alone resume a run (default on)",
    "lora_rank": "LoRA rank (default 64)",
    "lora_alpha": "LoRA alpha; the update is scaled by alpha / rank (default 32)",
    "resolution": "training size level: images are bucketed by aspect to about RESOLUTION^2 pixels",
    "bucket_step": "bucket sides are multiples of this many pixels (default 64)",
    "batch_size": "samples per batch per process (samples of one bucket)",
    "grad_accum": "batches accumulated per optimizer step",
    "lr": "learning rate",
    "weight_decay": "AdamW weight decay",
    "lr_scheduler": "diffusers scheduler name: constant, linear, cosine, constant_with_warmup, ...",
    "warmup_steps": "learning-rate warm-up steps",
    "max_grad_norm": "gradient clipping norm (0: no clipping)",
    "max_steps": "optimizer steps of the whole run (the schedule spans them)",
    "save_every": "save a checkpoint every this many steps (and at the end)",
    "log_every": "log loss, learning rate and samples/s every this many steps",
    "seed": "seed of the data order, noise and timesteps (a resumed run repeats them exactly)",
    "mixed_precision": "accelerate mixed precision: bf16 (default), fp16 or no",
    "gradient_checkpointing": "recompute block activations in the backward pass (less memory, slower)",
    "offload_checkpoints": "with --gradient-checkpointing: keep the saved block inputs in CPU memory",
    "compile_blocks": "torch.compile the repeated DiT blocks (1.8x faster LoRA steps on an H100)",
    "sdpa_cudnn": "allow cuDNN's SDPA kernel (off by default: its backward failed for this model, "
    "bench/RESULTS.md)",
    "optimizer": "adamw (default) or adamw8bit (torchao's 8-bit moments)",
    "lora_dtype": "fp32 (default) or bf16: the LoRA weights' dtype (bf16 updates stochastically rounded)",
    "fp8_base": "LoRA only: store the frozen Linears of the DiT blocks in float8 with per-row scales",
    "timestep_shift": "shift s of the sampled noise level, s*t / (1 + (s-1) t) (default e^1.15, 1024^2's)",
    "logit_mean": "mean of the logit-normal noise-level distribution",
    "logit_std": "standard deviation of the logit-normal noise-level distribution",
    "instruction_dropout": "probability of training on the empty instruction (for classifier-free guidance)",
    "mask_loss_weight": "loss weight inside the edit mask of local edits, relative to 1 outside",
    "lang_en": "probability of the English instruction; the Chinese one otherwise (default 1.0)",
    "view": "train only on a filter view's samples: its folder or ids.parquet (from step1x-data filter)",
    "min_o": "train only on samples whose judge overall score O is at least this",
    "tasks": "train only on these edit categories (e.g. subject_removal tone_transformation)",
    "shuffle_buffer": "samples in the seeded shuffle buffer",
    "cache_dir": "cache Qwen2.5-VL and VAE features on disk here, keyed by sample id",
    "precompute_features": "with --cache-dir: compute every sample's features first, then move the MLLM "
    "off the GPU (default on)",
    "val_shards": "held-out shards for the validation loss and sample grids",
    "val_every": "validation loss every this many steps (0: never)",
    "val_batches": "held-out batches per validation",
    "sample_every": "log source | target | prediction grids every this many steps (0: never)",
    "sample_count": "held-out samples per grid",
    "sample_steps": "denoising steps of the grid's predictions",
    "resume": "continue from the latest checkpoint in --out (exactly: same data order and noise)",
    "stop_at": "end this invocation at this step, e.g. for a job time limit; the schedule still spans "
    "--max-steps",
}


def _flag_type(tp: object) -> tuple[type, bool]:
    """(element type, is_list) for a TrainConfig annotation such as `int`, `str | None`, `list[str]`."""
    hints = typing.get_args(tp) if isinstance(tp, types.UnionType) else (tp,)
    base = next(h for h in hints if h is not type(None))
    if typing.get_origin(base) is list:
        return typing.get_args(base)[0], True
    return base, False


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="step1x-train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", help="YAML file with TrainConfig keys (flags override it)")
    p.add_argument(
        "--gpus",
        type=int,
        default=1,
        help="processes to start on this machine, one per GPU (torchrun; NVLink multicast kept off): "
        "DDP for LoRA, sharded with --fsdp for full fine-tuning (default 1)",
    )
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        tp, is_list = _flag_type(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        text = f"{FIELD_HELP[f.name]} (config key {f.name})"
        if tp is bool:
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            nargs = "+" if is_list else None
            choices = FIELD_CHOICES.get(f.name)
            p.add_argument(flag, dest=f.name, type=tp, nargs=nargs, choices=choices, default=None, help=text)
    return p


def load_config(argv: list[str] | None = None) -> TrainConfig:
    args = vars(build_parser().parse_args(argv))
    args.pop("gpus")
    config_path = args.pop("config")
    values: dict = (yaml.safe_load(Path(config_path).read_text()) or {}) if config_path else {}
    unknown = set(values) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        raise SystemExit(f"unknown config keys: {sorted(unknown)}")
    values.update({k: v for k, v in args.items() if v is not None})
    return TrainConfig(**values)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    gpus = build_parser().parse_args(argv).gpus
    if gpus > 1 and not launched():
        code = relaunch("model.cli_train", argv, gpus)
        if code:
            raise SystemExit(code)
        return
    nvls_off()  # this process (or one started by another launcher) creates the communicators
    cfg = load_config(argv)
    losses = train(cfg)
    if losses:
        print(f"trained {len(losses)} steps; last loss {losses[-1]:.4f}; checkpoints in {cfg.out}")


if __name__ == "__main__":
    main()
