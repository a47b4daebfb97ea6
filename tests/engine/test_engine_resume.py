"""Resume: a run killed with SIGKILL part-way and restarted ends with exactly the samples of a run that was
never interrupted, each written once; leftovers of the interrupted commit are removed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import webdataset as wds
from engine_inputs import REPO, cli, manifest_rows, reject_rows, write_variants


def committed_ids(run: Path) -> list[str]:
    return [row["id"] for row in manifest_rows(run)]


def tar_keys(run: Path) -> list[str]:
    tars = sorted(str(p) for p in (run / "shards").glob("shard-*.tar"))
    return [sample["__key__"] for sample in wds.WebDataset(tars, shardshuffle=False)]


def reject_uris(run: Path) -> list[str]:
    return [row["source_uri"] for row in reject_rows(run)]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("many")
    write_variants(folder, 24)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def ray_run(source: Path) -> list[str]:
    """Arguments of a run on an embedded Ray, one worker, small shards (many commits)."""
    return [
        "run",
        "tone_transformation",
        "--source",
        str(source),
        "--quiet",
        "--shard-max-samples",
        "6",
        "--workers",
        "1",
    ]


@pytest.fixture(scope="module")
def reference(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same run, never interrupted."""
    out = tmp_path_factory.mktemp("reference") / "run"
    cli(*ray_run(source), "--out", str(out))
    return out


def test_sigkill_then_resume_matches_an_uninterrupted_run(
    source: Path, reference: Path, tmp_path: Path
) -> None:
    args = ray_run(source)

    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", *args, "--out", str(interrupted)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 240
    while time.time() < deadline and len(list((interrupted / "shards").glob("shard-*.parquet"))) < 3:
        time.sleep(0.05)
    # SIGKILL the whole process group: the driver and the Ray it started get no chance to clean up.
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    partial = committed_ids(interrupted)
    assert 3 * 6 <= len(partial) < len(committed_ids(reference)), "the kill must land part-way through"

    resumed = cli(*args, "--out", str(interrupted)).stdout
    assert "already done (resumed)" in resumed
    final = committed_ids(interrupted)
    assert sorted(final) == sorted(committed_ids(reference))
    assert not [k for k, n in Counter(final).items() if n > 1], "a sample was written twice"
    assert sorted(tar_keys(interrupted)) == sorted(final), "every tar member has its manifest row"
    assert sorted(reject_uris(interrupted)) == sorted(reject_uris(reference)) == [str(source / "broken.jpg")]
    assert not list((interrupted / "shards").glob(".*.partial"))
    runs = json.loads((interrupted / "run.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["interrupted", "finished"]


class HoldingServer(ThreadingHTTPServer):
    """Serves a folder over real HTTP, holding the first request for `held` open: the Ray worker reading
    it is then provably alive and mid-task until the test kills it."""

    def __init__(self, folder: Path, held: str) -> None:
        self.folder, self.held = folder, held
        self.requests: Counter[str] = Counter()
        self.holding, self.release = threading.Event(), threading.Event()
        super().__init__(("127.0.0.1", 0), HoldingHandler)


class HoldingHandler(BaseHTTPRequestHandler):
    server: HoldingServer

    def do_GET(self) -> None:
        name = self.path.lstrip("/")
        self.server.requests[name] += 1
        if name == self.server.held and self.server.requests[name] == 1:
            self.server.holding.set()
            self.server.release.wait(240)
            return  # the reader was killed meanwhile: nothing to answer
        data = (self.server.folder / name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_worker_killed_mid_run_is_retried_and_nothing_is_lost(
    source: Path, reference: Path, tmp_path: Path
) -> None:
    names = sorted(p.name for p in source.iterdir())
    server = HoldingServer(source, held=names[-1])  # the last source: earlier ones are under way or done
    threading.Thread(target=server.serve_forever, daemon=True).start()
    listing = tmp_path / "sources.txt"
    listing.write_text("".join(f"http://127.0.0.1:{server.server_port}/{name}\n" for name in names))
    out = tmp_path / "worker-killed"
    args = [*ray_run(source), "--out", str(out)]
    args[args.index("--source") + 1] = str(listing)
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert server.holding.wait(240), "the held source was never requested"
        # The one map worker of this run (its own session) is now blocked reading the held source.
        pids = subprocess.run(
            ["pgrep", "-s", str(process.pid), "-f", "ray::Map"], capture_output=True, text=True
        ).stdout.split()
        assert len(pids) == 1, pids
        os.kill(int(pids[0]), signal.SIGKILL)
        output, _ = process.communicate(timeout=300)
    finally:
        server.release.set()
        server.shutdown()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, output[-3000:]
    assert "worker died" in output.lower() or "retried" in output.lower(), "the kill must hit a running task"
    # The held request was never answered: any later one is the retry of the killed task reading it again.
    assert server.requests[names[-1]] > 1, "the killed task was not retried"
    final = committed_ids(out)
    assert sorted(final) == sorted(committed_ids(reference))
    assert len(final) == len(set(final))


def local_run(source: Path, out: Path, *extra: str) -> list[str]:
    """Arguments of an in-process (no Ray) run of tone_transformation."""
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
        *extra,
    ]


def test_rerun_of_a_finished_run_writes_nothing_and_removes_orphans(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "done"
    args = local_run(source, out, "--shard-max-samples", "50")
    cli(*args)
    before = sorted(committed_ids(out))
    # What an interrupted commit leaves: a tar renamed without its manifest, and a partial file.
    orphan = out / "shards" / "shard-000099.tar"
    orphan.write_bytes((out / "shards" / "shard-000000.tar").read_bytes())
    partial = out / "shards" / ".shard-000100.tar.partial"
    partial.write_bytes(b"half a tar")
    stdout = cli(*args).stdout
    assert not orphan.exists() and not partial.exists()
    assert sorted(committed_ids(out)) == before
    assert "samples written" in stdout and " 0 " in stdout.split("samples written")[1].splitlines()[0]


def test_resume_refuses_another_config(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    base = local_run(source, out, "--limit", "2")
    cli(*base)
    other = cli(*base, "--seed", "5", check=False)
    assert other.returncode != 0 and "config hash" in other.stderr


def test_a_moved_or_renamed_source_is_not_redone(tmp_path: Path) -> None:
    """Resume is keyed on (content hash, task): the same bytes under another name or folder are done."""
    first = tmp_path / "first"
    write_variants(first, 3)
    out = tmp_path / "run"
    cli(*local_run(first, out))
    before = sorted(committed_ids(out))
    moved = tmp_path / "elsewhere" / "deeper"
    moved.mkdir(parents=True)
    for i, path in enumerate(sorted(first.iterdir())):
        path.rename(moved / f"renamed_{i}.jpg")
    write_variants(tmp_path / "new", 4)  # variant_003 is the one new photo
    (tmp_path / "new" / "variant_003.jpg").rename(moved / "new.jpg")
    cli(*local_run(tmp_path / "elsewhere", out))
    counts = json.loads((out / "run.json").read_text())["runs"][-1]["counts"]
    assert counts["already_done"] == 3 and counts["read"] == 1
    after = committed_ids(out)
    assert len(after) == len(set(after)) and set(before) < set(after)
    new_sources = {row["source_uri"] for row in manifest_rows(out) if row["id"] not in before}
    assert new_sources == {str(moved / "new.jpg")}
