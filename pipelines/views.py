"""Reading a run folder by its documented format (docs/shard_format.md), and writing filter views.

A view is `RUN/views/NAME/`: `ids.parquet` (the kept sample ids with their scores), `rejected.parquet` (every
other judged sample with the reason, so rejects stay findable as negative pairs), `view.json` (judge,
thresholds, counts) and, with --reshard, `shards/` holding new tars of the kept samples only, in the same
format as the run's, manifests included. The run's own tars are never rewritten.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds

from pipelines.shards import record_json

VIEW_ID_COLUMNS = ["id", "shard", "task", "sc", "pq", "o"]


def manifest_paths(run: Path) -> list[Path]:
    """Committed shards only: a tar without its manifest is an interrupted commit and is not read."""
    return sorted((run / "shards").glob("shard-*.parquet"))


def iter_tar_samples(tar_path: Path) -> Iterator[dict[str, Any]]:
    """Each sample of a shard as {"__key__": id, "src.jpg": bytes, "json": bytes, ...}, in tar order."""
    # shardshuffle=False: the order must be the manifest's; nodesplitter: a filter reads every shard itself.
    dataset = wds.WebDataset(str(tar_path), shardshuffle=False, nodesplitter=None, empty_check=False)
    yield from dataset


def _replace_atomically(path: Path, write: Callable[[str], None]) -> None:
    """`write(tmp)` to a temp file beside `path`, then rename it over `path`: readers see old or new."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_parquet(table: pa.Table, path: Path) -> None:
    _replace_atomically(path, lambda tmp: pq.write_table(table, tmp))


def atomic_write_json(data: dict[str, Any], path: Path) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    _replace_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _reshard(run: Path, kept: pa.Table, out_dir: Path, shard_size: int) -> int:
    """Copies the kept samples' members byte for byte into new tars; returns the number of shards.

    `out_dir` is inside the view's staging folder, which is swapped in whole: no per-file commit is needed.
    """
    out_dir.mkdir(parents=True)
    kept_ids = set(kept.column("id").to_pylist())
    rows_by_id = {row["id"]: row for row in kept.to_pylist()}
    n_shards, buffer = 0, []

    def flush() -> None:
        nonlocal n_shards, buffer
        name = f"shard-{n_shards:06d}"
        with open(out_dir / f"{name}.tar", "wb") as stream, wds.TarWriter(stream) as sink:
            for sample in buffer:
                sink.write(sample)
        rows = []
        for sample in buffer:
            row = dict(rows_by_id[sample["__key__"]])
            row["shard"] = f"{name}.tar"
            row["json"] = sample["json"].decode("utf-8")
            rows.append(row)
        pq.write_table(pa.Table.from_pylist(rows, schema=kept.schema), out_dir / f"{name}.parquet")
        n_shards += 1
        buffer = []

    for shard in sorted(set(kept.column("shard").to_pylist())):
        for sample in iter_tar_samples(run / "shards" / shard):
            key = sample["__key__"]
            if key not in kept_ids:
                continue
            record = json.loads(sample["json"])
            row = rows_by_id[key]
            record["judge"] = {k: row[k] for k in ("judge", "sc", "pq", "o", "judge_status")}
            members = {k: v for k, v in sample.items() if not k.startswith("__") or k == "__key__"}
            members["json"] = record_json(record).encode("utf-8")
            buffer.append(members)
            if len(buffer) >= shard_size:
                flush()
    if buffer:
        flush()
    return n_shards


def write_view(
    run: Path,
    name: str,
    kept: pa.Table,
    rejected: pa.Table,
    meta: dict[str, Any],
    reshard: bool,
    shard_size: int,
) -> Path:
    """Builds the view in a temp folder next to it and swaps it in, so readers never see half a view.

    `kept` holds full manifest rows (with judge columns) of the kept samples; `rejected` holds id, shard,
    task, reason.
    """
    views = run / "views"
    views.mkdir(exist_ok=True)
    final = views / name
    staging = Path(tempfile.mkdtemp(dir=views, prefix=f".{name}.tmp-"))
    try:
        pq.write_table(kept.select(VIEW_ID_COLUMNS), staging / "ids.parquet")
        pq.write_table(rejected, staging / "rejected.parquet")
        if reshard:
            meta = {**meta, "shards": _reshard(run, kept, staging / "shards", shard_size)}
        (staging / "view.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
        if final.exists():
            old = views / f".{name}.old-{os.getpid()}"
            os.replace(final, old)
            os.replace(staging, final)
            shutil.rmtree(old)
        else:
            os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def read_view_ids(run: Path, name: str) -> list[str]:
    return pq.read_table(run / "views" / name / "ids.parquet", columns=["id"]).column("id").to_pylist()
