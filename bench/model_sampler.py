"""Step1X-Edit sampler speed and memory at full size with random weights (issue 4).

Builds the full-size DiT + connector (12.4 B), the full-size Qwen2.5-VL-7B and the FLUX VAE with random
weights directly on the GPU, then times whole edits (encode, 28 denoising steps with CFG batch 2, decode)
and single DiT steps for several modes, on the same seed. Random weights show speed and memory only, never
the quality cost of a fast path; the relative error of the final latent against the bf16 eager path is
reported as a sanity number, not as a quality measure.

    python bench/model_sampler.py --modes eager,cache,compile,compile+cache,fp8+compile,fp8+compile+cache \
        --sizes 1024,512 --out results.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.latents import FLUX_VAE_CONFIG  # noqa: E402
from model.mllm import Step1XMLLMEncoder  # noqa: E402
from model.sampler import Step1XEditSampler  # noqa: E402
from model.tiny import byte_tokenizer, qwen_config  # noqa: E402
from model.transformer import Step1XEditTransformer  # noqa: E402

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "photos" / "astronaut.png"


def build(device: str, tiny: bool) -> Step1XEditSampler:
    from diffusers import AutoencoderKL
    from transformers import Qwen2_5_VLForConditionalGeneration

    if tiny:  # the CPU dry run of this script
        from model.tiny import tiny_qwen, tiny_transformer, tiny_vae

        encoder = Step1XMLLMEncoder(tiny_qwen(), byte_tokenizer())
        return Step1XEditSampler(tiny_transformer(), tiny_vae(), encoder, device=device)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(device):
        transformer = Step1XEditTransformer.for_version("v1.1")
        qwen = Qwen2_5_VLForConditionalGeneration._from_config(
            qwen_config(full_size=True), attn_implementation="sdpa"
        )
    torch.set_default_dtype(torch.float32)
    with torch.device(device):
        vae = AutoencoderKL(**FLUX_VAE_CONFIG)
    encoder = Step1XMLLMEncoder(qwen, byte_tokenizer())
    return Step1XEditSampler(transformer, vae, encoder, device=device, dtype=torch.bfloat16)


def matmul_tflops(n: int = 8192, reps: int = 50) -> float:
    a, b = (
        torch.randn(n, n, device="cuda", dtype=torch.bfloat16),
        torch.randn(n, n, device="cuda", dtype=torch.bfloat16),
    )
    for _ in range(5):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        a @ b
    end.record()
    torch.cuda.synchronize()
    return 2 * n**3 * reps / (start.elapsed_time(end) / 1e3) / 1e12


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def dit_step_ms(sampler: Step1XEditSampler, size: int, reps: int = 5) -> float:
    """Median time of one DiT forward at size x size, CFG batch 2, 640 text tokens."""
    tr = sampler.transformer
    cfg, dev, dt = tr.config, sampler.device, sampler.dtype
    g = size // 16
    x = torch.randn(2, g * g, cfg.in_channels, device=dev, dtype=dt)
    states = torch.randn(2, 640, cfg.mllm_hidden_size, device=dev, dtype=dt)
    mask = torch.ones(2, 640, dtype=torch.long, device=dev)
    t = torch.full((2,), 0.5, device=dev)
    times = []
    with torch.no_grad():
        for i in range(reps + 2):
            sync()
            t0 = time.perf_counter()
            tr(x, x, states, mask, t, (g, g))
            sync()
            if i >= 2:
                times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def dit_flops(size: int, text: int = 640, batch: int = 2) -> float:
    """Forward matmul FLOPs of the DiT (linears + attention) for one step; the connector is under 1 %."""
    h, mlp, n_img = 3072, 12288, 2 * (size // 16) ** 2
    seq = text + n_img
    double = 2 * seq * (h * 3 * h + h * h + 2 * h * mlp) + 4 * seq * seq * h  # per block, both streams
    single = 2 * seq * (h * (3 * h + mlp) + (h + mlp) * h) + 4 * seq * seq * h
    return batch * (19 * double + 38 * single)


def timed_edit(
    sampler: Step1XEditSampler, image: Image.Image, size: int, steps: int
) -> tuple[float, torch.Tensor]:
    sync()
    t0 = time.perf_counter()
    result = sampler.edit([image], ["add a red scarf"], size_level=size, num_steps=steps, seed=42)
    sync()
    return time.perf_counter() - t0, result.latents[0]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--modes", default="eager,cache,compile,fp8+compile,fp8+compile+cache")
    p.add_argument("--sizes", default="1024,512")
    p.add_argument("--steps", type=int, default=28)
    p.add_argument("--cache-threshold", type=float, default=0.08)
    p.add_argument("--out", default="model_sampler.json")
    p.add_argument(
        "--fullgraph",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fullgraph compile of the repeated blocks (the step cache's hooks need --no-fullgraph)",
    )
    p.add_argument(
        "--fp8-encoder", action="store_true", help="fp8 modes also quantise the MLLM (weight-only)"
    )
    p.add_argument("--tiny", action="store_true", help="tiny models on the CPU: a dry run of this script")
    args = p.parse_args()
    cuda = torch.cuda.is_available() and not args.tiny
    device = "cuda" if cuda else "cpu"
    sizes = [int(s) for s in args.sizes.split(",")]
    image = Image.open(PHOTO).convert("RGB")
    record: dict = {
        "gpu": torch.cuda.get_device_name() if cuda else "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "steps": args.steps,
        "matmul_bf16_tflops": round(matmul_tflops(), 1) if cuda else None,
        "modes": {},
    }
    print(json.dumps({k: v for k, v in record.items() if k != "modes"}), flush=True)
    t0 = time.perf_counter()
    sampler = build(device, args.tiny)
    record["build_s"] = round(time.perf_counter() - t0, 1)
    record["weights_gb"] = round(torch.cuda.memory_allocated() / 2**30, 2) if cuda else None
    baseline: dict[int, torch.Tensor] = {}
    compiled = quantized = False
    for mode in args.modes.split(","):
        parts = set(mode.split("+"))
        entry: dict = {}
        try:
            if "fp8" in parts and not quantized:
                sampler.quantize_fp8(encoder=args.fp8_encoder)
                quantized = True
            if "compile" in parts and not compiled:
                sampler.transformer.compile_repeated_blocks(fullgraph=args.fullgraph)
                compiled = True
            if "cache" in parts:
                sampler.enable_step_cache(args.cache_threshold)
            for size in sizes:
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                warm, _ = timed_edit(sampler, image, size, args.steps)  # includes any compilation
                secs, latent = timed_edit(sampler, image, size, args.steps)
                res = {"edit_s": round(secs, 2), "first_edit_s": round(warm, 2)}
                res["peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None
                if "cache" not in parts:
                    ms = dit_step_ms(sampler, size)
                    res["dit_step_ms"] = round(ms, 1)
                    res["dit_tflops"] = round(dit_flops(size) / (ms / 1e3) / 1e12, 1)
                if mode == "eager":
                    baseline[size] = latent
                elif size in baseline:
                    ref = baseline[size]
                    res["rel_err_vs_eager"] = round(float((latent - ref).norm() / ref.norm()), 4)
                res["finite"] = bool(torch.isfinite(latent).all())
                entry[str(size)] = res
                print(mode, size, json.dumps(res), flush=True)
        except Exception as e:  # a failing fast path is a result to record, not a reason to lose the others
            entry["error"] = f"{type(e).__name__}: {e}"[:500]
            print(mode, "ERROR", entry["error"], flush=True)
        finally:
            if "cache" in parts:
                sampler.disable_step_cache()
        record["modes"][mode] = entry
    Path(args.out).write_text(json.dumps(record, indent=1))
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
