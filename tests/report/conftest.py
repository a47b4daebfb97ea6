"""Real runs for the report, release and serve tests: `step1x-data run` of subject_removal (local edits with
masks, some sources rejected) and tone_transformation (global edits) on the example photos, then
`step1x-data filter --judge heuristic`, once per session. Commands go through the project's click group in
this process (the console script's start-up alone takes seconds on a 2-core machine)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pipelines.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/browser.py, shared with other page tests
from browser import chromium, page  # noqa: E402, F401

REPO = Path(__file__).resolve().parents[2]
PHOTOS = REPO / "examples" / "photos"


def step1x_data(*args: str | Path | float, exit_code: int = 0) -> Result:
    """`step1x-data ARGS`; the exit code is checked (1: a one-line error on stderr)."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exit_code != exit_code:
        raise AssertionError(f"exit {result.exit_code}: {result.output}") from result.exception
    return result


# The tasks' quality gates relaxed, so that the runs hold what the report must show: removals with masks
# (the fill checks keep only the rocket of the example photos) and tone edits of every strength, some of
# which the judge rejects (with the gates on it scores all 30 at 8.8 or more).
RELAXED = {
    "subject_removal": ["--param", "check_fill=false"],
    "tone_transformation": ["--param", "scene_check=false", "--param", "min_visible=0"],
}


def make_run(task: str, out: Path, min_o: float | None) -> Path:
    # The local executor: Ray's start-up would dominate, and the samples are the same either way.
    step1x_data(
        "run", task, "--source", PHOTOS, "--out", out, "--executor", "local", "--quiet", *RELAXED[task]
    )
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
