"""`step1x-edit`: edit images with Step1X-Edit from the local models folder (or a fine-tuned checkpoint).

step1x-edit --models-dir /models --image in.jpg --instruction "remove the cat" --out out.jpg
step1x-edit --tiny --image in.jpg --instruction "make it blue" --out out.jpg    # smoke test, seconds
step1x-edit --gpus 2 --models-dir /models --image in.jpg --instruction "remove the cat" --out out.jpg
                                                    # the two CFG branches on two GPUs (CFG parallelism)
step1x-edit serve --models-dir /models --port 7860                               # the edit web page
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from PIL import Image

from model.sampler import Step1XEditPipeline, StepSkipping

DEFAULT_SIZE_LEVEL = 512
# The tiny model's VAE downsamples 2x (the real one 8x), so at 512 its DiT would see 16x the real token
# count; at 64 a 28-step edit takes about a second on a 2-core CPU.
TINY_SIZE_LEVEL = 64


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The flags that choose and configure the model: shared by editing and `serve`."""
    p.add_argument(
        "--models-dir",
        help="local models folder holding Step1X-Edit/ and Qwen2.5-VL-7B-Instruct/ (default: $STEP1X_MODELS)",
    )
    p.add_argument(
        "--pipeline-dir",
        help="a diffusers-layout folder instead (upstream's Step1X-Edit-v1p1-diffusers or a save_pretrained "
        "output); --models-dir and --version are then not used",
    )
    p.add_argument(
        "--version",
        choices=["v1.0", "v1.1"],
        default="v1.1",
        help="which official checkpoint to load from the models folder: v1.0 (step1x-edit-i1258) or v1.1 "
        "(step1x-edit-v1p1-official; default). It also picks that release's sampling recipe (v1.1: "
        "norm-damped CFG while t > 0.93, Lanczos input resize, bf16 VAE encode)",
    )
    p.add_argument(
        "--ckpt",
        help="a step1x-train checkpoint folder (OUT/checkpoint-STEP): its transformer/ (full fine-tune) or "
        "lora/ (on top of the official weights)",
    )
    p.add_argument("--lora-scale", type=float, default=1.0, help="strength of the --ckpt LoRA (default 1.0)")
    p.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="where the models run (default: cuda when available, else cpu)",
    )
    p.add_argument(
        "--gpus",
        type=int,
        choices=[1, 2],
        default=1,
        help="2: two processes, one GPU each (started with torchrun, NVLink multicast kept off; with "
        "--device cpu two CPU processes over gloo), sharing each edit as --parallel says. Default 1",
    )
    p.add_argument(
        "--parallel",
        choices=["cfg", "ulysses"],
        default="cfg",
        help="with --gpus 2: cfg (default) runs the two CFG branches on the two GPUs; ulysses splits the "
        "DiT's token sequence over them (diffusers' context parallelism)",
    )
    p.add_argument(
        "--offload",
        action="store_true",
        help="keep the three models on the CPU and move each to the device only while it runs (lower peak "
        "memory, 2-3x slower; the reference's --offload)",
    )
    p.add_argument(
        "--fp8",
        nargs="?",
        const="matmul",
        choices=["matmul", "dynamic", "weight_only"],
        help="fp8 linear layers in the DiT (lossy, Hopper GPUs). matmul (the default when given without a "
        "value): fp8 weights and inputs, fp8 matmuls, fast only with --compile; dynamic: the same through "
        "torchao; weight_only: torchao fp8 weights with bf16 matmuls, the least memory",
    )
    p.add_argument(
        "--fp8-encoder", action="store_true", help="also store the Qwen2.5-VL encoder's Linears in fp8"
    )
    p.add_argument(
        "--vae-bf16", action="store_true", help="run the VAE in bf16 (the reference: fp32); lower peak"
    )
    p.add_argument(
        "--vae-tile", type=int, metavar="PIXELS", help="encode and decode in tiles of PIXELS^2 (lower peak)"
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the DiT blocks (the first edit of a size is slow)",
    )
    p.add_argument(
        "--attention",
        default="native",
        help="attention of the DiT: fp8 (cuDNN fp8 attention, lossy), or a diffusers backend: native "
        "(SDPA picks; default), _native_cudnn, _native_flash, flash, ...",
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
    p.add_argument(
        "--noise-like-upstream",
        action="store_true",
        help="draw the initial noise as the reference does (bf16, from a generator on the device), so a "
        "seed gives the reference's noise on the same GPU; by default it is drawn on the CPU and is the same "
        "on every device",
    )
    p.add_argument(
        "--tiny",
        action="store_true",
        help=f"tiny random models, no weights: a smoke test (size level {TINY_SIZE_LEVEL} unless given)",
    )


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--size-level",
        type=int,
        metavar="SIZE",
        help=f"edit at about SIZE^2 pixels, aspect kept, sides multiples of 16 (default "
        f"{DEFAULT_SIZE_LEVEL}; {TINY_SIZE_LEVEL} with --tiny); the result is resized back to the input size",
    )
    p.add_argument("--steps", type=int, default=28, help="denoising steps (default 28)")
    p.add_argument("--cfg", type=float, default=6.0, help="classifier-free guidance scale (default 6.0)")
    p.add_argument("--seed", type=int, default=42, help="noise seed (default 42)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="step1x-edit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--image", action="append", default=[], help="input image (repeatable, pairs with --instruction)"
    )
    p.add_argument(
        "--instruction",
        action="append",
        default=[],
        help="edit instruction, English or Chinese (one for all images, or one per --image)",
    )
    p.add_argument(
        "--batch-json",
        help="json {image path: instruction}, paths relative to the file (the reference's --json_path)",
    )
    p.add_argument("--out", required=True, help="output file (one image) or folder (one PNG per input)")
    p.add_argument(
        "--batch-size", type=int, default=1, help="edits per denoiser batch (images of the same resized size)"
    )
    add_sampling_arguments(p)
    add_model_arguments(p)
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


