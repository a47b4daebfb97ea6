"""What an existing run folder already holds: committed samples and accounted sources.

Run before the dataset is built, so a restarted run filters its input and never writes a sample twice.
It also deletes what an interrupted run left half-written (partial files, tars without a manifest).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

import pyarrow.parquet as pq

from pipelines.shards import REJECTS_RE, SHARD_RE, RunFolder


@dataclass
class RunState:
    sample_ids: set[str] = field(default_factory=set)
    done_uris: set[str] = field(default_factory=set)
    samples: int = 0
    rejects: int = 0
    next_shard: int = 0
    next_rejects: int = 0
    removed_orphans: list[str] = field(default_factory=list)


def _names(folder: RunFolder, sub: str) -> list[str]:
    if not folder.fs.exists(folder.path(sub)):
        return []
    return sorted(posixpath.basename(p) for p in folder.fs.ls(folder.path(sub), detail=False))


def scan_run(folder: RunFolder) -> RunState:
    state = RunState()
    shard_names = _names(folder, "shards")
    manifests = {n[: -len(".parquet")] for n in shard_names if n.endswith(".parquet") and SHARD_RE.match(n)}
    for name in shard_names:
        stem = name.split(".")[0]
        orphan_tar = SHARD_RE.match(name) and name.endswith(".tar") and stem not in manifests
        if name.endswith(".partial") or orphan_tar:
            folder.fs.rm(folder.path("shards", name))
            state.removed_orphans.append(name)
        match = SHARD_RE.match(name)
        if match:
            state.next_shard = max(state.next_shard, int(match.group(1)) + 1)
    for stem in sorted(manifests):
        with folder.fs.open(folder.path("shards", f"{stem}.parquet"), "rb") as handle:
            table = pq.read_table(handle, columns=["id", "source_uri"])
        state.sample_ids.update(table.column("id").to_pylist())
        state.done_uris.update(table.column("source_uri").to_pylist())
        state.samples += table.num_rows
    for name in _names(folder, "rejects"):
        if name.endswith(".partial"):
            folder.fs.rm(folder.path("rejects", name))
            state.removed_orphans.append(name)
            continue
        match = REJECTS_RE.match(name)
        if not match:
            continue
        state.next_rejects = max(state.next_rejects, int(match.group(1)) + 1)
        with folder.fs.open(folder.path("rejects", name), "rb") as handle:
            table = pq.read_table(handle, columns=["source_uri"])
        state.done_uris.update(table.column("source_uri").to_pylist())
        state.rejects += table.num_rows
    return state
