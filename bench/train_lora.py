"""Step1X-Edit LoRA training step at full size with random weights: peak memory and MFU (issue 5).

As in the reference recipe, the MLLM states and VAE latents are cached (they are inputs here, random), so
the GPU holds the bf16 DiT + connector, the fp32 LoRA weights, their AdamW state and the activations.
One step = the trainer's own pieces: `add_lora` (rank r on every Linear of the blocks), logit-normal
shifted sigma, rectified-flow target, MSE on the target tokens, backward, AdamW.

FLOPs counted (model FLOPs utilisation): the DiT's matmuls, per sample of S = 640 + 2N tokens,
    linear L = 2 S (19 (2 (4h^2 + 2 h m)) + 38 (h (3h + m) + (h + m) h)),  attention A = 4 S^2 h (19 + 38)
with h = 3072, m = 12288. A step does forward (L + A), backward for activations (L + 2A; frozen base
weights need no weight gradient, LoRA's is negligible), and with gradient checkpointing one recomputed
forward (L + A): 3L + 4A; without checkpointing 2L + 3A. MFU = FLOPs / step time / measured bf16 matmul rate.

    python bench/train_lora.py --sizes 512,768,1024 --rank 64 --out train_lora.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.model_sampler import matmul_tflops, sync  # noqa: E402
from model.train import TrainConfig, add_lora, sample_sigmas  # noqa: E402
from model.transformer import Step1XEditTransformer  # noqa: E402


def step_flops(size: int, checkpointing: bool, h: int = 3072, m: int = 12288, text: int = 640) -> float:
    s = text + 2 * (size // 16) ** 2
    linear = 2 * s * (19 * 2 * (4 * h * h + 2 * h * m) + 38 * (h * (3 * h + m) + (h + m) * h))
    attention = 4 * s * s * h * (19 + 38)
    return 3 * linear + 4 * attention if checkpointing else 2 * linear + 3 * attention


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="512,768,1024")
    p.add_argument("--rank", type=int, default=64)
    p.add_argument("--alpha", type=int, default=32)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--checkpointing", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--compile", action="store_true", help="compile_repeated_blocks before timing")
    p.add_argument("--out", default="train_lora.json")
    p.add_argument(
        "--sdpa-cudnn",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="allow the cuDNN SDPA kernel (--no-sdpa-cudnn leaves flash / mem-efficient)",
    )
    p.add_argument("--tiny", action="store_true", help="tiny model on the CPU: a dry run of this script")
    args = p.parse_args()
    cuda = torch.cuda.is_available() and not args.tiny
    device = torch.device("cuda" if cuda else "cpu")
    if cuda and not args.sdpa_cudnn:
        torch.backends.cuda.enable_cudnn_sdp(False)
    torch.manual_seed(0)
    if args.tiny:
        from model.tiny import TINY_TRANSFORMER

        model = Step1XEditTransformer.for_version("v1.1", **TINY_TRANSFORMER)
    else:
        torch.set_default_dtype(torch.bfloat16)
        with torch.device(device):
            model = Step1XEditTransformer.for_version("v1.1")
        torch.set_default_dtype(torch.float32)
    add_lora(model, args.rank, args.alpha)
    if args.checkpointing:
        model.enable_gradient_checkpointing()
    if args.compile:
        model.compile_repeated_blocks(fullgraph=True)
    model.to(device).train()
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    cfg = TrainConfig()
    c = model.config
    record = {
        "gpu": torch.cuda.get_device_name() if cuda else "cpu",
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rank": args.rank,
        "alpha": args.alpha,
        "checkpointing": args.checkpointing,
        "compile": args.compile,
        "sdpa_cudnn": args.sdpa_cudnn,
        "lora_params_m": round(sum(q.numel() for q in params) / 1e6, 1),
        "matmul_bf16_tflops": round(matmul_tflops(), 1) if cuda else None,
        "sizes": {},
    }
    print(json.dumps(record), flush=True)
    for size in [int(s) for s in args.sizes.split(",")]:
        g = size // 16
        gen = torch.Generator().manual_seed(size)
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        times = []
        for i in range(args.steps):
            x0 = torch.randn(1, g * g, c.in_channels, generator=gen).to(device)
            ref = torch.randn(1, g * g, c.in_channels, generator=gen).to(device)
            noise = torch.randn(1, g * g, c.in_channels, generator=gen).to(device)
            states = torch.randn(1, 640, c.mllm_hidden_size, generator=gen).to(device, torch.bfloat16)
            mask = torch.ones(1, 640, dtype=torch.long, device=device)
            sigma = sample_sigmas(cfg, 1, gen).to(device)
            s = sigma[:, None, None]
            sync()
            t0 = time.perf_counter()
            with torch.autocast(device.type, dtype=torch.bfloat16):
                pred = model(((1 - s) * x0 + s * noise), ref, states, mask, sigma, (g, g))
                loss = ((pred.float() - (noise - x0)) ** 2).mean()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            sync()
            if i >= 2:  # the first steps include allocator growth and any compilation
                times.append(time.perf_counter() - t0)
        step_s = statistics.median(times)
        flops = step_flops(size, args.checkpointing)
        res = {
            "step_s": round(step_s, 3),
            "tflop_per_step": round(flops / 1e12, 1),
            "achieved_tflops": round(flops / step_s / 1e12, 1),
            "loss_finite": bool(torch.isfinite(loss)),
        }
        if cuda:
            res["peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            res["mfu"] = round(flops / step_s / 1e12 / record["matmul_bf16_tflops"], 3)
        record["sizes"][str(size)] = res
        print(size, json.dumps(res), flush=True)
    Path(args.out).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
