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
    return {p.name: np.asarray(Image.open(p).convert("RGB")) for p in sorted(PHOTOS.iterdir())
            if p.suffix.lower() in {".png", ".jpg", ".jpeg"}}


@pytest.fixture(scope="session")
def produced_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run made by `step1x-data run` (the installed console script), once per session.

    Small shards so that the filter meets several manifests; the local executor because Ray's start-up would
    dominate the test time and the run's content is the same either way.
    """
    out = tmp_path_factory.mktemp("produced") / "run"
    cli = Path(sys.executable).with_name("step1x-data")
    subprocess.run(
        [str(cli), "run", "tone_transformation", "--source", str(PHOTOS), "--out", str(out),
         "--shard-max-samples", "8", "--executor", "local", "--quiet"],
        check=True, cwd=REPO, capture_output=True, timeout=300,
    )
    return out


@pytest.fixture
def run_dir(produced_run: Path, tmp_path: Path) -> Path:
    """A private copy: the filter writes into the run's manifests."""
    return Path(shutil.copytree(produced_run, tmp_path / "run"))
