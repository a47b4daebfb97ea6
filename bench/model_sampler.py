"""Step1X-Edit sampler speed and memory at full size with random weights (issue 4).

Builds the full-size DiT + connector (12.4 B), the full-size Qwen2.5-VL-7B and the FLUX VAE with random
weights directly on the GPU, then times whole edits (encode, 28 denoising steps with CFG batch 2, decode)
and single DiT steps for several modes, on the same seed. Random weights show speed and memory only, never
the quality cost of a fast path; the relative error of the final latent against the bf16 eager path is
reported as a sanity number, not as a quality measure.

    python bench/model_sampler.py --modes eager,cudnn+compile,cudnn+compile+skip --sizes 1024,512 \
        --attention-check --phase-peaks --out results.json

A mode is a "+"-joined set of: eager (the baseline: bf16, torch SDPA's own kernel choice), cudnn
(diffusers' _native_cudnn attention backend), compile (compile_repeated_blocks), fp8 (torchao dynamic
activation + weight), fp8wo (torchao weight-only), fp8mm (model/fp8_base.py's fp8 matmuls), fp8attn
(cuDNN fp8 attention), skip (StepSkipping with --skip-warmup/--skip-interval),
fbc (diffusers FirstBlockCache at --cache-threshold), lowvae (bf16 VAE in 512-pixel tiles), offload (each
model on the GPU only while it runs). Modes accumulate in order (fp8 and compile cannot be undone), so list
them from the least to the most transformed.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.latents import FLUX_VAE_CONFIG, decode_latents, encode_images, image_to_pixels  # noqa: E402
from model.mllm import Step1XMLLMEncoder  # noqa: E402
from model.sampler import Step1XEditPipeline, StepSkipping  # noqa: E402
from model.tiny import byte_tokenizer, qwen_config  # noqa: E402
from model.transformer import Step1XEditTransformer  # noqa: E402

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "photos" / "astronaut.png"


def build(device: str, tiny: bool) -> Step1XEditPipeline:
    from diffusers import AutoencoderKL
    from transformers import Qwen2_5_VLForConditionalGeneration

    if tiny:  # the CPU dry run of this script
        from model.tiny import tiny_qwen, tiny_transformer, tiny_vae

        encoder = Step1XMLLMEncoder(tiny_qwen(), byte_tokenizer())
        pipe = Step1XEditPipeline.from_parts(tiny_transformer(), tiny_vae(), encoder, device=device)
        pipe.set_progress_bar_config(disable=True)
        return pipe
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
    pipe = Step1XEditPipeline.from_parts(transformer, vae, encoder, device=device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


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


def dit_inputs(sampler: Step1XEditPipeline, size: int) -> tuple:
    """One DiT call's inputs at size x size: CFG batch 2, 640 text tokens, fixed seed."""
    cfg, dev, dt = sampler.transformer.config, sampler.compute_device, sampler.compute_dtype
    g = size // 16
    gen = torch.Generator(dev).manual_seed(0)
    x = torch.randn(2, g * g, cfg.in_channels, device=dev, dtype=dt, generator=gen)
    states = torch.randn(2, 640, cfg.mllm_hidden_size, device=dev, dtype=dt, generator=gen)
    mask = torch.ones(2, 640, dtype=torch.long, device=dev)
    return x, x, states, mask, torch.full((2,), 0.5, device=dev), (g, g)


def dit_step_ms(sampler: Step1XEditPipeline, size: int, reps: int = 5) -> tuple[float, torch.Tensor]:
    """Median time of one DiT forward at size x size, and its output."""
    inputs = dit_inputs(sampler, size)
    times = []
    with torch.no_grad():
        for i in range(reps + 2):
            sync()
            t0 = time.perf_counter()
            out = sampler.transformer(*inputs)
            sync()
            if i >= 2:
                times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), out


