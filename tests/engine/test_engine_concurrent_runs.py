"""One run at a time per --out: a second run started while the first writes refuses with one line and
touches nothing; the first finishes with all its samples; the second, run afterwards, adds its own. (A lock
left by a SIGKILLed run holds nothing: flock dies with its process, which test_engine_resume's kill-and-rerun
tests go through.)

Two real `step1x-data run` processes. The first is held mid-run deterministically: its first source is a
named pipe, whose opening blocks until the test opens the other end (the pipe is then an `unreadable`
reject: fsspec opens only seekable files).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import fsspec
import pytest
from engine_inputs import REPO, cli, manifest_rows, reject_rows, write_variants

from pipelines.config import RunConfig
from pipelines.lock import LEASE_SECONDS, RunLock, RunLocked
from pipelines.runner import run
from pipelines.shards import RunFolder


def args(source: Path, out: Path) -> list[str]:
    return [
        "run",
        "tone_transformation",
        "--source",
        str(source),
        "--out",
        str(out),
        "--quiet",
        "--executor",
        "local",
        "--shard-max-samples",
        "4",
    ]


def ids_of(source: Path, out: Path) -> list[str]:
    run(RunConfig(task="tone_transformation", source=str(source), out=str(out)), executor="local")
    return [row["id"] for row in manifest_rows(out)]


def test_a_second_run_on_the_same_out_refuses_and_touches_nothing(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    write_variants(first, 6)
    write_variants(second, 9)
    for name in [f"variant_{i:03d}.jpg" for i in range(6)]:
        (second / name).unlink()  # the second run's sources are other photos: variants 6..8
    reference_first = ids_of(first, tmp_path / "ref-first")
    reference_second = ids_of(second, tmp_path / "ref-second")

    os.mkfifo(first / "held.jpg")
    out = tmp_path / "shared"
    runner = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", *args(first, out)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # held.jpg sorts first: once run.json says "running", the first run is blocked reading the pipe.
        deadline = time.time() + 120
        while time.time() < deadline and not (out / "run.json").exists():
            assert runner.poll() is None, runner.communicate()
            time.sleep(0.1)
        lock_holder = json.loads((out / ".lock").read_text())
        assert lock_holder["pid"] == runner.pid

        refused = cli(*args(second, out), check=False, timeout=120)
        assert refused.returncode != 0
        (line,) = refused.stderr.strip().splitlines()
        assert "in use by another run" in line and f"pid {runner.pid}" in line
        assert runner.poll() is None, "the first run must still be writing when the second is refused"
    finally:
        open(first / "held.jpg", "wb").close()  # let the first run go on
    stdout, stderr = runner.communicate(timeout=300)
    assert runner.returncode == 0, stderr
    assert sorted(row["id"] for row in manifest_rows(out)) == sorted(reference_first)
    assert [(Path(r["source_uri"]).name, r["reason"]) for r in reject_rows(out)] == [
        ("held.jpg", "unreadable")
    ]

    # The folder is free again: the second run adds its samples beside the first's.
    run(RunConfig(task="tone_transformation", source=str(second), out=str(out), shard_max_samples=4), "local")
    final = [row["id"] for row in manifest_rows(out)]
    assert sorted(final) == sorted(reference_first + reference_second)
    assert not [i for i, n in Counter(final).items() if n > 1]
    statuses = [r["status"] for r in json.loads((out / "run.json").read_text())["runs"]]
    assert statuses == ["finished", "finished"]  # the refused run left no entry


def test_a_remote_folder_is_held_by_a_lease(tmp_path: Path) -> None:
    """On an object store the lock is a lease object (fsspec's memory store stands in for s3:// here)."""
    url = f"memory://leases/{tmp_path.name}"
    holder = RunLock(RunFolder(url))
    holder.acquire()
    try:
        with pytest.raises(RunLocked, match="in use by another run"):
            RunLock(RunFolder(url)).acquire()
    finally:
        holder.release()
    assert not fsspec.filesystem("memory").exists(f"/leases/{tmp_path.name}/.lock")

    # A lease its run stopped renewing (the run died) is taken over.
    memory = fsspec.filesystem("memory")
    stale = {
        "token": "dead",
        "pid": 1,
        "host": "elsewhere",
        "since": 0,
        "renewed": time.time() - LEASE_SECONDS - 1,
    }
    memory.pipe(f"/leases/{tmp_path.name}/.lock", json.dumps(stale).encode())
    taker = RunLock(RunFolder(url))
    taker.acquire()
    assert json.loads(memory.cat(f"/leases/{tmp_path.name}/.lock"))["token"] == taker.token
    taker.release()
