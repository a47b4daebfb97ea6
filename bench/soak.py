"""Soak: one long run of many generated sources, watched for what only shows at length — memory that grows
with the sources read, throughput that sags, and a final accounting that must still close (every source read
is kept or rejected, and the folder holds exactly the rows run.json counts).

    python bench/soak.py --sources 10000 --out /tmp/bench-soak

The sources are small real photos (the shipped ones, cropped, flipped and shifted in colour so each is
distinct content), a mix that tone_transformation keeps and rejects. The run is the engine's real Ray graph
in this process; a sampler thread records, every second, the sources read, the driver's memory and the
memory of the whole process tree (Ray's raylet, object store and workers). Writes results.json beside the
run and prints a markdown row for bench/RESULTS.md. Exits non-zero when the run overruns --max-seconds or
the accounting does not close.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

import numpy as np
import psutil
import pyarrow.parquet as pq
from PIL import Image

from pipelines.config import RunConfig
from pipelines.runner import RunSummary, run

PHOTOS = Path(__file__).resolve().parents[1] / "examples" / "photos"
MIB = 1 << 20


def make_sources(folder: Path, count: int, side: int) -> None:
    """`count` distinct `side` px JPEGs: crops of the shipped photos at varying offsets, some flipped, each
    with its own colour shift; a few flat grey ones that the task rejects (flat_image)."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = [
        np.asarray(Image.open(p).convert("RGB").resize((2 * side, 2 * side)))
        for p in sorted(PHOTOS.iterdir())
        if p.suffix in (".png", ".jpg")
    ]
    rng = np.random.default_rng(0)
    for i in range(count):
        if i % 50 == 49:
            image = np.full((side, side, 3), 90 + i % 7, np.uint8)
        else:
            top, left = rng.integers(0, side, size=2)
            image = photos[i % len(photos)][top : top + side, left : left + side]
            if i % 2:
                image = image[:, ::-1]
            shift = rng.integers(-12, 13, size=3)
            image = np.clip(image.astype(np.int16) + shift, 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"soak_{i:05d}.jpg", quality=90)


def tree_rss(process: psutil.Process) -> int:
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with suppress(psutil.Error):  # a worker that ended between the listing and the read
            total += child.memory_info().rss
    return total


class Sampler(threading.Thread):
    """Every `period` seconds: (seconds since start, sources read, driver RSS, process tree RSS)."""

    def __init__(self, period: float) -> None:
        super().__init__(daemon=True)
        self.period = period
        self.read = 0
        self.rows: list[tuple[float, int, int, int]] = []
        self.stop = threading.Event()
        self.started = time.perf_counter()

    def run(self) -> None:
        me = psutil.Process()
        while not self.stop.wait(self.period):
            rss = me.memory_info().rss
            self.rows.append((time.perf_counter() - self.started, self.read, rss, tree_rss(me)))


def windows(rows: list[tuple[float, int, int, int]], count: int) -> list[float]:
    """Sources per second in `count` equal slices of the run after its first result."""
    rows = [r for r in rows if r[1] > 0]
    if len(rows) < count + 1:
        return []
    edges = np.linspace(rows[0][0], rows[-1][0], count + 1)
    times, reads = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    at = np.interp(edges, times, reads)
    return [float((at[i + 1] - at[i]) / (edges[i + 1] - edges[i])) for i in range(count)]