def tiny_pipeline(device: str = "cpu") -> Step1XEditPipeline:
    """Tiny random-initialised models (model/tiny.py) as a pipeline: a smoke test, no weights."""
    from model.mllm import Step1XMLLMEncoder
    from model.tiny import byte_tokenizer, tiny_qwen, tiny_transformer, tiny_vae

    encoder = Step1XMLLMEncoder(tiny_qwen(), byte_tokenizer())
    return Step1XEditPipeline.from_parts(tiny_transformer(), tiny_vae(), encoder, device=device)


def build_pipeline(args: argparse.Namespace) -> Step1XEditPipeline:
    """The pipeline the model flags describe, with their speed options applied."""
    if args.tiny:
        # the tiny model's tensors are so small that OpenMP's hand-offs cost more than they save: one
        # thread edited 10x faster than two on a busy 2-core machine (bench/RESULTS.md)
        torch.set_num_threads(1)
        pipe = tiny_pipeline(args.device)
    elif args.pipeline_dir:
        if args.ckpt:
            raise SystemExit("--ckpt goes with --models-dir (the official weights), not with --pipeline-dir")
        pipe = Step1XEditPipeline.from_pretrained(args.pipeline_dir)
        pipe.set_offload(args.offload, args.device)
    else:
        from model.loading import load_sampler

        pipe = load_sampler(
            args.models_dir,
            args.version,
            args.ckpt,
            args.device,
            offload=args.offload,
            lora_scale=args.lora_scale,
        )
    if args.fp8 or args.fp8_encoder:
        pipe.quantize_fp8(encoder=args.fp8_encoder, dit=args.fp8)
    if args.fp8 == "matmul" and not args.compile:
        # the same arithmetic through torchao ran 1.26x slower than bf16 eager (bench/RESULTS.md, run D)
        print("note: --fp8 matmul is fast only with --compile; eager, its input quantisation runs unfused")
    if args.vae_bf16 or args.vae_tile:
        pipe.low_memory_vae(torch.bfloat16 if args.vae_bf16 else None, args.vae_tile)
    if args.attention == "fp8":
        pipe.use_fp8_attention()
    elif args.attention != "native":
        pipe.set_attention_backend(args.attention)
    if args.skip_steps:
        warmup, interval = (int(v) for v in args.skip_steps.split(","))
        pipe.step_skipping = StepSkipping(warmup, interval)
    if args.first_block_cache is not None:
        pipe.enable_step_cache(args.first_block_cache)
    if args.compile:
        pipe.compile_blocks(fullgraph=args.first_block_cache is None)  # the cache's hooks break graphs
    pipe.noise_like_upstream = args.noise_like_upstream
    return pipe


def size_level(args: argparse.Namespace) -> int:
    if args.size_level is not None:
        return args.size_level
    return TINY_SIZE_LEVEL if args.tiny else DEFAULT_SIZE_LEVEL


def main(argv: list[str] | None = None) -> None:
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        from model.serve import main as serve_main

        serve_main(argv[1:])
        return
    args = build_parser().parse_args(argv)
    jobs = _jobs(args)
    writer = True  # this process saves the images (with --gpus 2, process 0; both hold the same ones)
    if args.gpus > 1:
        from model.distributed import init_process_group, launched, local_device, relaunch

        if not launched():
            code = relaunch("model.cli_edit", argv, args.gpus)
            if code:
                raise SystemExit(code)
            return
        device = local_device(args.device)
        init_process_group(device)
        args.device = str(device)
        writer = torch.distributed.get_rank() == 0
    pipe = build_pipeline(args)
    if args.gpus > 1 and args.parallel == "cfg":
        pipe.enable_cfg_parallel()
    elif args.gpus > 1:
        pipe.enable_sequence_parallel()
    out = Path(args.out)
    single_file = len(jobs) == 1 and out.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")
    if not single_file:
        out.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(jobs), args.batch_size):
        chunk = jobs[start : start + args.batch_size]
        t0 = time.perf_counter()
        result = pipe.edit(
            [Image.open(p) for p, _ in chunk],
            [i for _, i in chunk],
            size_level=size_level(args),
            num_steps=args.steps,
            guidance=args.cfg,
            seed=args.seed,
        )
        for (path, _), image in zip(chunk, result.images, strict=True):
            if not writer:
                continue
            target = out if single_file else out / f"{path.stem}.png"
            image.save(target)
            print(f"{path} -> {target} ({time.perf_counter() - t0:.1f} s for the batch)")
    if args.gpus > 1:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
