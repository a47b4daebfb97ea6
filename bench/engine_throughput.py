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
from dataclasses import dataclass
from pathlib import Path

import cv2
from PIL import Image

from pipelines.config import RunConfig
from pipelines.decode import decode_image
from pipelines.runner import RunSummary, _init_ray, run
from pipelines.stages import encode_image

PHOTOS = Path(__file__).resolve().parents[1] / "examples" / "photos"


def make_sources(folder: Path, count: int, side: int) -> list[Path]:
    """`count` distinct 1024 px photos: the shipped ones, upscaled, cropped and flipped."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix in (".png", ".jpg"))
    paths = []
    for i in range(count):
        image = Image.open(photos[i % len(photos)]).convert("RGB")
        round_ = i // len(photos)  # each round enlarges a little more, so every source is distinct
        scale = (side + 16 * round_) / min(image.size)
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, Image.Resampling.LANCZOS)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side))
        if round_ % 2:
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


@dataclass
class Timing:
    seconds: float  # the whole run
    first_item: float  # until the first source came back: Ray's start-up and the first task
    steady: float  # samples per second after the first source came back
    samples: int


def timed_run(task: str, source: Path, out: Path, executor: str) -> Timing:
    shutil.rmtree(out, ignore_errors=True)
    config = RunConfig(task=task, source=str(source), out=str(out), workers=1, max_side=1024)
    marks: list[tuple[float, int]] = []

    def mark(summary: RunSummary, _todo: int) -> None:
        marks.append((time.perf_counter(), summary.samples))

    start = time.perf_counter()
    summary = run(config, executor=executor, on_progress=mark)
    seconds = time.perf_counter() - start
    (t_first, n_first), (t_last, n_last) = marks[0], marks[-1]
    return Timing(seconds, t_first - start, (n_last - n_first) / (t_last - t_first), summary.samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", type=int, default=48)
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--out", default="/tmp/bench-engine")
    parser.add_argument("--tasks", default="tone_transformation,subject_removal")
    args = parser.parse_args()
    # Per core means one thread: OpenCV would otherwise spread some filters over every core.
    cv2.setNumThreads(1)
    root = Path(args.out)
    source = root / "sources"
    paths = make_sources(source, args.sources, args.side)
    _init_ray(RunConfig(task="tone_transformation", source=str(source), out=str(root / "probe")))

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )
    print(
        "| task | sources | samples | loop samples/s/core | floor samples/s/core | ratio | Ray 1 worker: "
        "samples/s | first result after | steady samples/s | steady overhead vs loop |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for task in args.tasks.split(","):
        loop = timed_run(task, source, root / f"{task}-loop", "local")
        ray = timed_run(task, source, root / f"{task}-ray", "ray")
        assert ray.samples == loop.samples, "both executors must produce the same samples"
        floor_rate = loop.samples / floor_seconds(paths, loop.samples / len(paths))
        loop_rate = loop.samples / loop.seconds
        print(
            f"| {task} | {len(paths)} | {loop.samples} | {loop_rate:.2f} | {floor_rate:.2f} "
            f"| {loop_rate / floor_rate:.2f} | {ray.samples / ray.seconds:.2f} | {ray.first_item:.1f} s "
            f"| {ray.steady:.2f} | {loop.steady / ray.steady - 1:+.1%} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