def attention_check(sampler: Step1XEditPipeline, sizes: list[int]) -> dict:
    """Eager DiT step time and output per attention backend, against torch SDPA's own choice."""
    result: dict = {}
    for size in sizes:
        ref = None
        for backend in ("native", "_native_cudnn", "_native_flash", "_native_efficient"):
            try:
                sampler.set_attention_backend(backend)
                ms, out = dit_step_ms(sampler, size)
                entry = {"dit_step_ms": round(ms, 1), "finite": bool(torch.isfinite(out).all())}
                if ref is None:
                    ref = out.float()
                else:
                    entry["rel_err_vs_native"] = float((out.float() - ref).norm() / ref.norm())
            except Exception as e:  # a backend this GPU or build lacks is a result, not a crash
                entry = {"error": f"{type(e).__name__}: {e}"[:300]}
            result[f"{size}/{backend}"] = entry
            print("attention", size, backend, json.dumps(entry), flush=True)
    sampler.set_attention_backend("native")
    return result


def peak_of(fn) -> tuple[float, object]:
    """Peak GiB allocated while fn runs, everything already resident counted (None on the CPU)."""
    if not torch.cuda.is_available():
        return None, fn()
    sync()
    torch.cuda.reset_peak_memory_stats()
    out = fn()
    sync()
    return round(torch.cuda.max_memory_allocated() / 2**30, 2), out


@torch.no_grad()
def phase_peaks(sampler: Step1XEditPipeline, image: Image.Image, size: int) -> dict:
    """Peak memory of each part of an edit at size x size, with all three models resident.

    The VAE is measured as configured, then in bf16 and in bf16 with 512-pixel tiles (the sampler's
    low_memory_vae): their peaks, and the PSNR of their decode against the configured VAE's decode of the
    same latent.
    """
    im = image.resize((size, size))
    pixels = image_to_pixels(im)[None].to(sampler.compute_device)
    vae = sampler.vae
    res: dict = {"vae_dtype": str(vae.dtype)}
    if torch.cuda.is_available():
        res["weights_gib"] = round(torch.cuda.memory_allocated() / 2**30, 2)
    res["mllm"], _ = peak_of(lambda: sampler.encoder([im, im], ["add a red scarf", ""]))
    res["dit_step"], _ = peak_of(lambda: sampler.transformer(*dit_inputs(sampler, size)))
    res["vae_encode"], lat = peak_of(lambda: encode_images(vae, pixels))
    res["vae_decode"], ref = peak_of(lambda: decode_latents(vae, lat))
    dtype, tiling = vae.dtype, vae.use_tiling
    for name, tile in (("bf16", None), ("bf16_tile512", 512)):
        sampler.low_memory_vae(torch.bfloat16, tile)
        res[f"vae_encode_{name}"], _ = peak_of(lambda: encode_images(vae, pixels))
        res[f"vae_decode_{name}"], low = peak_of(lambda: decode_latents(vae, lat))
        mse = float(((low.float() - ref.float()) / 2).pow(2).mean())  # [-1, 1] pixels -> [0, 1] scale
        res[f"vae_decode_{name}_psnr_db"] = round(10 * math.log10(1 / max(mse, 1e-12)), 1)
    vae.to(dtype)
    vae.use_tiling = tiling
    return res


