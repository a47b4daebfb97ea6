"""`step1x-data release RUN... --view kept --out DIR`: the kept samples of runs as a dataset to publish.

    DIR/README.md                       the dataset card (Hugging Face format: YAML front matter, then text)
    DIR/manifest.json                   every file with its size and SHA-256; per shard its sample count
    DIR/data/train/shard-000000.tar     kept samples, WebDataset, members as in the runs' shards
    DIR/data/train/shard-000000.parquet the shard's manifest, judge columns included (what step1x-train reads)
    DIR/data/negatives/...              with --negatives: the samples the view rejected, each with its reason
    DIR/stats/*.png                     the score and category figures the card shows

Images are copied byte for byte; each sample's json gains `judge` (judge name, sc, pq, o, status) and, for
negatives, `reject_reason`. Every sample has the same members, as `datasets.load_dataset("webdataset")` needs:
a global edit (no mask in the run, `edit.has_mask` false) gets an all-255 mask.png, "the whole image", which
is what the trainer assumes for it anyway; and a release does not mix JPEG and PNG images.

The folder is built beside DIR and renamed into place whole, so DIR is either absent or complete.
`step1x-data verify DIR` checks it against its manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds
from PIL import Image

from pipelines import report_plots
from pipelines.release_card import render_card
from pipelines.run_contents import RunContents
from pipelines.views import iter_tar_samples, read_table

RELEASE_FORMAT = "step1x-data release 1"
JUDGE_FIELDS = ("judge", "sc", "pq", "o", "judge_status")


class ReleaseError(Exception):
    """A release that cannot be made as asked; the message is the one line a user sees."""


@dataclass(frozen=True)
class ReleaseOptions:
    name: str = "step1x-data edits"
    licence: str = "other"  # the dataset's licence id in the card's front matter
    negatives: bool = False
    shard_size: int = 1000  # samples per tar
    overwrite: bool = False


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _samples_with_status(
    contents: RunContents, status: str
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(full manifest row, tar members) of every sample with this view status, in run and shard order."""
    wanted = contents.samples[contents.samples["status"] == status]
    for (run_index, shard), rows in wanted.groupby(["run", "shard"], sort=True):
        folder = contents.runs[int(run_index)].folder
        manifest = read_table(folder, folder.path("shards", shard.removesuffix(".tar") + ".parquet"))
        full_rows = {row["id"]: row for row in manifest.to_pylist()}
        reasons = dict(zip(rows["id"], rows["reason"], strict=True))
        for members in iter_tar_samples(folder, folder.path("shards", shard)):
            key = members["__key__"]
            if key in reasons:
                row = full_rows[key]
                row["reason"] = reasons[key]
                yield row, members


def _whole_image_mask(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 255).save(buffer, format="PNG")
    return buffer.getvalue()


class _SplitWriter:
    """Fills data/SPLIT/shard-NNNNNN.tar and its parquet manifest, `shard_size` samples each."""

    def __init__(self, root: Path, split: str, shard_size: int) -> None:
        self.folder = root / "data" / split
        self.folder.mkdir(parents=True)
        self.shard_size = shard_size
        self.shards: list[dict[str, Any]] = []
        self._rows: list[dict[str, Any]] = []
        self._members: list[dict[str, Any]] = []
        self._schema: pa.Schema | None = None
        self._extensions: tuple[str, str] | None = None

    def add(self, row: dict[str, Any], members: dict[str, Any], negative: bool) -> None:
        extensions = (row["src_ext"], row["tgt_ext"])
        if self._extensions is None:
            self._extensions = extensions
        elif extensions != self._extensions:
            raise ReleaseError(
                f"the samples mix image formats ({'/'.join(self._extensions)} and {'/'.join(extensions)}): "
                "release runs made with one --image-format"
            )
        record = json.loads(members["json"])
        record["judge"] = {field: row.get(field) for field in JUDGE_FIELDS}
        if negative:
            record["reject_reason"] = row["reason"]
        encoded = json.dumps(record, ensure_ascii=False, sort_keys=True)
        sample = {k: v for k, v in members.items() if not k.startswith("__") or k == "__key__"}
        sample["json"] = encoded.encode("utf-8")
        if "mask.png" not in sample:
            sample["mask.png"] = _whole_image_mask(record["width"], record["height"])
        manifest_row = {k: v for k, v in row.items() if k != "reason"} | {"json": encoded}
        if self._schema is None:
            self._schema = pa.Table.from_pylist([manifest_row]).schema
        self._members.append(sample)
        self._rows.append(manifest_row)
        if len(self._members) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self._members:
            return
        name = f"shard-{len(self.shards):06d}"
        with open(self.folder / f"{name}.tar", "wb") as stream, wds.TarWriter(stream) as sink:
            for sample in self._members:
                sink.write(sample)
        for row in self._rows:
            row["shard"] = f"{name}.tar"
        pq.write_table(pa.Table.from_pylist(self._rows, schema=self._schema), self.folder / f"{name}.parquet")
        self.shards.append({"tar": f"{name}.tar", "samples": len(self._members)})
        self._members, self._rows = [], []


