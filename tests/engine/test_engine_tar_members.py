"""Tar sources account for every member: each image-named member ends as samples or as a reject with a true
reason (links, unsafe names, duplicates, oversize), and sizes are checked from headers before any bytes are
read. Real tars made with `tarfile`, real runs in this process."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import tracemalloc
from pathlib import Path

import pytest
from engine_inputs import PHOTOS, manifest_rows, reject_rows

from pipelines.config import RunConfig
from pipelines.decode import DecodeError, DecodeLimits
from pipelines.load import load_source
from pipelines.runner import run
from pipelines.sources import list_sources

BIG = 300_000_000  # bytes: three times the default limit


def add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def add_link(archive: tarfile.TarFile, name: str, target: str, kind: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    archive.addfile(info)


def append_sparse_member(path: Path, name: str, size: int) -> None:
    """A member of `size` bytes whose data is a hole in the file: a huge member that costs no disk."""
    with tarfile.open(path, "a") as archive:
        end = archive.offset  # where the end-of-archive blocks start
    info = tarfile.TarInfo(name)
    info.size = size
    with open(path, "r+b") as handle:
        handle.seek(end)
        handle.write(info.tobuf(format=tarfile.GNU_FORMAT))
        data_end = handle.tell() + -(-size // 512) * 512
        handle.truncate(data_end + 2 * 512)  # zeros: the data hole, then the end-of-archive blocks


def odd_tar(path: Path) -> dict[str, str]:
    """A tar with good, linked, unsafe, duplicated and oversized members; returns name -> reject reason."""
    coffee, rocket, chelsea = ((PHOTOS / n).read_bytes() for n in ("coffee.png", "rocket.jpg", "chelsea.png"))
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as archive:
        add_bytes(archive, "photos/coffee.png", coffee)
        add_bytes(archive, "photos/twice.jpg", rocket)
        add_link(archive, "photos/soft.png", "coffee.png", tarfile.SYMTYPE)
        add_link(archive, "photos/hard.png", "photos/coffee.png", tarfile.LNKTYPE)
        add_bytes(archive, "/etc/absolute.png", chelsea)
        add_bytes(archive, "photos/../../escape.png", chelsea)
        add_bytes(archive, "photos/twice.jpg", chelsea)  # same name, other bytes: never read
        add_bytes(archive, "photos/caption.json", json.dumps({"caption": "not a photo"}).encode())
    append_sparse_member(path, "photos/huge.png", BIG)
    return {
        "photos/soft.png": "link_member",
        "photos/hard.png": "link_member",
        "/etc/absolute.png": "unsafe_member_name",
        "photos/../../escape.png": "unsafe_member_name",
        "photos/twice.jpg": "duplicate_member",
        "photos/huge.png": "file_too_large",
    }


def member(uri: str) -> str:
    return uri.removeprefix("tar://").split("::")[0]


def test_every_member_is_a_sample_or_a_reject_with_its_reason(tmp_path: Path) -> None:
    tar = tmp_path / "odd.tar"
    expected = odd_tar(tar)
    out = tmp_path / "run"
    config = RunConfig(task="tone_transformation", source=str(tar), out=str(out))
    summary = run(config, executor="local")

    rejects = {member(row["source_uri"]): row for row in reject_rows(out)}
    assert {name: row["reason"] for name, row in rejects.items()} == expected
    assert "not read" in rejects["photos/huge.png"]["detail"]
    kept = {member(row["source_uri"]): row["source_sha256"] for row in manifest_rows(out)}
    sha = {n: hashlib.sha256((PHOTOS / n).read_bytes()).hexdigest() for n in ("coffee.png", "rocket.jpg")}
    # The first of the two members named twice.jpg is the one read: rocket's bytes, not chelsea's.
    assert kept == {"photos/coffee.png": sha["coffee.png"], "photos/twice.jpg": sha["rocket.jpg"]}
    counts = json.loads((out / "run.json").read_text())["counts"]
    assert counts["read"] == counts["kept_sources"] + counts["rejected"] == 8  # json member: not a source
    assert summary.samples == len(manifest_rows(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.tar", "run"]  # nothing written beside --out

    again = run(config, executor="local")
    assert again.already_done == 8 and again.read == 0 and again.samples == 0


@pytest.mark.parametrize("where", ["tar member", "plain file"])
def test_sizes_are_checked_before_the_bytes_are_read(tmp_path: Path, where: str) -> None:
    if where == "tar member":
        path = tmp_path / "huge.tar"
        with tarfile.open(path, "w", format=tarfile.GNU_FORMAT):
            pass
        append_sparse_member(path, "huge.png", BIG)
        (ref,) = list_sources(str(path)).refs
    else:
        path = tmp_path / "huge.png"
        with open(path, "wb") as handle:
            handle.truncate(BIG)
        (ref,) = list_sources(str(path)).refs
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError) as raised:
            load_source(ref, DecodeLimits())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert raised.value.reason == "file_too_large" and "not read" in raised.value.detail
    assert peak < 2_000_000, f"{peak} bytes allocated for a member that must not be read"


def test_members_of_a_compressed_tar_are_read_by_offset(tmp_path: Path) -> None:
    plain = tmp_path / "plain.tar"
    with tarfile.open(plain, "w") as archive:
        for name in ("coffee.png", "rocket.jpg"):
            add_bytes(archive, "same.png", (PHOTOS / name).read_bytes())
        add_bytes(archive, "chelsea.png", (PHOTOS / "chelsea.png").read_bytes())
    packed = tmp_path / "photos.tgz"  # a name fsspec cannot infer a compression from: the bytes tell
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    listing = list_sources(str(packed))
    assert [member(r["source_uri"]) for r in listing.rejects] == ["same.png"]
    loaded = {member(ref["uri"]): load_source(ref, DecodeLimits()).sha256 for ref in listing.refs}
    assert loaded == {
        name: hashlib.sha256((PHOTOS / photo).read_bytes()).hexdigest()
        for name, photo in (("same.png", "coffee.png"), ("chelsea.png", "chelsea.png"))
    }
