"""fp8 kernels at the shapes of a 1024² Step1X-Edit DiT step (CFG batch of 2, 8 832 tokens, 24 heads of 128).

Times the attention (torch SDPA in bf16 against cuDNN's fp8 SDPA through cudnn-frontend) and the
linear layers (cuBLAS bf16 against `torch._scaled_mm` with per-row scales), and prints each fp8
kernel's relative error against bf16 on random inputs. GPU only.

    python3 bench/kernels_fp8.py [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.fp8_attention import cudnn_version, quantize_per_tensor, sdpa_fp8  # noqa: E402
from model.fp8_base import quantize_rows, scaled_linear  # noqa: E402

BATCH, TOKENS, HEADS, HEAD_DIM, HIDDEN = 2, 8832, 24, 128, 3072
# (in, out) of the blocks' Linears over all 8 832 tokens, with how many of each the 19 + 38 blocks hold: a
# double block's image and text streams split the tokens between two Linears of one shape (q, k, v, out,
# ff in, ff out); a single block has q, k, v, the MLP's input and one output over [attention, MLP]
LINEARS = {(3072, 3072): 19 * 4 + 38 * 3, (3072, 12288): 19 + 38, (12288, 3072): 19, (15360, 3072): 38}


def gpu_ms(fn, repeat: int = 20) -> float:
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeat):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / repeat


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def attention() -> dict[str, float]:
    shape = (BATCH, TOKENS, HEADS, HEAD_DIM)
    q, k, v = (torch.randn(shape, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    flop = 4 * BATCH * HEADS * TOKENS**2 * HEAD_DIM

    def bf16() -> torch.Tensor:
        out = torch.nn.functional.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        )
        return out.transpose(1, 2)

    def fp8() -> torch.Tensor:
        return sdpa_fp8(q, k, v)

    (qq, qs), (kq, ks), (vq, vs) = (quantize_per_tensor(t) for t in (q, k, v))

    def fp8_kernel_only() -> torch.Tensor:
        return torch.ops.step1x.cudnn_sdpa_fp8(qq, kq, vq, qs, ks, vs, HEAD_DIM**-0.5)

    compiled = torch.compile(sdpa_fp8, fullgraph=True)

    def fp8_compiled() -> torch.Tensor:
        return compiled(q, k, v)

    out = {}
    runs = (
        ("bf16_sdpa", bf16),
        ("fp8_sdpa", fp8),
        ("fp8_sdpa_compiled", fp8_compiled),
        ("fp8_kernel", fp8_kernel_only),
    )
    for name, fn in runs:
        ms = gpu_ms(fn)
        out[f"{name}_ms"] = ms
        out[f"{name}_tflops"] = flop / ms / 1e9
    out["fp8_rel_err"] = rel_err(fp8(), bf16())
    out["fp8_compiled_rel_err"] = rel_err(fp8_compiled(), bf16())
    return out


def linear(fan_in: int, fan_out: int) -> dict[str, float]:
    x = torch.randn(BATCH * TOKENS, fan_in, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(fan_out, fan_in, device="cuda", dtype=torch.bfloat16) / fan_in**0.5
    bias = torch.randn(fan_out, device="cuda", dtype=torch.bfloat16)
    wq, ws = quantize_rows(w)
    xq, xs = quantize_rows(x)
    ws = ws[:, 0]
    times = {
        "bf16": gpu_ms(lambda: torch.nn.functional.linear(x, w, bias)),
        "fp8_mm": gpu_ms(
            lambda: torch._scaled_mm(xq, wq.t(), xs, ws[None, :], bias=bias, out_dtype=torch.bfloat16)
        ),
        "fp8_with_quant": gpu_ms(lambda: scaled_linear(x, wq, ws, bias)),
    }
    flop = 2 * x.shape[0] * fan_in * fan_out
    out = {f"{name}_ms": ms for name, ms in times.items()}
    out |= {f"{name}_tflops": flop / ms / 1e9 for name, ms in times.items()}
    out["fp8_rel_err"] = rel_err(scaled_linear(x, wq, ws, bias), torch.nn.functional.linear(x, w, bias))
    return out


def linears() -> dict[str, float]:
    out: dict[str, float] = {"bf16_step_ms": 0.0, "fp8_step_ms": 0.0}
    for (fan_in, fan_out), count in LINEARS.items():
        result = linear(fan_in, fan_out)
        out |= {f"{fan_in}x{fan_out}_{name}": value for name, value in result.items()}
        out["bf16_step_ms"] += result["bf16_ms"] * count
        out["fp8_step_ms"] += result["fp8_with_quant_ms"] * count
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "cudnn": cudnn_version()}
    result.update(attention())
    print(json.dumps(result, indent=1), flush=True)
    result.update(linears())
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
