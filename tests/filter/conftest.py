from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
PHOTOS = REPO / "examples" / "photos"


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    return {
        p.name: np.asarray(Image.open(p).convert("RGB"))
        for p in sorted(PHOTOS.iterdir())
        if p.suffix.lower() in {".png", ".jpg", ".jpeg"}
    }


CLI = Path(sys.executable).with_name("step1x-data")  # the installed console script


def _produce(task: str, out: Path) -> Path:
    # Small shards so that the filter meets several manifests; the local executor because Ray's start-up
    # would dominate the test time and the run's content is the same either way.
    subprocess.run(
        [
            str(CLI),
            "run",
            task,
            "--source",
            str(PHOTOS),
            "--out",
            str(out),
            "--shard-max-samples",
            "8",
            "--executor",
            "local",
            "--quiet",
        ],
        check=True,
        cwd=REPO,
        capture_output=True,
        timeout=300,
    )
    return out


@pytest.fixture(scope="session")
def produced_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tone_transformation run made by `step1x-data run`, once per session (global edits)."""
    return _produce("tone_transformation", tmp_path_factory.mktemp("tone") / "run")


@pytest.fixture(scope="session")
def produced_removal_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real subject_removal run (local edits with masks) from the example photos' COCO labels."""
    return _produce("subject_removal", tmp_path_factory.mktemp("removal") / "run")


@pytest.fixture
def run_dir(produced_run: Path, tmp_path: Path) -> Path:
    """A private copy: the filter writes into the run's manifests."""
    return Path(shutil.copytree(produced_run, tmp_path / "run"))
