"""The small GEdit-Bench of the tests, and one tiny-model generation of it shared by the session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from gedit_inputs import GENERATE, eval_cli, write_bench


@pytest.fixture(scope="session")
def gedit_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bench(tmp_path_factory.mktemp("gedit") / "GEdit-Bench")


@pytest.fixture(scope="session")
def generated(gedit_bench: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's edits of every bench row, once per session."""
    out = tmp_path_factory.mktemp("eval") / "tiny"
    eval_cli("generate", "--bench", str(gedit_bench), "--out", str(out), "--batch-size", "2", *GENERATE)
    return out


@pytest.fixture
def eval_dir(generated: Path, tmp_path: Path) -> Path:
    """A private copy: scoring writes into it."""
    return Path(shutil.copytree(generated, tmp_path / "eval"))