def _check_views(contents: RunContents) -> None:
    missing = [info.url for info in contents.runs if info.view is None]
    if missing:
        raise ReleaseError(
            f"{', '.join(missing)}: no filter view to release; run `step1x-data filter` first or name --view"
        )
    if not (contents.samples["status"] == "kept").any():
        raise ReleaseError("the view keeps no sample: nothing to release")


def _file_entries(root: Path, samples_per_tar: dict[str, int]) -> list[dict[str, Any]]:
    entries = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        entry: dict[str, Any] = {"path": relative, "bytes": path.stat().st_size, "sha256": sha256_of(path)}
        if relative in samples_per_tar:
            entry["samples"] = samples_per_tar[relative]
        entries.append(entry)
    return entries


def _source_records(contents: RunContents, root: Path) -> list[dict[str, Any]]:
    """The json record of every released sample, read back from the release's own parquet manifests."""
    records = []
    for manifest in sorted(root.glob("data/*/shard-*.parquet")):
        split = manifest.parent.name
        for text in pq.read_table(manifest, columns=["json"]).column("json").to_pylist():
            records.append({"split": split, **json.loads(text)})
    return records


def build_release(contents: RunContents, out: Path, options: ReleaseOptions) -> dict[str, Any]:
    """Writes the release to `out` (renamed into place whole) and returns its manifest."""
    _check_views(contents)
    if out.exists() and not options.overwrite:
        raise ReleaseError(f"{out} exists; choose another --out or pass --overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    try:
        splits = {"train": "kept", **({"negatives": "rejected"} if options.negatives else {})}
        samples_per_tar: dict[str, int] = {}
        split_counts: dict[str, int] = {}
        for split, status in splits.items():
            writer = _SplitWriter(staging, split, options.shard_size)
            for row, members in _samples_with_status(contents, status):
                writer.add(row, members, negative=status == "rejected")
            writer.flush()
            for shard in writer.shards:
                samples_per_tar[f"data/{split}/{shard['tar']}"] = shard["samples"]
            split_counts[split] = sum(s["samples"] for s in writer.shards)
            if not writer.shards:  # no negatives: no empty split in the card
                shutil.rmtree(writer.folder)
                del split_counts[split]

        stats = staging / "stats"
        stats.mkdir()
        kept = RunContents(contents.runs, contents.samples[contents.samples["status"] == "kept"])
        figures = {
            name: f"stats/{name}.png"
            for name, draw in (
                ("scores", report_plots.score_histograms),
                ("samples_per_category", report_plots.samples_per_category),
                ("instruction_length", report_plots.instruction_length),
            )
            if draw(kept, stats / f"{name}.png")
        }
        records = _source_records(contents, staging)
        manifest = {
            "format": RELEASE_FORMAT,
            "name": options.name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "splits": split_counts,
            "runs": [
                {
                    "url": info.url,
                    "task": info.task,
                    "config_hash": info.run_json.get("config_hash"),
                    "view": info.view,
                    "judge": info.view_meta.get("judge"),
                    "thresholds": info.view_meta.get("thresholds"),
                }
                for info in contents.runs
            ],
        }
        (staging / "README.md").write_text(
            render_card(manifest, records, contents, figures, options.licence), encoding="utf-8"
        )
        manifest["files"] = _file_entries(staging, samples_per_tar)
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(staging, out)
            shutil.rmtree(old)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest
