"""What an existing run folder already holds: committed samples and accounted sources.

Run before the dataset is built, so a restarted run skips what is done and never writes a sample twice.
Done is keyed on (content hash, task) as docs/shard_format.md says (a run folder holds one task): a source
that was moved or renamed is recognised by its bytes and not redone.
It also deletes what an interrupted run left half-written (partial files, tars without a manifest).
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field

import pyarrow.parquet as pq

from pipelines.shards import REJECTS_RE, SHARD_RE, RunFolder

# The reject reason of a source a step failed on (recorded under --max-error-rate). Such a source is not
# done: the next run tries it again, since the failure was a bug rather than a decision about the source.
ERROR_REASON_PREFIX = "error:"


@dataclass
class RunState:
    sample_ids: set[str] = field(default_factory=set)
    # Content hashes with samples or a decided reject; a reject without a hash (bytes that could not be
    # read) stands in by the hash of its location (location_key).
    done_sha256: set[str] = field(default_factory=set)
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
            table = pq.read_table(handle, columns=["id", "source_sha256"])
        state.sample_ids.update(table.column("id").to_pylist())
        state.done_sha256.update(table.column("source_sha256").to_pylist())
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
            rows = pq.read_table(handle, columns=["source_uri", "source_sha256", "reason"]).to_pylist()
        for row in rows:
            if row["reason"].startswith(ERROR_REASON_PREFIX):
                continue
            state.done_sha256.add(row["source_sha256"] or location_key(row["source_uri"]))
        state.rejects += len(rows)
    return state


def location_key(uri: str) -> str:
    """What stands for the content hash of a source whose bytes could not be read."""
    return hashlib.sha256(f"location|{uri}".encode()).hexdigest()


def done_key(sha256: str) -> int:
    """A content hash in the compact form of the done set that every worker receives."""
    return int(sha256[:16], 16)


def is_done(sha256: str | None, done: frozenset[int]) -> bool:
    return sha256 is not None and done_key(sha256) in done
