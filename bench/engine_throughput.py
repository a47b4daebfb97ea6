"""Engine throughput at 1024 px: samples per second per CPU core, against the floor of decoding the
source and encoding two images with the same libraries; and the cost of Ray (one worker) over a plain loop.

    python bench/engine_throughput.py --sources 24 --out /tmp/bench-engine

Prints a markdown table (paste it into bench/RESULTS.md with the command, machine and date).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from pathlib import Path

from PIL import Image

from pipelines.config import RunConfig
from pipelines.decode import decode_image
from pipelines.runner import _init_ray, run
from pipelines.stages import encode_image

PHOTOS = Path(__file__).resolve().parents[1] / "examples" / "photos"


def make_sources(folder: Path, count: int, side: int) -> list[Path]:
    """`count` distinct 1024 px photos: the shipped ones, upscaled, cropped and flipped."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix in (".png", ".jpg"))
    paths = []
    for i in range(count):
        image = Image.open(photos[i % len(photos)]).convert("RGB")
        scale = side / min(image.size)
        image = image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS
        )
        offset = (i // len(photos)) * 16
        image = image.crop((offset, 0, offset + side, side)) if image.width >= side + offset else image
        if (i // len(photos)) % 2:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        path = folder / f"src_{i:03d}.jpg"
        image.save(path, quality=92)
        paths.append(path)
    return paths


def floor_seconds(paths: list[Path], samples_per_source: float) -> float:
    """Decode each source once and encode two JPEGs per sample: the least work any pipeline must do."""
    start = time.perf_counter()
    for path in paths:
        image, _ = decode_image(path.read_bytes())
        for _ in range(round(samples_per_source)):
            encode_image(image, "jpg", 95)
            encode_image(image[:, ::-1].copy(), "jpg", 95)
    return time.perf_counter() - start


def timed_run(task: str, source: Path, out: Path, executor: str) -> tuple[float, int]:
    shutil.rmtree(out, ignore_errors=True)
    config = RunConfig(task=task, source=str(source), out=str(out), workers=1, max_side=1024)
    start = time.perf_counter()
    summary = run(config, executor=executor)
    return time.perf_counter() - start, summary.samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", type=int, default=24)
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--out", default="/tmp/bench-engine")
    args = parser.parse_args()
    root = Path(args.out)
    source = root / "sources"
    paths = make_sources(source, args.sources, args.side)
    _init_ray(RunConfig(task="tone_transformation", source=str(source), out=str(root / "probe")))

    rows = []
    for task in ("tone_transformation", "subject_removal"):
        loop_s, samples = timed_run(task, source, root / f"{task}-loop", "local")
        ray_s, ray_samples = timed_run(task, source, root / f"{task}-ray", "ray")
        assert ray_samples == samples, "both executors must produce the same samples"
        floor_s = floor_seconds(paths, samples / len(paths))
        rows.append(
            (
                task,
                len(paths),
                samples,
                samples / loop_s,
                samples / floor_s,
                (samples / loop_s) / (samples / floor_s),
                samples / ray_s,
                ray_s / loop_s - 1.0,
            )
        )
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )
    print(
        "| task | sources | samples | loop samples/s/core | floor samples/s/core | ratio | "
        "Ray 1 worker samples/s | Ray overhead |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for task, n, samples, loop, floor, ratio, ray, overhead in rows:
        print(
            f"| {task} | {n} | {samples} | {loop:.2f} | {floor:.2f} | {ratio:.2f} | {ray:.2f} "
            f"| {overhead:+.1%} |"
        )


if __name__ == "__main__":
    main()
