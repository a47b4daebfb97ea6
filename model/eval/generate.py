"""Edit every bench row with the model: resumable, batched, on one device or one process per GPU.

OUT/fullset/<category>/<language>/<key>.png is the edited image (GEdit-Bench's layout), written to a temp name
and renamed, so a row is done exactly when its file exists: a killed run resumes where it stopped. Each PNG
carries its settings, seed and instruction in a text chunk; OUT/generation.json holds the settings, the bench
and its fingerprint, and a resumed run with other settings or rows is refused rather than mixed.
OUT/logs/generate-<rank>.jsonl has one line per edited row (seconds, device); rows whose input image cannot
be decoded are written to OUT/logs/rejects-<rank>.jsonl with the reason and skipped.

Several processes (`gpus` > 1, or a launcher such as torchrun setting RANK/WORLD_SIZE) each take every
world-th row of one fixed order; no process waits on another. The seed is the same for every row (as the
reference's evaluation), and the sampler draws each item's noise from its own generator, so an image does
not depend on the batch or the process it ran in.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from model.eval.bench import Bench, BenchError, BenchRow, decode_rgb, output_path
from model.eval.editor import EditSettings, batch_size_key, load_editor


class GenerationMismatch(ValueError):
    """OUT was generated with other settings or another bench."""


@dataclass
class GenerateOptions:
    device: str = "cuda"
    gpus: int = 1  # processes, one per GPU (with device "cpu": CPU processes)
    batch_size: int = 1
    models_dir: str | None = None
    offload: bool = False
    compile: bool = False
    languages: tuple[str, ...] = ()  # empty: all
    categories: tuple[str, ...] = ()
    limit: int | None = None  # the first N selected rows (a smoke run)


@dataclass
class GenerateSummary:
    rows: int  # rows selected
    done_before: int  # already generated when the run started
    generated: int
    rejected: dict[str, str] = field(default_factory=dict)  # "key/language" -> reason
    seconds: float = 0.0


def selected_rows(bench: Bench, options: GenerateOptions) -> list[BenchRow]:
    rows = [
        r
        for r in bench.rows
        if (not options.languages or r.language in options.languages)
        and (not options.categories or r.category in options.categories)
    ]
    rows.sort(key=lambda r: (r.category, r.language, r.key))
    return rows[: options.limit] if options.limit is not None else rows


def generation_record(bench: Bench, settings: EditSettings, options: GenerateOptions) -> dict[str, Any]:
    return {
        "bench": {
            "path": str(Path(bench.path).resolve()),
            "rows": len(bench.rows),
            "fingerprint": bench.fingerprint(),
            "image_column": bench.image_column,
        },
        "settings": settings.to_record(),
        "sampler": {"batch_size": options.batch_size, "offload": options.offload, "compile": options.compile},
        "models_dir": options.models_dir,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": platform.node(),
    }


def check_or_record(out: Path, record: dict[str, Any]) -> None:
    """Write OUT/generation.json, or check that an existing one describes the same generation."""
    path = out / "generation.json"
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        for part in ("settings", "bench"):
            keys = ("fingerprint", "image_column") if part == "bench" else tuple(record[part])
            diff = {
                k: (old[part].get(k), record[part][k]) for k in keys if old[part].get(k) != record[part][k]
            }
            if diff:
                raise GenerationMismatch(
                    f"{out} was generated with other {part} {diff} (old, new): use another --out"
                )
        return
    out.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".generation.json.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def _save_png(image: Image.Image, path: Path, meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    info.add_text("step1x-eval", json.dumps(meta, ensure_ascii=False))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    image.save(tmp, format="PNG", pnginfo=info)
    os.replace(tmp, path)


def _append_jsonl(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")


def run_worker(
    rank: int,
    world: int,
    bench_path: str,
    image_column: str | None,
    out: Path,
    settings: EditSettings,
    options: GenerateOptions,
) -> None:
    """Edit this process's share of the rows that have no output yet."""
    import torch

    bench = Bench(bench_path, image_column)
    mine = selected_rows(bench, options)[rank::world]
    todo = [r for r in mine if not output_path(out, r).exists()]
    if not todo:
        return
    device = options.device
    if device == "cuda" and world > 1:
        device = f"cuda:{rank}"
    if device == "cpu" and world > 1:
        # Processes share the cores; torch's default of one thread per core each would oversubscribe them.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    inputs: list[tuple[BenchRow, Image.Image]] = []
    for row in todo:
        try:
            inputs.append((row, decode_rgb(bench.image(row))))
        except (OSError, UnidentifiedImageError, BenchError) as err:
            reason = f"{type(err).__name__}: {err}"
            _append_jsonl(out / "logs" / f"rejects-{rank}.jsonl", {**_row_id(row), "reason": reason})
    if not inputs:
        return
    # Rows edited at the same size run together: the sampler batches equal sizes only.
    inputs.sort(key=lambda item: (batch_size_key(item[1].size, settings), item[0].key))
    editor = load_editor(settings, device, options.models_dir, options.offload, options.compile)
    for start in range(0, len(inputs), options.batch_size):
        batch = inputs[start : start + options.batch_size]
        t0 = time.perf_counter()
        edited = editor([image for _, image in batch], [row.instruction for row, _ in batch])
        seconds = (time.perf_counter() - t0) / len(batch)
        for (row, _), image in zip(batch, edited, strict=True):
            meta = {**_row_id(row), "instruction": row.instruction, **settings.to_record()}
            _save_png(image, output_path(out, row), meta)
            log = {**_row_id(row), "seconds": round(seconds, 3), "device": device, "batch": len(batch)}
            _append_jsonl(out / "logs" / f"generate-{rank}.jsonl", log)


def _row_id(row: BenchRow) -> dict[str, str]:
    return {"key": row.key, "language": row.language, "category": row.category}


def _spawned(rank: int, world: int, *args: Any) -> None:
    run_worker(rank, world, *args)


def generate(
    bench_path: str,
    out: Path,
    settings: EditSettings,
    options: GenerateOptions,
    image_column: str | None = None,
) -> GenerateSummary:
    """Generate every selected row's edit into `out`; returns what was done."""
    start = time.perf_counter()
    bench = Bench(bench_path, image_column)
    check_or_record(out, generation_record(bench, settings, options))
    rows = selected_rows(bench, options)
    done_before = sum(output_path(out, r).exists() for r in rows)
    args = (bench_path, image_column, out, settings, options)
    launched_world = int(os.environ.get("WORLD_SIZE", "1"))
    if options.gpus > 1:
        import torch.multiprocessing as mp

        mp.spawn(_spawned, args=(options.gpus, *args), nprocs=options.gpus, join=True)
    elif launched_world > 1:
        # Started by torchrun / accelerate launch: this process is one rank; the device is its local GPU.
        rank = int(os.environ["RANK"])
        if options.device == "cuda":
            options = replace(options, device=f"cuda:{os.environ.get('LOCAL_RANK', rank)}")
        run_worker(rank, launched_world, bench_path, image_column, out, settings, options)
    else:
        run_worker(0, 1, *args)
    missing = {f"{r.key}/{r.language}" for r in rows if not output_path(out, r).exists()}
    rejected: dict[str, str] = {}
    for log in sorted((out / "logs").glob("rejects-*.jsonl")):
        for line in log.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            if (row_id := f"{entry['key']}/{entry['language']}") in missing:
                rejected[row_id] = entry["reason"]
    generated = len(rows) - len(missing) - done_before
    return GenerateSummary(len(rows), done_before, generated, rejected, time.perf_counter() - start)