def folder_rows(out: Path) -> tuple[int, int, int]:
    """What the folder holds: manifest rows, the distinct sources behind them, and reject rows."""
    manifests = [
        pq.read_table(p, columns=["source_sha256"]) for p in sorted((out / "shards").glob("*.parquet"))
    ]
    samples = sum(t.num_rows for t in manifests)
    sources = len({sha for t in manifests for sha in t.column("source_sha256").to_pylist()})
    rejects = sum(pq.read_metadata(p).num_rows for p in (out / "rejects").glob("*.parquet"))
    return samples, sources, rejects


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=10000)
    parser.add_argument(
        "--side", type=int, default=192, help="source size in px (the soak is not pixel cost)"
    )
    parser.add_argument("--task", default="tone_transformation")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-soak"))
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--executor", default="ray", choices=["ray", "local"])
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="the run must finish within this")
    parser.add_argument("--period", type=float, default=1.0, help="seconds between samples")
    args = parser.parse_args()

    source, out = args.out / "sources", args.out / "run"
    if not source.exists() or len(list(source.iterdir())) != args.sources:
        shutil.rmtree(source, ignore_errors=True)
        make_sources(source, args.sources, args.side)
    shutil.rmtree(out, ignore_errors=True)

    sampler = Sampler(args.period)

    def progress(summary: RunSummary, _todo: int) -> None:
        sampler.read = summary.read

    config = RunConfig(task=args.task, source=str(source), out=str(out), workers=args.workers)
    sampler.start()
    summary = run(config, executor=args.executor, on_progress=progress)
    seconds = time.perf_counter() - sampler.started
    sampler.stop.set()
    sampler.join()

    rows = sampler.rows
    rates = windows(rows, 10)
    late = [r for r in rows if r[1] >= 0.1 * summary.read]  # after warm-up: Ray started, workers up
    growth = None
    if len(late) >= 2 and late[-1][1] > late[0][1]:
        slope = np.polyfit([r[1] for r in late], [r[2] for r in late], 1)[0]  # driver bytes per source
        growth = float(slope * 1000 / MIB)
    counts = json.loads((out / "run.json").read_text())["counts"]
    samples, kept_sources, rejects = folder_rows(out)
    closes = counts["read"] == counts["kept_sources"] + counts["rejected"] == args.sources and (
        samples,
        kept_sources,
        rejects,
    ) == (counts["samples_written"], counts["kept_sources"], counts["rejected"])
    figures = {
        "sources": args.sources,
        "side": args.side,
        "task": args.task,
        "executor": args.executor,
        "workers": args.workers,
        "seconds": round(seconds, 1),
        "sources_per_second": round(summary.read / seconds, 2),
        "window_rates": [round(r, 2) for r in rates],
        "rate_spread": round((max(rates) - min(rates)) / statistics.median(rates), 3) if rates else None,
        "last_vs_first_window": round(rates[-1] / rates[0], 3) if rates and rates[0] else None,
        "driver_rss_mib": {
            "after_warm_up": round(late[0][2] / MIB, 1) if late else None,
            "end": round(rows[-1][2] / MIB, 1) if rows else None,
            "max": round(max(r[2] for r in rows) / MIB, 1) if rows else None,
        },
        "driver_growth_mib_per_1000_sources": round(growth, 2) if growth is not None else None,
        "tree_rss_mib_max": round(max(r[3] for r in rows) / MIB, 1) if rows else None,
        "counts": {k: counts[k] for k in ("read", "kept_sources", "samples_written", "rejected", "errors")},
        "rejects_by_reason": counts["rejects_by_reason"],
        "folder": {"manifest_rows": samples, "sources_behind_them": kept_sources, "reject_rows": rejects},
        "accounting_closes": closes,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "timeline": [[round(t, 1), n, round(d / MIB, 1), round(a / MIB, 1)] for t, n, d, a in rows],
    }
    (args.out / "results.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps({k: v for k, v in figures.items() if k != "timeline"}, indent=2))
    print(
        f"| {args.task} | {args.sources} | {figures['seconds']} | {figures['sources_per_second']} | "
        f"{min(rates, default=0):.1f}–{max(rates, default=0):.1f} | {figures['last_vs_first_window']} | "
        f"{figures['driver_rss_mib']['after_warm_up']} → {figures['driver_rss_mib']['end']} | "
        f"{figures['driver_growth_mib_per_1000_sources']} | {figures['tree_rss_mib_max']} | "
        f"{counts['read']} = {counts['kept_sources']} + {counts['rejected']} | {'yes' if closes else 'NO'} |"
    )
    if seconds > args.max_seconds:
        print(
            f"the run took {seconds:.0f} s, more than --max-seconds {args.max_seconds:.0f}", file=sys.stderr
        )
        return 1
    if not closes:
        print("the accounting does not close: see counts and folder in results.json", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
