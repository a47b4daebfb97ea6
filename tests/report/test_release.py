"""`step1x-data release` and `verify` on real runs; the release read back by datasets, webdataset and the
trainer's shard reader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from conftest import step1x_data
from huggingface_hub import DatasetCard

from annotators.judge.heuristic import HeuristicJudge
from pipelines.release import sha256_of


def run_samples(run: Path) -> dict[str, dict]:
    return {
        s["__key__"]: s
        for tar in sorted((run / "shards").glob("*.tar"))
        for s in wds.WebDataset(str(tar), shardshuffle=False, empty_check=False)
    }


def view_table(run: Path, name: str) -> list[dict]:
    return pq.read_table(run / "views" / "kept" / name).to_pylist()


@pytest.fixture(scope="module")
def release(removal_run: Path, tone_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("release") / "edits"
    step1x_data(
        "release",
        removal_run,
        tone_run,
        "--out",
        out,
        "--negatives",
        "--shard-size",
        16,
        "--licence",
        "cc0-1.0",
    )
    return out


def test_release_holds_the_kept_and_rejected_samples_unchanged(
    release: Path, removal_run: Path, tone_run: Path
) -> None:
    originals = run_samples(removal_run) | run_samples(tone_run)
    kept = {r["id"] for run in (removal_run, tone_run) for r in view_table(run, "ids.parquet")}
    rejected = {
        r["id"]: r["reason"] for run in (removal_run, tone_run) for r in view_table(run, "rejected.parquet")
    }
    assert rejected  # the tone run's threshold rejects some
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["splits"] == {"train": len(kept), "negatives": len(rejected)}
    train_tars = sorted((release / "data" / "train").glob("*.tar"))
    assert len(train_tars) == -(-len(kept) // 16)  # shards of 16
    for split, expected in (("train", kept), ("negatives", set(rejected))):
        tars = [str(t) for t in sorted((release / "data" / split).glob("*.tar"))]
        released = {s["__key__"]: s for s in wds.WebDataset(tars, shardshuffle=False, empty_check=False)}
        assert set(released) == expected
        for key, sample in released.items():
            original = originals[key]
            for member in ("src.jpg", "tgt.jpg"):
                assert sample[member] == original[member]  # images copied byte for byte
            record, original_record = json.loads(sample["json"]), json.loads(original["json"])
            assert {k: v for k, v in record.items() if k not in ("judge", "reject_reason")} == original_record
            assert record["judge"]["judge"] == HeuristicJudge.name and 0 <= record["judge"]["o"] <= 10
            assert record.get("reject_reason") == rejected.get(key)
            if "mask.png" in original:
                assert sample["mask.png"] == original["mask.png"]
            else:  # a global edit: the whole image is the edit region
                mask = np.asarray(wds.autodecode.imagehandler("l8")("mask.png", sample["mask.png"]))
                assert mask.shape == (record["height"], record["width"]) and (mask == 255).all()
    # every file is listed with its real size and checksum
    listed = {entry["path"]: entry for entry in manifest["files"]}
    on_disk = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()}
    assert set(listed) == on_disk - {"manifest.json"}
    for path, entry in listed.items():
        assert entry["sha256"] == sha256_of(release / path)
        assert entry["bytes"] == (release / path).stat().st_size
    assert sum(e.get("samples", 0) for e in listed.values()) == len(kept) + len(rejected)


def test_dataset_card(release: Path, removal_run: Path) -> None:
    card = DatasetCard.load(release / "README.md")
    assert card.data.license == "cc0-1.0"
    assert card.data.language == ["en", "zh"]
    assert card.data.task_categories == ["image-to-image"]
    assert [c["config_name"] for c in card.data.configs] == ["default", "negatives"]
    text = card.text
    manifest = json.loads((release / "manifest.json").read_text())
    removal_kept = len(view_table(removal_run, "ids.parquet"))
    assert (
        f"| train | subject_removal | subject-remove | {removal_kept} | {removal_kept} | {removal_kept} |"
        in text
    )
    assert "| subject_removal | O |" in text  # score distribution rows
    for licence in ("public domain (NASA)", "CC0-1.0 (photographer: Rachel Michetti)"):
        assert f"| {licence} | 1 |" in text  # the sources' own licences, counted per source image
    assert "| inpaint | opencv_telea_shiftmap |" in text and "Apache-2.0 (OpenCV)" in text
    assert f"| judge | {HeuristicJudge.name} |" in text
    assert "## Known limitations" in text and "no model looked at the pairs" in text
    for figure in ("stats/scores.png", "stats/samples_per_category.png"):
        assert f"]({figure})" in text and (release / figure).stat().st_size > 10_000
    assert manifest["runs"][0]["thresholds"]["default"]["min_o"] == 5.0


def test_load_with_datasets_and_the_trainer(release: Path, tone_run: Path) -> None:
    train_tars = sorted(str(p) for p in (release / "data" / "train").glob("*.tar"))
    kept = datasets.load_dataset("webdataset", data_files={"train": train_tars}, split="train")
    manifest = json.loads((release / "manifest.json").read_text())
    assert kept.num_rows == manifest["splits"]["train"]
    first = kept[0]
    assert first["src.jpg"].size == first["tgt.jpg"].size == first["mask.png"].size
    assert first["json"]["id"] == first["__key__"]

    # Through the card: every category's edit params are typed, not only those of the first samples.
    typed = datasets.load_dataset(str(release), split="train")
    tone = [r for r in typed["json"] if r["task"] == "tone_transformation"]
    assert tone and all(r["edit"]["params"]["operation"] for r in tone)
    negatives = datasets.load_dataset(str(release), "negatives", split="train")
    assert set(negatives["json"][i]["reject_reason"] for i in range(negatives.num_rows)) == {"below_min_o"}

    from model.data import DataFilter, read_manifests  # the trainer reads the release's shards as it is

    refs = read_manifests(train_tars, DataFilter(min_o=9.0))
    assert 0 < sum(len(r) for r in refs.values()) < kept.num_rows


def test_verify_finds_every_kind_of_damage(release: Path, tmp_path: Path) -> None:
    assert "OK" in step1x_data("verify", release).stdout
    copy = Path(shutil.copytree(release, tmp_path / "copy"))
    tar = next((copy / "data" / "train").glob("*.tar"))
    data = bytearray(tar.read_bytes())
    data[5000] ^= 0xFF  # inside the first image's bytes: the tar still reads, its checksum does not match
    tar.write_bytes(bytes(data))
    (copy / "data" / "negatives" / "shard-000000.parquet").unlink()
    (copy / "data" / "train" / "extra.txt").write_text("not released")
    result = step1x_data("verify", copy, exit_code=1)
    assert f"data/train/{tar.name}: SHA-256 differs from the manifest" in result.stderr
    assert "data/negatives/shard-000000.parquet: missing" in result.stderr
    assert "data/train/extra.txt: not in manifest.json" in result.stderr
    assert "3 problem(s)" in result.stderr

    # a truncated tar: size, and the samples it still holds
    shutil.copy(release / tar.relative_to(copy), tar)
    tar.write_bytes(tar.read_bytes()[:20_000])
    shutil.copy(release / "data/negatives/shard-000000.parquet", copy / "data/negatives/shard-000000.parquet")
    (copy / "data" / "train" / "extra.txt").unlink()
    result = step1x_data("verify", copy, exit_code=1)
    assert "bytes, the manifest says" in result.stderr


def test_release_refusals(removal_run: Path, release: Path, tmp_path: Path) -> None:
    for args, message in (
        ([str(removal_run), "--out", str(release)], "exists; choose another --out or pass --overwrite"),
        ([str(removal_run), "--out", str(tmp_path / "r"), "--view", "strict"], "no view 'strict'"),
    ):
        result = step1x_data("release", *args, exit_code=1)
        assert message in result.stderr
    assert not (tmp_path / "r").exists()
    assert not list(tmp_path.glob(".r.partial-*"))  # nothing half-written is left behind
