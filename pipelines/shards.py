"""Writing the run folder: WebDataset shards with their parquet manifests, and the rejects tables.

Commit protocol (see docs/shard_format.md): a shard is written as a `.partial` file, renamed to its final
name, then its manifest is written as a `.partial` and renamed last. The manifest is the commit record:
a tar without one is an orphan of an interrupted run and is deleted by `scan_run` before work starts.
Remote outputs (s3://, gs://) stage the files locally and upload the tar before the manifest.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds
from fsspec.implementations.local import LocalFileSystem

from pipelines.items import EncodedSample

SHARD_RE = re.compile(r"^shard-(\d{6})\.(tar|parquet)$")
REJECTS_RE = re.compile(r"^rejects-(\d{6})\.parquet$")

MANIFEST_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("shard", pa.string()),
        ("task", pa.string()),
        ("gedit_key", pa.string()),
        ("variant", pa.string()),
        ("instruction_en", pa.string()),
        ("instruction_zh", pa.string()),
        ("source_uri", pa.string()),
        ("source_sha256", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("bbox", pa.list_(pa.int32())),
        ("has_mask", pa.bool_()),
        ("changed_ratio", pa.float32()),
        ("src_ext", pa.string()),
        ("tgt_ext", pa.string()),
        ("json", pa.string()),
    ]
)
REJECTS_SCHEMA = pa.schema(
    [
        ("source_uri", pa.string()),
        ("source_sha256", pa.string()),
        ("task", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
    ]
)


class RunFolder:
    """The output folder through fsspec, with an atomic way to put a finished local file into it."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.local = isinstance(self.fs, LocalFileSystem)
        self._staging = Path(self.root) if self.local else Path(tempfile.mkdtemp(prefix="step1x-stage-"))

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def staging_file(self, *parts: str) -> Path:
        """Where to write a file before committing it; inside the folder itself when local."""
        target = self._staging.joinpath(*parts[:-1], "." + parts[-1] + ".partial")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def commit(self, staged: Path, *parts: str) -> None:
        if self.local:
            with open(staged, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(staged, self.path(*parts))
        else:
            self.fs.put_file(str(staged), self.path(*parts))
            staged.unlink()

    def remove_quietly(self, *parts: str) -> None:
        """Remove a file if it is there, on a best-effort basis: for cleaning up after a failed write."""
        with suppress(OSError):
            if self.fs.exists(self.path(*parts)):
                self.fs.rm(self.path(*parts))

    def ensure_writable(self) -> None:
        """Fail before any work when the folder cannot be created or written."""
        for sub in ("shards", "rejects"):
            self.fs.makedirs(self.path(sub), exist_ok=True)
        probe = self.path(f".write-probe-{uuid.uuid4().hex}")  # unique: another run may be probing too
        with self.fs.open(probe, "wb") as handle:
            handle.write(b"ok")
        self.fs.rm(probe)


def record_json(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=True)


def manifest_row(sample: EncodedSample, shard: str) -> dict[str, Any]:
    record = sample.record
    return {
        "id": sample.id,
        "shard": shard,
        "task": record["task"],
        "gedit_key": record["gedit_key"],
        "variant": record["variant"],
        "instruction_en": record["instruction"]["en"],
        "instruction_zh": record["instruction"]["zh"],
        "source_uri": record["source"]["uri"],
        "source_sha256": record["source"]["sha256"],
        "width": record["width"],
        "height": record["height"],
        "bbox": record["edit"]["bbox"],
        "has_mask": record["edit"]["has_mask"],
        "changed_ratio": record["edit"]["changed_ratio"],
        "src_ext": record["src_ext"],
        "tgt_ext": record["tgt_ext"],
        "json": record_json(record),
    }


def _write_parquet(rows: list[dict[str, Any]], schema: pa.Schema, path: Path) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


@dataclass
class ShardWriter:
    """Fills shards up to a sample and a byte bound; one source's samples never straddle two shards,
    so a committed manifest always holds every sample of each source it names."""

    folder: RunFolder
    next_index: int
    max_samples: int
    max_bytes: int
    committed: list[str] = field(default_factory=list)
    committed_samples: int = 0
    _writer: wds.TarWriter | None = None
    _staged: Path | None = None
    _rows: list[dict[str, Any]] = field(default_factory=list)
    _bytes: int = 0

    @property
    def _name(self) -> str:
        return f"shard-{self.next_index:06d}"

    def add_source(self, samples: list[EncodedSample]) -> None:
        incoming = sum(s.nbytes for s in samples)
        if self._rows and (
            len(self._rows) + len(samples) > self.max_samples or self._bytes + incoming > self.max_bytes
        ):
            self.commit()
        if self._writer is None:
            self._staged = self.folder.staging_file("shards", f"{self._name}.tar")
            self._writer = wds.TarWriter(str(self._staged))
        for sample in samples:
            entry = {
                "__key__": sample.id,
                f"src.{sample.record['src_ext']}": sample.src,
                f"tgt.{sample.record['tgt_ext']}": sample.tgt,
                "json": record_json(sample.record).encode("utf-8"),
            }
            if sample.mask is not None:
                entry["mask.png"] = sample.mask
            self._writer.write(entry)
            self._rows.append(manifest_row(sample, f"{self._name}.tar"))
        self._bytes += incoming

    def commit(self) -> None:
        if self._writer is None:
            return
        tar, manifest = f"{self._name}.tar", f"{self._name}.parquet"
        staged_manifest = self.folder.staging_file("shards", manifest)
        try:
            writer, self._writer = self._writer, None
            writer.close()
            self.folder.commit(self._staged, "shards", tar)
            _write_parquet(self._rows, MANIFEST_SCHEMA, staged_manifest)
            self.folder.commit(staged_manifest, "shards", manifest)
        except OSError:
            # Not committed. Remove the pieces now rather than at the next start: the disk may be full.
            staged_manifest.unlink(missing_ok=True)
            self.folder.remove_quietly("shards", tar)  # a tar without its manifest is never a shard
            raise
        self.committed.append(tar)
        self.committed_samples += len(self._rows)
        self._staged, self._rows, self._bytes = None, [], 0
        self.next_index += 1

    def discard(self) -> None:
        """Drop the shard being filled (its sources are not done: a rerun makes them again) and its staged
        file, which may be what filled the disk."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                writer.close()
            except OSError:
                # The full disk fails the close too; the file object is closed here so that nothing retries
                # the write when it is collected, and the space is freed once the file is unlinked.
                own = getattr(writer, "own_fileobj", None)
                if own is not None:
                    with suppress(OSError):  # a buffered file closes its descriptor even when flush fails
                        own.close()
        if self._staged is not None:
            self._staged.unlink(missing_ok=True)
        self._staged, self._rows, self._bytes = None, [], 0


@dataclass
class RejectWriter:
    folder: RunFolder
    next_index: int
    flush_every: int = 500
    _rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        name = f"rejects-{self.next_index:06d}.parquet"
        staged = self.folder.staging_file("rejects", name)
        try:
            _write_parquet(self._rows, REJECTS_SCHEMA, staged)
            self.folder.commit(staged, "rejects", name)
        except OSError:
            staged.unlink(missing_ok=True)
            raise
        self._rows = []
        self.next_index += 1
