"""Shared by the appearance model-backend tests: one folder of tiny models per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from appearance_models_folder import build_models

from annotators.appearance_models import ControlNetPainter


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = build_models(tmp_path_factory.mktemp("models"))
    steps = ControlNetPainter.steps
    ControlNetPainter.steps = 2  # the plumbing is the same at 2 steps as at 25, and 12x faster
    yield str(folder)
    ControlNetPainter.steps = steps
