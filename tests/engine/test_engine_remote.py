"""Sources and outputs behind fsspec URLs: the same code path as s3:// and gs://, on fsspec's in-memory
store (no network here). The output is staged locally and uploaded, tar first, manifest last."""

from __future__ import annotations

import io
import json
from pathlib import Path

import fsspec
import pyarrow.parquet as pq
import webdataset as wds
from engine_inputs import PHOTOS

from pipelines.config import RunConfig
from pipelines.runner import run


def test_run_reads_and_writes_fsspec_urls(tmp_path: Path) -> None:
    memory = fsspec.filesystem("memory")
    for name in ("coffee.png", "rocket.jpg", "labels.coco.json"):
        memory.pipe(f"/photos/{name}", (PHOTOS / name).read_bytes())
    memory.pipe("/photos/list.txt", b"coffee.png\nrocket.jpg\nmissing.jpg\n")

    config = RunConfig(
        task="subject_removal",
        source="memory://photos/list.txt",
        out="memory://runs/r1",
        labels="memory://photos/labels.coco.json",
    )
    summary = run(config, executor="local")
    assert summary.read == 3 and summary.kept_sources + sum(summary.rejects.values()) == 3
    assert summary.rejects["unreadable"] == 1  # missing.jpg: listed but absent
    assert summary.samples > 0
    # The labels file is matched to the listed files by name, so COCO labels, not saliency, gave the objects.

    manifests = sorted(memory.glob("/runs/r1/shards/shard-*.parquet"))
    rows = [row for path in manifests for row in pq.read_table(io.BytesIO(memory.cat(path))).to_pylist()]
    assert len(rows) == summary.samples
    assert {json.loads(r["json"])["annotators"]["objects"]["backend"] for r in rows} == {"labels"}
    for path in memory.glob("/runs/r1/shards/shard-*.tar"):
        local = tmp_path / path.rsplit("/", 1)[1]
        local.write_bytes(memory.cat(path))
        keys = [sample["__key__"] for sample in wds.WebDataset(str(local), shardshuffle=False)]
        assert sorted(keys) == sorted(r["id"] for r in rows if r["shard"] == local.name)
    assert json.loads(memory.cat("/runs/r1/run.json"))["counts"]["read"] == 3

    again = run(config, executor="local")  # resume through the same URL: nothing is redone
    assert again.already_done == 3 and again.samples == 0
