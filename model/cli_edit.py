"""`step1x-edit`: edit images with Step1X-Edit from the local models folder (or a fine-tuned checkpoint)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from PIL import Image

from model.sampler import Step1XEditSampler, StepSkipping


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="step1x-edit", description=__doc__)
    p.add_argument(
        "--image", action="append", default=[], help="input image (repeatable, pairs with --instruction)"
    )
    p.add_argument(
        "--instruction", action="append", default=[], help="edit instruction (one, or one per image)"
    )
    p.add_argument("--batch-json", help="json {image path: instruction}, the reference's --json_path")
    p.add_argument("--out", required=True, help="output file (one image) or folder")
    p.add_argument("--models-dir", help="local models folder (default: $STEP1X_MODELS)")
    p.add_argument("--version", choices=["v1.0", "v1.1"], default="v1.1")
    p.add_argument("--ckpt", help="a step1x-train output folder (transformer/ and/or lora/)")
    p.add_argument("--lora-scale", type=float, default=1.0)
    p.add_argument("--size-level", type=int, default=512)
    p.add_argument("--steps", type=int, default=28)
    p.add_argument("--cfg", type=float, default=6.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--batch-size", type=int, default=1, help="edits per denoiser batch (same resized size)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--offload", action="store_true", help="keep components on the CPU until each runs")
    p.add_argument(
        "--fp8",
        nargs="?",
        const="matmul",
        choices=["matmul", "dynamic", "weight_only"],
        help="fp8 linear layers in the DiT: matmul (fp8 matmuls, fast with --compile), dynamic (the same "
        "through torchao), weight_only (torchao; bf16 matmuls, lowest memory)",
    )
    p.add_argument("--fp8-encoder", action="store_true", help="also fp8 weight-only for the MLLM encoder")
    p.add_argument("--vae-bf16", action="store_true", help="run the VAE in bf16 (reference: fp32)")
    p.add_argument("--vae-tile", type=int, metavar="PIXELS", help="tiled VAE encode/decode (lower peak)")
    p.add_argument("--compile", action="store_true", help="torch.compile the DiT blocks (slow first edit)")
    p.add_argument(
        "--attention",
        default="native",
        help="attention of the DiT: fp8 (cuDNN fp8 attention, lossy), or a diffusers backend: native "
        "(SDPA picks), _native_cudnn, _native_flash, ...",
    )
    p.add_argument(
        "--skip-steps",
        metavar="WARMUP,INTERVAL",
        help="run the DiT on the first WARMUP steps and every INTERVAL-th after, extrapolating the others "
        "(e.g. 3,5: 8 of 28 steps); lossy",
    )
    p.add_argument(
        "--first-block-cache",
        type=float,
        metavar="THRESHOLD",
        help="diffusers FirstBlockCache: skip the other blocks while block 0's residual moves less (lossy)",
    )
    p.add_argument("--tiny", action="store_true", help="tiny random models, no weights (smoke test only)")
    return p


def _jobs(args: argparse.Namespace) -> list[tuple[Path, str]]:
    jobs: list[tuple[Path, str]] = []
    if args.batch_json:
        base = Path(args.batch_json).parent
        for name, instruction in json.loads(Path(args.batch_json).read_text()).items():
            path = Path(name) if Path(name).is_absolute() else base / name
            jobs.append((path, instruction))
    if args.image:
        instructions = args.instruction * len(args.image) if len(args.instruction) == 1 else args.instruction
        if len(instructions) != len(args.image):
            raise SystemExit("give one --instruction, or one per --image")
        jobs += [(Path(p), i) for p, i in zip(args.image, instructions, strict=True)]
    if not jobs:
        raise SystemExit("nothing to edit: pass --image/--instruction or --batch-json")
    return jobs


def _tiny_sampler(device: str) -> Step1XEditSampler:
    from model.mllm import Step1XMLLMEncoder
    from model.tiny import byte_tokenizer, tiny_qwen, tiny_transformer, tiny_vae

    encoder = Step1XMLLMEncoder(tiny_qwen(), byte_tokenizer())
    return Step1XEditSampler(tiny_transformer(), tiny_vae(), encoder, device=device)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    jobs = _jobs(args)
    if args.tiny:
        sampler = _tiny_sampler(args.device)
    else:
        from model.loading import load_sampler

        sampler = load_sampler(
            args.models_dir,
            args.version,
            args.ckpt,
            args.device,
            offload=args.offload,
            lora_scale=args.lora_scale,
        )
    if args.fp8 or args.fp8_encoder:
        sampler.quantize_fp8(encoder=args.fp8_encoder, dit=args.fp8)
    if args.fp8 == "matmul" and not args.compile:
        # the same arithmetic through torchao ran 1.26x slower than bf16 eager (bench/RESULTS.md, run D)
        print("note: --fp8 matmul is fast only with --compile; eager, its input quantisation runs unfused")
    if args.vae_bf16 or args.vae_tile:
        sampler.low_memory_vae(torch.bfloat16 if args.vae_bf16 else None, args.vae_tile)
    if args.attention == "fp8":
        sampler.use_fp8_attention()
    elif args.attention != "native":
        sampler.set_attention_backend(args.attention)
    if args.skip_steps:
        warmup, interval = (int(v) for v in args.skip_steps.split(","))
        sampler.step_skipping = StepSkipping(warmup, interval)
    if args.first_block_cache is not None:
        sampler.enable_step_cache(args.first_block_cache)
    if args.compile:
        sampler.compile_blocks(fullgraph=args.first_block_cache is None)  # the cache's hooks break graphs
    out = Path(args.out)
    single_file = len(jobs) == 1 and out.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")
    if not single_file:
        out.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(jobs), args.batch_size):
        chunk = jobs[start : start + args.batch_size]
        t0 = time.perf_counter()
        result = sampler.edit(
            [Image.open(p) for p, _ in chunk],
            [i for _, i in chunk],
            size_level=args.size_level,
            num_steps=args.steps,
            guidance=args.cfg,
            seed=args.seed,
        )
        for (path, _), image in zip(chunk, result.images, strict=True):
            target = out if single_file else out / f"{path.stem}.png"
            image.save(target)
            print(f"{path} -> {target} ({time.perf_counter() - t0:.1f} s for the batch)")


if __name__ == "__main__":
    main()