def dit_flops(size: int, text: int = 640, batch: int = 2) -> float:
    """Forward matmul FLOPs of the DiT (linears + attention) for one step; the connector is under 1 %."""
    h, mlp, n_img = 3072, 12288, 2 * (size // 16) ** 2
    seq = text + n_img
    double = 2 * seq * (h * 3 * h + h * h + 2 * h * mlp) + 4 * seq * seq * h  # per block, both streams
    single = 2 * seq * (h * (3 * h + mlp) + (h + mlp) * h) + 4 * seq * seq * h
    return batch * (19 * double + 38 * single)


def timed_edit(
    sampler: Step1XEditPipeline, image: Image.Image, size: int, steps: int
) -> tuple[float, torch.Tensor]:
    sync()
    t0 = time.perf_counter()
    result = sampler.edit([image], ["add a red scarf"], size_level=size, num_steps=steps, seed=42)
    sync()
    return time.perf_counter() - t0, result.latents[0]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--modes", default="eager,cudnn+compile,cudnn+compile+skip")
    p.add_argument("--sizes", default="1024,512")
    p.add_argument("--steps", type=int, default=28)
    p.add_argument("--cache-threshold", type=float, default=0.08)
    p.add_argument("--skip-warmup", type=int, default=3)
    p.add_argument("--skip-interval", type=int, default=5)
    p.add_argument("--attention-check", action="store_true", help="time each attention backend first")
    p.add_argument("--phase-peaks", action="store_true", help="peak memory of each part of an edit")
    p.add_argument("--save-latents", action="store_true", help="final latents beside --out (safetensors)")
    p.add_argument("--repeat", type=int, default=1, help="timed edits per mode and size (after a warm one)")
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
    record["weights_gib"] = round(torch.cuda.memory_allocated() / 2**30, 2) if cuda else None
    out = Path(args.out)
    if args.attention_check and cuda:
        record["attention"] = attention_check(sampler, sizes)
    if args.phase_peaks:
        record["phase_peaks_bf16"] = {str(z): phase_peaks(sampler, image, z) for z in sizes}
        print("phase peaks bf16", json.dumps(record["phase_peaks_bf16"]), flush=True)
    out.write_text(json.dumps(record, indent=1))
    baseline: dict[int, torch.Tensor] = {}
    latents: dict[str, torch.Tensor] = {}
    compiled = quantized = False
    for mode in args.modes.split(","):
        parts = set(mode.split("+"))
        entry: dict = {}
        try:
            fp8 = {"fp8": "dynamic", "fp8wo": "weight_only", "fp8mm": "matmul"}
            if parts & set(fp8) and not quantized:
                sampler.quantize_fp8(args.fp8_encoder, next(fp8[part] for part in parts if part in fp8))
                quantized = True
                if args.phase_peaks:
                    entry["phase_peaks"] = {str(z): phase_peaks(sampler, image, z) for z in sizes}
                    print(mode, "phase peaks", json.dumps(entry["phase_peaks"]), flush=True)
            if "offload" in parts:
                sampler.set_offload(True)
            if "lowvae" in parts:
                sampler.low_memory_vae(torch.bfloat16, 512)
            if "cudnn" in parts:
                sampler.set_attention_backend("_native_cudnn")
            if "fp8attn" in parts:
                sampler.use_fp8_attention()
            if "compile" in parts and not compiled:
                sampler.compile_blocks(fullgraph=args.fullgraph)
                compiled = True
            if "fbc" in parts:
                sampler.enable_step_cache(args.cache_threshold)
            if "skip" in parts:
                sampler.step_skipping = StepSkipping(args.skip_warmup, args.skip_interval)
            for size in sizes:
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                warm, _ = timed_edit(sampler, image, size, args.steps)  # includes any compilation
                runs = [timed_edit(sampler, image, size, args.steps) for _ in range(args.repeat)]
                latent = runs[-1][1]
                res = {"edit_s": [round(t, 2) for t, _ in runs], "first_edit_s": round(warm, 2)}
                if cuda:
                    res["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
                    res["weights_gib"] = round(torch.cuda.memory_allocated() / 2**30, 2)
                # the caches change which steps run, not the step; offloaded, the DiT is not on the GPU
                if not parts & {"fbc", "skip", "offload"}:
                    ms, _ = dit_step_ms(sampler, size)
                    res["dit_step_ms"] = round(ms, 1)
                    res["dit_tflops"] = round(dit_flops(size) / (ms / 1e3) / 1e12, 1)
                if mode == "eager":
                    baseline[size] = latent
                elif size in baseline:
                    ref = baseline[size]
                    res["rel_err_vs_eager"] = round(float((latent - ref).norm() / ref.norm()), 4)
                res["finite"] = bool(torch.isfinite(latent).all())
                latents[f"{mode}/{size}"] = latent.contiguous()
                entry[str(size)] = res
                print(mode, size, json.dumps(res), flush=True)
        except Exception as e:  # a failing fast path is a result to record, not a reason to lose the others
            entry["error"] = f"{type(e).__name__}: {e}"[:500]
            print(mode, "ERROR", entry["error"], flush=True)
        finally:
            if "fbc" in parts:
                sampler.disable_step_cache()
            sampler.step_skipping = None
        record["modes"][mode] = entry
        out.write_text(json.dumps(record, indent=1))  # a run cut off by its time limit keeps what it measured
        if args.save_latents:  # to compare runs: the same seed builds the same random weights on one GPU kind
            save_file(latents, str(out.with_suffix(".latents.safetensors")))
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
