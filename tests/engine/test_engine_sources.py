"""Every kind of source a run accepts: list files, parquet lists, tars, COCO files, globs."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from engine_inputs import PHOTOS

from pipelines.decode import DecodeLimits
from pipelines.load import load_source
from pipelines.sources import SourceError, list_sources

PHOTO_NAMES = ["astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg"]


def names(refs: list[dict]) -> list[str]:
    return sorted(Path(ref["uri"].split("::")[0].removeprefix("tar://")).name for ref in refs)


def test_folder_attaches_coco_labels_and_licences() -> None:
    listing = list_sources(str(PHOTOS))
    assert names(listing.refs) == PHOTO_NAMES  # LICENSES.md and labels.coco.json are not sources
    coffee = next(ref for ref in listing.refs if ref["uri"].endswith("coffee.png"))
    assert {a["category"] for a in coffee["annotations"]} == {"cup", "spoon"}
    assert coffee["licence"].startswith("CC0")
    sample = load_source(coffee, DecodeLimits())
    assert [label.category for label in sample.labels] == ["cup", "spoon"]
    cup = sample.labels[0]
    assert cup.mask.shape == (400, 600) and 0.1 < cup.mask.mean() < 0.3
    x0, y0, x1, y1 = cup.bbox
    assert cup.mask[y0:y1, x0:x1].sum() == cup.mask.sum()


def test_licence_and_readme_files_are_skipped_but_photos_named_like_them_are_not(tmp_path: Path) -> None:
    for name in ("LICENSE", "README.txt", "licence.txt"):
        (tmp_path / name).write_text("not a photo")
    shutil.copy(PHOTOS / "rocket.jpg", tmp_path / "licenseplate_motion.jpg")
    shutil.copy(PHOTOS / "camera.png", tmp_path / "readme_cover.png")
    assert names(list_sources(str(tmp_path)).refs) == ["licenseplate_motion.jpg", "readme_cover.png"]


def test_text_and_parquet_lists_resolve_relative_paths(tmp_path: Path) -> None:
    shutil.copy(PHOTOS / "rocket.jpg", tmp_path / "rocket.jpg")
    (tmp_path / "list.txt").write_text(f"# photos\nrocket.jpg\n{PHOTOS / 'coffee.png'}\n\n")
    assert names(list_sources(str(tmp_path / "list.txt")).refs) == ["coffee.png", "rocket.jpg"]
    table = pa.table({"uri": ["rocket.jpg", str(PHOTOS / "chelsea.png")], "licence": ["mine", "CC0"]})
    pq.write_table(table, tmp_path / "list.parquet")
    refs = list_sources(str(tmp_path / "list.parquet")).refs
    assert names(refs) == ["chelsea.png", "rocket.jpg"] and {r["licence"] for r in refs} == {"mine", "CC0"}
    for ref in refs:
        assert load_source(ref, DecodeLimits()).image.ndim == 3


def test_tars_are_read_member_by_member_and_unreadable_tars_are_rejected(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "photos.tar", "w") as archive:
        for name in ("coffee.png", "rocket.jpg"):
            archive.add(PHOTOS / name, arcname=f"sample{name.split('.')[0]}.{name.split('.')[1]}")
        info = tarfile.TarInfo("samplecoffee.json")
        payload = json.dumps({"caption": "a cup"}).encode()
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    (tmp_path / "broken.tar").write_bytes(b"\x00\x01 this is not a tar archive" * 50)
    listing = list_sources(str(tmp_path / "*.tar"))
    assert len(listing.refs) == 2  # the json member describes a sample, it is not a photo
    assert [r["reason"] for r in listing.rejects] == ["unreadable_tar"]
    for ref in listing.refs:
        sample = load_source(ref, DecodeLimits())
        assert sample.image.shape[2] == 3 and len(sample.sha256) == 64


def test_coco_file_as_source(tmp_path: Path) -> None:
    refs = list_sources(str(PHOTOS / "labels.coco.json")).refs
    assert names(refs) == PHOTO_NAMES
    assert all(ref["label_size"] for ref in refs)


def test_missing_sources_are_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        list_sources(str(tmp_path / "missing"))
    with pytest.raises(SourceError, match="matches nothing"):
        list_sources(str(tmp_path / "*.jpg"))
    (tmp_path / "bad.coco.json").write_text(json.dumps({"images": []}))
    with pytest.raises(SourceError, match="not a COCO"):
        list_sources(str(tmp_path / "bad.coco.json"))


def test_a_labels_file_elsewhere_is_matched_to_the_folder_files(tmp_path: Path) -> None:
    (tmp_path / "shots").mkdir()
    for name in ("coffee.png", "rocket.jpg"):
        shutil.copy(PHOTOS / name, tmp_path / "shots" / name)
    refs = list_sources(str(tmp_path / "shots"), labels=str(PHOTOS / "labels.coco.json")).refs
    categories = {Path(r["uri"]).name: sorted(a["category"] for a in r["annotations"]) for r in refs}
    assert categories == {"coffee.png": ["cup", "spoon"], "rocket.jpg": ["rocket"]}
    assert {r["licence"] for r in refs} == {
        "CC0-1.0 (photographer: Rachel Michetti)",
        "public domain (SpaceX)",
    }
