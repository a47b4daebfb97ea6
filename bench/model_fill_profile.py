"""Where a FLUX.1-Fill call's time goes on the GPU: the kernels' busy share of one fill, per phase, eager and
compiled (issue 11: the removal run's GPU is busy 65 % while the inpainter is busy 91 %).

    # on one GPU (an H200), full size with random weights
    python bench/model_fill_profile.py --canvas 784x720,1024x768 --modes eager,regional
    # the CPU dry run with tiny models
    python bench/model_fill_profile.py --tiny --canvas 64x64 --modes eager --steps 2

Modes: eager; compile (the whole DiT, static shapes); cudagraphs (the same, CUDA graphs); regional (what
annotators/inpaint_models.py does on a GPU: its repeated blocks compiled, dynamic shapes; last, as it compiles
the model in place). For each mode: the first fill at each canvas (compilation), the wall time of a fill
at the first canvas (after a warm-up fill), the share of that wall time in which at least one
GPU kernel ran (torch.profiler's trace, the union of kernel intervals: what nvidia-smi's utilization.gpu
samples), and the same share inside the denoising loop and outside it, with the longest gaps between kernels.
Printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def kernel_union(trace: dict[str, Any], start: float, end: float) -> tuple[float, list[float]]:
    """Microseconds inside [start, end] covered by at least one GPU kernel or copy, and the gaps (µs)."""
    spans = sorted(
        (event["ts"], event["ts"] + event["dur"])
        for event in trace["traceEvents"]
        if event.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset") and "dur" in event
    )
    covered, gaps, cursor = 0.0, [], start
    for lo, hi in spans:
        lo, hi = max(lo, start), min(hi, end)
        if hi <= cursor:
            continue
        if lo > cursor:
            gaps.append(lo - cursor)
        covered += hi - max(lo, cursor)
        cursor = hi
    if end > cursor:
        gaps.append(end - cursor)
    return covered, gaps


def annotation(trace: dict[str, Any], name: str) -> list[tuple[float, float]]:
    return [
        (event["ts"], event["ts"] + event["dur"])
        for event in trace["traceEvents"]
        if event.get("name") == name and event.get("cat") == "user_annotation"
    ]


def profile_fill(fill: Any, image: Any, mask: Any) -> dict[str, Any]:
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    transformer = fill.pipe.transformer
    forward = transformer.forward

    def traced_forward(*args: Any, **kwargs: Any) -> Any:
        with record_function("dit_step"):
            return forward(*args, **kwargs)

    transformer.forward = traced_forward
    try:
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            with record_function("fill"):
                fill(image, mask, None, 0)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
    finally:
        transformer.forward = forward
    path = Path(tempfile.mkdtemp()) / "trace.json"
    prof.export_chrome_trace(str(path))
    trace = json.loads(path.read_text())
    ((start, end),) = annotation(trace, "fill")
    steps = annotation(trace, "dit_step")
    busy, gaps = kernel_union(trace, start, end)
    loop_start, loop_end = steps[0][0], steps[-1][1]
    loop_busy, loop_gaps = kernel_union(trace, loop_start, loop_end)
    wall = end - start
    return {
        "fill_ms_cpu_side": round(wall / 1000, 1),
        "gpu_busy_in_fill": round(busy / wall, 3),
        "loop_ms": round((loop_end - loop_start) / 1000, 1),
        "gpu_busy_in_loop": round(loop_busy / (loop_end - loop_start), 3),
        "outside_loop_ms": round((wall - (loop_end - loop_start)) / 1000, 1),
        "gpu_busy_outside_loop": round((busy - loop_busy) / max(wall - (loop_end - loop_start), 1), 3),
        "largest_gaps_ms": [round(g / 1000, 2) for g in sorted(gaps, reverse=True)[:8]],
        "gaps_over_50us_ms_total": round(sum(g for g in gaps if g > 50) / 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument(
        "--canvas", default="784x720,1024x768", help="WIDTHxHEIGHT of the fill canvases; the first is timed"
    )
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--modes", default="eager,regional")
    parser.add_argument("--repeat", type=int, default=3, help="timed fills per mode after the warm-up")
    args = parser.parse_args()
    os.environ["STEP1X_BENCH_SIZE"] = "tiny" if args.tiny else "full"

    import numpy as np
    import torch
    from model_backend_edits import build_flux_fill
    from PIL import Image

    from annotators.inpaint_models import FluxFill
    from annotators.pretrained import device, inference_dtype

    on = device()
    started = time.perf_counter()
    pipe = build_flux_fill(on, inference_dtype(on))
    built = time.perf_counter() - started
    rng = np.random.default_rng(0)
    canvases = []
    for canvas in args.canvas.split(","):
        width, height = (int(v) for v in canvas.split("x"))
        image = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
        hole = np.zeros((height, width), np.uint8)
        hole[height // 4 : height * 3 // 4, width // 3 : width * 2 // 3] = 255
        canvases.append((canvas, image, Image.fromarray(hole)))
    (_, image, mask) = canvases[0]
    eager_transformer = pipe.transformer
    results: dict[str, Any] = {
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "none (CPU)",
        "torch": torch.__version__,
        "canvas": args.canvas,
        "steps": args.steps,
        "build_s": round(built, 1),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    for mode in args.modes.split(","):
        if mode in ("eager", "regional"):
            pipe.transformer = eager_transformer
        else:
            options = {"mode": "reduce-overhead"} if mode == "cudagraphs" else {}
            pipe.transformer = torch.compile(eager_transformer, dynamic=False, **options)
        fill = FluxFill(pipe, steps=args.steps, compile_blocks=mode == "regional")
        first = {}
        for canvas, canvas_image, canvas_mask in canvases:
            started = time.perf_counter()
            fill(canvas_image, canvas_mask, None, 0)
            first[canvas] = round(time.perf_counter() - started, 1)
        walls = []
        for _ in range(args.repeat):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            started = time.perf_counter()
            fill(image, mask, None, 0)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            walls.append(time.perf_counter() - started)
        row = {"first_fill_s": first, "fill_s": [round(w, 3) for w in walls]}
        row.update(profile_fill(fill, image, mask))
        results[mode] = row
        print(json.dumps({mode: row}), flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
