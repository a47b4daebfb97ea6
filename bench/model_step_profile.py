"""Where one Step1X-Edit DiT step spends its GPU time (issue 4): matmuls, attention, fused elementwise, rest.

Builds the full-size DiT + connector with random bf16 weights, runs one CFG-batch-2 step at --size eagerly
and after `compile_repeated_blocks`, and sums the CUDA kernel times of two profiled steps by kernel family.

    python bench/model_step_profile.py --size 1024 --out step_profile.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.transformer import Step1XEditTransformer  # noqa: E402

FAMILIES = {  # first match wins; names as cuBLAS, cuDNN, torch and Triton report their kernels
    "attention": re.compile(r"cudnn|fmha|flash|attention|sdpa", re.I),
    "matmul": re.compile(r"gemm|nvjet|xmma|cutlass|sm90|scaled_mm", re.I),
    "fused (Triton)": re.compile(r"triton", re.I),
}


def family(name: str) -> str:
    return next((fam for fam, pattern in FAMILIES.items() if pattern.search(name)), "other")


def profiled_ms(model: Step1XEditTransformer, inputs: tuple, steps: int = 2) -> dict:
    with torch.no_grad():
        for _ in range(3):  # warm-up, and compilation when compiled
            model(*inputs)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(steps):
                model(*inputs)
            torch.cuda.synchronize()
    totals: dict[str, float] = {}
    kernels: dict[str, float] = {}
    for event in prof.key_averages():
        ms = event.self_device_time_total / 1e3 / steps
        if ms <= 0:
            continue
        totals[family(event.key)] = totals.get(family(event.key), 0.0) + ms
        kernels[event.key[:90]] = ms
    top = dict(sorted(kernels.items(), key=lambda kv: -kv[1])[:12])
    return {
        "step_ms": round(sum(totals.values()), 1),
        "by_family_ms": {k: round(v, 1) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])},
        "top_kernels_ms": {k: round(v, 2) for k, v in top.items()},
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--out", default="step_profile.json")
    args = p.parse_args()
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = Step1XEditTransformer.for_version("v1.1").eval()
    torch.set_default_dtype(torch.float32)
    g = args.size // 16
    x = torch.randn(2, g * g, 64, device="cuda", dtype=torch.bfloat16)
    states = torch.randn(2, 640, 3584, device="cuda", dtype=torch.bfloat16)
    mask = torch.ones(2, 640, dtype=torch.long, device="cuda")
    inputs = (x, x, states, mask, torch.full((2,), 0.5, device="cuda"), (g, g))
    record = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "size": args.size}
    record["eager"] = profiled_ms(model, inputs)
    print("eager", json.dumps(record["eager"]), flush=True)
    model.compile_repeated_blocks(fullgraph=True)
    record["compiled"] = profiled_ms(model, inputs)
    print("compiled", json.dumps(record["compiled"]), flush=True)
    Path(args.out).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
