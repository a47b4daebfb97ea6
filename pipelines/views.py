"""Reading a run folder by its documented format (docs/shard_format.md), and writing filter views.

The run folder is a local path or any fsspec URL the pipeline writes to (s3://, gs://, ...), through the
pipeline's own `RunFolder`: a file is written locally, then renamed into place (local) or uploaded (remote).

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds
from webdataset.tariterators import group_by_keys, tar_file_expander

from pipelines.shards import RunFolder, record_json

VIEW_ID_COLUMNS = ["id", "shard", "task", "sc", "pq", "o"]
SECOND_JUDGE_ID_COLUMNS = ["sc2", "pq2", "o2"]  # in ids.parquet when the view was made by two judges


def manifest_paths(folder: RunFolder) -> list[str]:
    """Committed shards only: a tar without its manifest is an interrupted commit and is not read."""
    return sorted(folder.fs.glob(folder.path("shards", "shard-*.parquet")))


def read_table(folder: RunFolder, path: str, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(path, columns=columns, filesystem=folder.fs)


def iter_tar_samples(folder: RunFolder, tar_path: str) -> Iterator[dict[str, Any]]:
    """Each sample of a shard as {"__key__": id, "src.jpg": bytes, "json": bytes, ...}, in tar order."""
    # webdataset's own tar reading and grouping, fed from the run folder's filesystem (its URL openers do
    # not know every fsspec scheme).
    with folder.fs.open(tar_path, "rb") as stream:
        yield from group_by_keys(tar_file_expander([{"url": tar_path, "stream": stream}]))


def commit_parquet(folder: RunFolder, table: pa.Table, *parts: str) -> None:
    """Replaces RUN/parts... whole: readers see the old file or the new one."""
    staged = folder.staging_file(*parts)
    pq.write_table(table, staged)
    folder.commit(staged, *parts)


def commit_json(folder: RunFolder, data: dict[str, Any], *parts: str) -> None:
    staged = folder.staging_file(*parts)
    staged.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    folder.commit(staged, *parts)


def _reshard(folder: RunFolder, kept: pa.Table, out_dir: Path, shard_size: int) -> int:
    """Copies the kept samples' members byte for byte into new tars; returns the number of shards.

    `out_dir` is inside the view's local staging folder, published whole: no per-file commit is needed.
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
        for sample in iter_tar_samples(folder, folder.path("shards", shard)):
            key = sample["__key__"]
            if key not in kept_ids:
                continue
            record = json.loads(sample["json"])
            row = rows_by_id[key]
            record["judge"] = {k: row[k] for k in ("judge", "sc", "pq", "o", "judge_status")}
            if "judge2" in row:
                record["judge2"] = {k: row[k] for k in ("judge2", "sc2", "pq2", "o2", "judge2_status")}
            members = {k: v for k, v in sample.items() if not k.startswith("__") or k == "__key__"}
            members["json"] = record_json(record).encode("utf-8")
            buffer.append(members)
            if len(buffer) >= shard_size:
                flush()
    if buffer:
        flush()
    return n_shards


def write_view(
    folder: RunFolder,
    name: str,
    kept: pa.Table,
    rejected: pa.Table,
    meta: dict[str, Any],
    reshard: bool,
    shard_size: int,
) -> str:
    """Builds the view in a local staging folder, then publishes it whole; returns where it is.

    Local runs swap the folder in with renames, so readers never see half a view. Remote stores have no
    folder rename: the old view is removed and the new one uploaded, and a reader in between finds none.
    `kept` holds full manifest rows (with judge columns) of the kept samples; `rejected` holds id, shard,
    task, reason and the first judge's scores.
    """
    if folder.local:
        views = Path(folder.path("views"))
        views.mkdir(exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=views, prefix=f".{name}.tmp-"))
    else:
        staging = Path(tempfile.mkdtemp(prefix=f"step1x-view-{name}-"))
    final = folder.path("views", name)
    try:
        second = [c for c in SECOND_JUDGE_ID_COLUMNS if c in kept.column_names]
        pq.write_table(kept.select(VIEW_ID_COLUMNS + second), staging / "ids.parquet")
        pq.write_table(rejected, staging / "rejected.parquet")
        if reshard:
            meta = {**meta, "shards": _reshard(folder, kept, staging / "shards", shard_size)}
        (staging / "view.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
        if not folder.local:
            if folder.fs.exists(final):
                folder.fs.rm(final, recursive=True)
            folder.fs.put(f"{staging}/", final, recursive=True)
            shutil.rmtree(staging)
        elif os.path.exists(final):
            old = folder.path("views", f".{name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(staging, final)
            shutil.rmtree(old)
        else:
            os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final if folder.local else f"{folder.url}/views/{name}"


def read_view_ids(folder: RunFolder, name: str) -> list[str]:
    path = folder.path("views", name, "ids.parquet")
    return read_table(folder, path, columns=["id"]).column("id").to_pylist()
