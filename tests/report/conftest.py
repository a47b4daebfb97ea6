"""Real runs for the report, release and serve tests: `step1x-data run` of subject_removal (local edits with
masks, some sources rejected) and tone_transformation (global edits) on the example photos, then
`step1x-data filter --judge heuristic`, all through the installed console script, once per session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/browser.py, shared with other page tests
from browser import chromium, page  # noqa: E402, F401

REPO = Path(__file__).resolve().parents[2]
PHOTOS = REPO / "examples" / "photos"
CLI = Path(sys.executable).with_name("step1x-data")


def step1x_data(*args: str | Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(CLI), *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def make_run(task: str, out: Path, min_o: float | None) -> Path:
    # The local executor: Ray's start-up would dominate, and the samples are the same either way.
    step1x_data("run", task, "--source", PHOTOS, "--out", out, "--executor", "local", "--quiet")
    if min_o is not None:
        step1x_data("filter", out, "--judge", "heuristic", "--min-o", min_o, "--workers", 2)
    return out


@pytest.fixture(scope="session")
def removal_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """subject_removal: 4 samples with masks; 2 sources rejected by the task (mask cut by the border, too
    large); judged, all kept at O >= 5."""
    return make_run("subject_removal", tmp_path_factory.mktemp("removal") / "run", 5.0)


@pytest.fixture(scope="session")
def tone_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tone_transformation: 30 global edits, judged at O >= 8.5 so that some are rejected."""
    return make_run("tone_transformation", tmp_path_factory.mktemp("tone") / "run", 8.5)
