"""Step1X-Edit LoRA training step at full size with random weights: peak memory and MFU (issue 5).

As in the reference recipe, the MLLM states and VAE latents are cached (they are inputs here, random), so
the GPU holds the bf16 DiT + connector (with --fp8-base the blocks' frozen Linears in float8), the LoRA
weights (fp32, or bf16 with --lora-dtype bf16), their gradients, the optimizer state (AdamW, or torchao's
AdamW8bit) and the activations. One step = the trainer's own pieces: `add_lora` (rank r on every Linear of
the blocks), `make_optimizer`, logit-normal shifted sigma, rectified-flow target, MSE on the target tokens,
backward, optimizer step.

Memory: the bytes of the frozen weights, the LoRA weights (their gradients take as many) and the optimizer
state, the allocation resident between steps, and the peak of each phase of a step (forward, backward,
optimizer step + zero_grad; the peak statistics are reset between phases; the maximum over the steps).
Each phase's time too (median over steps 3..): torchao's optimizers step one parameter at a time.

FLOPs counted (model FLOPs utilisation): the DiT's matmuls, per sample of S = 640 + 2N tokens,
    linear L = 2 S (19 (2 (4h^2 + 2 h m)) + 38 (h (3h + m) + (h + m) h)),  attention A = 4 S^2 h (19 + 38)
with h = 3072, m = 12288. A step does forward (L + A), backward for activations (L + 2A; frozen base
weights need no weight gradient, LoRA's is negligible), and with gradient checkpointing one recomputed
forward (L + A): 3L + 4A; without checkpointing 2L + 3A. MFU = FLOPs / step time / measured bf16 matmul rate.

    python bench/train_lora.py --sizes 512,768,1024 --rank 64 --out train_lora.json
    python bench/train_lora.py --sizes 1024 --compile --optimizer adamw8bit --lora-dtype bf16 --fp8-base
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
from model.checkpointing import cpu_offloaded_checkpoint  # noqa: E402
from model.optim import make_optimizer, state_tensors  # noqa: E402
from model.train import TrainConfig, add_lora, check_config, sample_sigmas  # noqa: E402
from model.transformer import Step1XEditTransformer  # noqa: E402


def step_flops(size: int, checkpointing: bool, h: int = 3072, m: int = 12288, text: int = 640) -> float:
    s = text + 2 * (size // 16) ** 2
    linear = 2 * s * (19 * 2 * (4 * h * h + 2 * h * m) + 38 * (h * (3 * h + m) + (h + m) * h))
    attention = 4 * s * s * h * (19 + 38)
    return 3 * linear + 4 * attention if checkpointing else 2 * linear + 3 * attention


def gib(tensors) -> float:
    return round(sum(t.numel() * t.element_size() for t in tensors) / 2**30, 3)


class Phases:
    """Time and CUDA peak memory of each phase of a step: at each phase end the device is synchronised, the
    clock read and the peak statistics reset, so each phase's peak is its own."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.seconds: dict[str, list[float]] = {}
        self.peak_gib: dict[str, float] = {}

    def start(self) -> None:
        sync()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        self.t = time.perf_counter()

    def end(self, name: str) -> None:
        sync()
        now = time.perf_counter()
        self.seconds.setdefault(name, []).append(now - self.t)
        self.t = now
        if self.cuda:
            self.peak_gib[name] = max(self.peak_gib.get(name, 0.0), torch.cuda.max_memory_allocated() / 2**30)
            torch.cuda.reset_peak_memory_stats()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="512,768,1024")
    p.add_argument("--rank", type=int, default=64)
    p.add_argument("--alpha", type=int, default=32)
    p.add_argument("--optimizer", choices=["adamw", "adamw8bit"], default="adamw")
    p.add_argument("--lora-dtype", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--fp8-base", action="store_true", help="the blocks' frozen Linears in float8")
    p.add_argument("--steps", type=int, default=6, help="the median is over steps 3..")
    p.add_argument("--checkpointing", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument(
        "--offload-checkpoints", action="store_true", help="the checkpointed block inputs in CPU memory"
    )
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
    cfg = TrainConfig(
        lora_rank=args.rank,
        lora_alpha=args.alpha,
        optimizer=args.optimizer,
        lora_dtype=args.lora_dtype,
        fp8_base=args.fp8_base,
        gradient_checkpointing=args.checkpointing,
        offload_checkpoints=args.offload_checkpoints,
        lr=1e-4,
    )
    check_config(cfg)
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
    add_lora(model, cfg)
    if args.checkpointing:
        model.enable_gradient_checkpointing(cpu_offloaded_checkpoint if args.offload_checkpoints else None)
    if args.compile:
        model.compile_repeated_blocks(fullgraph=True)
    model.to(device).train()
    params = [q for q in model.parameters() if q.requires_grad]
    opt = make_optimizer(cfg, params)
    c = model.config
    record = {
        "gpu": torch.cuda.get_device_name() if cuda else "cpu",
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rank": args.rank,
        "alpha": args.alpha,
        "optimizer": args.optimizer,
        "lora_dtype": args.lora_dtype,
        "fp8_base": args.fp8_base,
        "checkpointing": args.checkpointing,
        "offload_checkpoints": args.offload_checkpoints,
        "compile": args.compile,
        "sdpa_cudnn": args.sdpa_cudnn,
        "lora_params_m": round(sum(q.numel() for q in params) / 1e6, 1),
        "frozen_weights_gib": gib(q for q in model.parameters() if not q.requires_grad),
        "lora_weights_gib": gib(params),
        "matmul_bf16_tflops": round(matmul_tflops(), 1) if cuda else None,
        "sizes": {},
    }
    print(json.dumps(record), flush=True)
    for size in [int(s) for s in args.sizes.split(",")]:
        g = size // 16
        gen = torch.Generator().manual_seed(size)
        if cuda:
            torch.cuda.empty_cache()
        phases = Phases(cuda)
        for _ in range(args.steps):
            x0 = torch.randn(1, g * g, c.in_channels, generator=gen).to(device)
            ref = torch.randn(1, g * g, c.in_channels, generator=gen).to(device)
            noise = torch.randn(1, g * g, c.in_channels, generator=gen).to(device)
            states = torch.randn(1, 640, c.mllm_hidden_size, generator=gen).to(device, torch.bfloat16)
            mask = torch.ones(1, 640, dtype=torch.long, device=device)
            sigma = sample_sigmas(cfg, 1, gen).to(device)
            s = sigma[:, None, None]
            phases.start()
            resident = torch.cuda.memory_allocated() / 2**30 if cuda else None
            with torch.autocast(device.type, dtype=torch.bfloat16):
                pred = model(((1 - s) * x0 + s * noise), ref, states, mask, sigma, (g, g))
                loss = ((pred.float() - (noise - x0)) ** 2).mean()
            phases.end("forward")
            loss.backward()
            phases.end("backward")
            opt.step()
            opt.zero_grad(set_to_none=True)
            phases.end("optimizer")
        # the first steps include allocator growth and any compilation
        phase_s = {k: statistics.median(v[2:]) for k, v in phases.seconds.items()}
        step_s = statistics.median(list(map(sum, zip(*phases.seconds.values(), strict=True)))[2:])
        flops = step_flops(size, args.checkpointing)
        res = {
            "step_s": round(step_s, 3),
            "tflop_per_step": round(flops / 1e12, 1),
            "achieved_tflops": round(flops / step_s / 1e12, 1),
            "phase_s": {k: round(v, 3) for k, v in phase_s.items()},
            "loss_finite": bool(torch.isfinite(loss)),
            "optimizer_state_gib": gib(state_tensors(opt).values()),
        }
        if cuda:
            res["resident_gib"] = round(resident, 2)  # weights + LoRA + optimizer state between steps
            res["peak_gib"] = {k: round(v, 2) for k, v in phases.peak_gib.items()}
            res["peak_gib"]["step"] = max(res["peak_gib"].values())
            res["mfu"] = round(flops / step_s / 1e12 / record["matmul_bf16_tflops"], 3)
        record["sizes"][str(size)] = res
        print(size, json.dumps(res), flush=True)
    Path(args.out).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
