"""Shared fixtures of the model tests: a real data-engine run over the shipped example photos."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    """A real `step1x-data run` over the shipped example photos."""
    out = tmp_path_factory.mktemp("data") / "run"
    cmd = [
        sys.executable,
        "-m",
        "pipelines.cli",
        "run",
        "tone_transformation",
        "--source",
        "examples/photos",
        "--out",
        str(out),
    ]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=600)
    assert list((out / "shards").glob("*.parquet"))
    return out


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("features")


@pytest.fixture
def keep_torch_threads():
    """Restores torch's thread count after a test that runs `step1x-edit --tiny` (it sets one thread)."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
