"""A disk that fills mid-run: one clear line, a prompt non-zero exit, nothing half-committed, run.json counts
what was committed, and a rerun once there is room ends with exactly the samples of an uninterrupted run.

The run writes into a small tmpfs (a real full disk: ENOSPC) on a real embedded Ray. Where mounting is not
allowed, a file-size limit (RLIMIT_FSIZE, EFBIG) stands in for it, on the local executor (Ray's own
processes would inherit the limit).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import webdataset as wds
from engine_inputs import REPO, manifest_rows, write_variants

from pipelines.config import RunConfig
from pipelines.runner import run


@dataclass
class SmallDisk:
    folder: Path
    limit_bytes: int
    mounted: bool

    def preexec(self) -> Callable[[], None] | None:
        if self.mounted:
            return None
        return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (self.limit_bytes, self.limit_bytes))

    def make_room(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,size=256m", str(self.folder)], check=True)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    write_variants(folder, 18)
    return folder


@pytest.fixture(scope="module")
def reference(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "run"
    run(RunConfig(task="tone_transformation", source=str(source), out=str(out), shard_max_samples=6), "local")
    return out


@pytest.fixture
def small_disk(reference: Path, tmp_path: Path) -> Iterator[SmallDisk]:
    total = sum(p.stat().st_size for p in (reference / "shards").iterdir())
    folder = tmp_path / "disk"
    folder.mkdir()
    size = total * 2 // 5  # room for about two fifths of the run
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True
    )
    yield SmallDisk(folder, size // 4, mount.returncode == 0)
    if mount.returncode == 0:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_is_one_line_and_a_rerun_completes(
    source: Path, reference: Path, small_disk: SmallDisk
) -> None:
    out = small_disk.folder / "run"
    command = [
        sys.executable,
        "-m",
        "pipelines.cli",
        "run",
        "tone_transformation",
        "--source",
        str(source),
        "--out",
        str(out),
        "--quiet",
    ]
    if small_disk.mounted:
        command += ["--shard-max-samples", "6", "--workers", "1"]
    else:  # one growing shard: a limit on the size of each file stops it part-way
        command += ["--executor", "local", "--shard-max-samples", "1000"]
    started = time.time()
    full = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=400, preexec_fn=small_disk.preexec()
    )
    seconds = time.time() - started
    assert full.returncode != 0, full.stdout
    # One line besides the progress lines a slow run logs every --log-every seconds.
    lines = [line for line in full.stderr.strip().splitlines() if not line.startswith("progress ")]
    assert len(lines) == 1, full.stderr[-3000:]
    (line,) = lines
    cause = "No space left on device" if small_disk.mounted else "File too large"
    assert f"cannot write to --out {out}: {cause}" in line and "run the same command again" in line
    assert seconds < 300, f"the run took {seconds:.0f} s to give up"

    committed = manifest_rows(out)
    if small_disk.mounted:
        assert committed, "the disk must fill part-way through, after a commit"
    names = sorted(p.name for p in (out / "shards").iterdir())
    assert not [n for n in names if n.endswith(".partial")]
    assert sorted(n for n in names if n.endswith(".tar")) == sorted({r["shard"] for r in committed})
    tars = sorted(str(p) for p in (out / "shards").glob("*.tar"))
    keys = [s["__key__"] for s in wds.WebDataset(tars, shardshuffle=False)] if tars else []
    assert sorted(keys) == sorted(r["id"] for r in committed), "a tar holds exactly its manifest's samples"
    last = json.loads((out / "run.json").read_text())["runs"][-1]
    assert last["status"] == "failed" and last["counts"]["samples_written"] == len(committed)

    small_disk.make_room()
    config = RunConfig(task="tone_transformation", source=str(source), out=str(out), shard_max_samples=6)
    run(config, executor="local")
    final = [r["id"] for r in manifest_rows(out)]
    assert sorted(final) == sorted(r["id"] for r in manifest_rows(reference))
    assert len(final) == len(set(final))
