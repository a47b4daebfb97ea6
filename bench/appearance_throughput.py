"""Offline throughput of the appearance categories per CPU core: color_alteration, material_modification and
style_transfer on the held-out photos (bench/heldout_photos.py, labels in bench/labels/heldout.coco.json),
through the engine's local executor with OpenCV on one thread.

The rate is samples per CPU-second of this process (user + system time), which other jobs on a shared
machine do not inflate the way they inflate wall time; the wall time is printed beside it.

    python bench/heldout_photos.py /tmp/heldout --set photos
    python bench/appearance_throughput.py /tmp/heldout --out /tmp/bench-appearance

Prints a markdown table (paste it into bench/RESULTS.md with the command, machine and date).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from pathlib import Path

import cv2

from pipelines.config import RunConfig
from pipelines.runner import run

LABELS = Path(__file__).resolve().parent / "labels" / "heldout.coco.json"
TASKS = ("color_alteration", "material_modification", "style_transfer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="folder of held-out photos (bench/heldout_photos.py)")
    parser.add_argument("--out", default="/tmp/bench-appearance")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    args = parser.parse_args()
    cv2.setNumThreads(1)  # per core: OpenCV would otherwise spread some filters over every core
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, OpenCV {cv2.__version__}, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print("| task | sources | kept sources | samples | CPU s | samples per CPU-second | wall s |")
    print("|---|---|---|---|---|---|---|")
    for task in args.tasks:
        out = Path(args.out) / task
        shutil.rmtree(out, ignore_errors=True)
        labels = str(LABELS) if task != "style_transfer" else None
        config = RunConfig(task=task, source=args.source, out=str(out), labels=labels)
        cpu, wall = time.process_time(), time.perf_counter()
        summary = run(config, executor="local")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(
            f"| {task} | {summary.read} | {summary.kept_sources} | {summary.samples} | {cpu:.1f} "
            f"| {summary.samples / cpu:.2f} | {wall:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
