"""Shared inputs and tools for the text, portrait and motion tests: the real offline tools, built once."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "engine"))  # engine_inputs: the CLI runner and manifest readers

PHOTOS = REPO / "examples" / "photos"
TEXT_PHOTO = REPO / "examples" / "text_modification" / "cookie_box.png"


def rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="session")
def ocr():
    from annotators.ocr import RapidOCRText

    return RapidOCRText()


@pytest.fixture(scope="session")
def renderer():
    from annotators.text_render import PillowTextRenderer

    return PillowTextRenderer()


@pytest.fixture(scope="session")
def faces():
    from annotators.faces import MediaPipeFaces

    return MediaPipeFaces()


@pytest.fixture(scope="session")
def persons():
    from annotators.persons import MediaPipePersons

    return MediaPipePersons()


@pytest.fixture(scope="session")
def pose():
    from annotators.pose import MediaPipePose

    return MediaPipePose()


@pytest.fixture(scope="session")
def flow():
    from annotators.flow import DISFlow

    return DISFlow()


def engine_items(task: str, source: Path, **config: object) -> list:
    """Every work item of a run of ``task`` on ``source``, through the engine's own steps in this process
    (what `step1x-data run --executor local` does, without the subprocess and the shard writing)."""
    from pipelines.config import RunConfig
    from pipelines.runner import work_items
    from pipelines.sources import list_sources
    from tasks.registry import load_task

    videos = load_task(task).INPUTS == "frame_pair"
    run = RunConfig(task=task, source=str(source), out="unused", **config)
    items = list(work_items(list_sources(str(source), videos=videos).refs, run, "local", frozenset()))
    assert not [item.error for item in items if item.error], "a step failed"
    return items
