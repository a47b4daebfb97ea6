"""The submission path: `ray start --head` is a real cluster; the category's entry module is submitted to it
with `ray job submit --working-dir .`, unchanged, and writes the same samples as the embedded run."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from engine_inputs import PHOTOS, REPO, cli, manifest_rows

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ids(run: Path) -> set[str]:
    return {row["id"] for row in manifest_rows(run)}


@pytest.fixture(scope="module")
def cluster():
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PATH": f"{BIN}:{os.environ['PATH']}"}
    gcs_port, dashboard_port = free_port(), free_port()
    temp_dir = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))  # unix socket paths must stay under 108 bytes
    start = subprocess.run(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--port",
            str(gcs_port),
            "--dashboard-port",
            str(dashboard_port),
            "--dashboard-host",
            "127.0.0.1",
            "--include-dashboard",
            "true",
            "--num-cpus",
            "2",
            "--temp-dir",
            str(temp_dir),
            "--disable-usage-stats",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        yield env, f"http://127.0.0.1:{dashboard_port}"
    finally:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp_dir, ignore_errors=True)


def submit_job(cluster, *entrypoint: str) -> subprocess.CompletedProcess:
    """`ray job submit --working-dir REPO -- ENTRYPOINT`, as the README shows it."""
    env, dashboard = cluster
    command = [str(BIN / "ray"), "job", "submit", "--address", dashboard, "--working-dir", str(REPO), "--"]
    return subprocess.run(
        [*command, *entrypoint], env=env, capture_output=True, text=True, timeout=600, cwd=REPO
    )


def test_ray_job_submit_runs_the_entry_module(cluster, tmp_path: Path) -> None:
    out = tmp_path / "submitted"
    entry = [
        "python",
        "-m",
        "pipelines.subject_removal",
        "--source",
        str(PHOTOS),
        "--out",
        str(out),
        "--quiet",
    ]
    submit = submit_job(cluster, *entry)
    assert submit.returncode == 0, submit.stdout[-3000:] + submit.stderr[-3000:]
    assert "succeeded" in (submit.stdout + submit.stderr).lower()
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["counts"]["samples_written"] == 1 and run_json["counts"]["rejected"] == 4
    local = tmp_path / "local"
    cli(
        "run",
        "subject_removal",
        "--source",
        str(PHOTOS),
        "--out",
        str(local),
        "--quiet",
        "--executor",
        "local",
    )
    assert ids(out) == ids(local)


def test_a_relative_out_under_job_submit_is_refused(cluster) -> None:
    """The job runs in the cluster's temporary copy of --working-dir: a relative --out would go with it."""
    relative = f"runs/relative-{os.getpid()}"
    entry = ["python", "-m", "pipelines.subject_removal", "--source", "examples/photos", "--out", relative]
    submit = submit_job(cluster, *entry)
    logs = submit.stdout + submit.stderr
    assert submit.returncode != 0 and "failed" in logs.lower()
    # One error line (ray job submit echoes the job's last logs, so it may be shown twice).
    (line,) = {line for line in logs.splitlines() if line.startswith("Error:")}
    assert f"--out {relative} is a relative path" in line and "working directory" in line
    assert "s3://" in line  # says what to give instead
    assert not (REPO / relative).exists()
