"""The task contract (tasks/contract.py), checked on every task that exists, through the engine's own steps
on real inputs: photos for image tasks, a real clip for frame-pair tasks."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from engine_inputs import PHOTOS
from PIL import Image

from pipelines.config import RunConfig
from pipelines.runner import work_items
from pipelines.sources import list_sources
from tasks.contract import INPUT_KINDS, TaskModule
from tasks.registry import GEDIT_KEYS, available_tasks, load_task
from tasks.vocabulary import object_names

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VIDEOS = EXAMPLES / "video"
OPENCV_VIDEO = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
# Words that stand for "the thing being edited" without naming it.
PLACEHOLDERS = re.compile(r"\b(the|an?) (object|thing|item|region|subject)\b|\{|\}|物体|某物|东西|对象")
# Tasks whose quality gates rightly reject every pair the shipped photos allow: the contract (ids, records,
# instructions) is checked on the pairs they make with those gates relaxed. subject_replacement finds no
# two objects of one kind there; relaxed, it pastes the white cup (its white saucer cut away) for the camera.
RELAXED = {
    "subject_replacement": {
        "max_unseen_edge": 1.0,
        "check_fill": False,
        "min_plausibility": 1,
        "max_matte_halo": 1.0,
    }
}


def samples(task: str) -> list:
    module = load_task(task)
    videos = module.INPUTS == "frame_pair"
    source = (VIDEOS if VIDEOS.exists() else OPENCV_VIDEO) if videos else PHOTOS
    if (EXAMPLES / task).is_dir():  # a task whose edit needs inputs of its own (text_modification: text)
        source = EXAMPLES / task
    config = RunConfig(task=task, source=str(source), out="unused", task_params=RELAXED.get(task, {}))
    refs = list_sources(str(source), videos=videos).refs
    items = list(work_items(refs, config, "local", frozenset()))
    assert not [item.error for item in items if item.error], "a step failed"
    return [sample for item in items for sample in item.samples]


@pytest.fixture(scope="module", params=available_tasks())
def task_samples(request: pytest.FixtureRequest) -> tuple[str, list]:
    return request.param, samples(request.param)


def test_every_task_declares_the_contract() -> None:
    assert len(available_tasks()) >= 3
    for task in available_tasks():
        module = load_task(task)
        assert isinstance(module, TaskModule) and module.INPUTS in INPUT_KINDS
        assert GEDIT_KEYS[task] == module.GEDIT_KEY


def test_ids_are_deterministic(task_samples: tuple[str, list]) -> None:
    task, first = task_samples
    assert first, f"{task} made no sample from its real inputs"
    again = samples(task)
    assert [s.id for s in again] == [s.id for s in first]
    assert len({s.id for s in first}) == len(first)


def test_instructions_are_bilingual_and_name_the_edit(task_samples: tuple[str, list]) -> None:
    task, produced = task_samples
    for sample in produced:
        en, zh = sample.record["instruction"]["en"], sample.record["instruction"]["zh"]
        # Quoted text is copied exactly from the photo (text_modification), in whatever script it has.
        assert len(en) > 8 and re.sub(r'"[^"]*"', '""', en).isascii(), en
        assert re.search(r"[\u4e00-\u9fff]", zh), zh
        assert not PLACEHOLDERS.search(en.lower()) and not PLACEHOLDERS.search(zh), (en, zh)
        category = sample.record["edit"]["params"].get("category")
        if category:  # an object edit names its object in both languages
            names = object_names(category)
            assert names["en"] in en and names["zh"] in zh, (en, zh, category)


def test_gedit_key_masks_and_sizes(task_samples: tuple[str, list]) -> None:
    task, produced = task_samples
    local = load_task(task).LOCAL
    for sample in produced:
        assert sample.record["gedit_key"] == GEDIT_KEYS[task] and sample.record["task"] == task
        source = np.asarray(Image.open(io.BytesIO(sample.src)))
        target = np.asarray(Image.open(io.BytesIO(sample.tgt)))
        assert source.shape == target.shape
        assert (sample.record["width"], sample.record["height"]) == (source.shape[1], source.shape[0])
        if local:
            assert sample.mask is not None and sample.record["edit"]["has_mask"]
            mask = np.asarray(Image.open(io.BytesIO(sample.mask)))
            assert mask.shape == source.shape[:2] and 0 < (mask > 127).mean() < 1
