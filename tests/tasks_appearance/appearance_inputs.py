"""Inputs for the appearance tests: the shipped example photos with their COCO labels, run through the
engine's own steps (offline backends)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pipelines.config import RunConfig
from pipelines.load import labels_from_annotations
from pipelines.runner import work_items
from pipelines.sources import list_sources
from tasks.records import ObjectLabel

PHOTOS = Path(__file__).resolve().parents[2] / "examples" / "photos"


def photo(name: str) -> np.ndarray:
    return np.asarray(Image.open(PHOTOS / name).convert("RGB")).copy()


def label(name: str, category: str) -> ObjectLabel:
    """The labelled object of ``category`` in example photo ``name`` (labels.coco.json)."""
    coco = json.loads((PHOTOS / "labels.coco.json").read_text())
    image = next(i for i in coco["images"] if i["file_name"] == name)
    names = {c["id"]: c["name"] for c in coco["categories"]}
    annotations = [
        {**a, "category": names[a["category_id"]]}
        for a in coco["annotations"]
        if a["image_id"] == image["id"]
    ]
    labels = labels_from_annotations(annotations, image["height"], image["width"])
    return next(lab for lab in labels if lab.category == category)


def run_items(task: str, **settings: Any) -> list:
    """Every work item of ``task`` over the example photos, through the engine's local executor."""
    config = RunConfig(task=task, source=str(PHOTOS), out="unused", **settings)
    items = list(work_items(list_sources(str(PHOTOS)).refs, config, "local", frozenset()))
    assert not [item.error for item in items if item.error], [item.error for item in items if item.error]
    return items


def decoded(sample: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(source, target, mask) of an encoded sample, as arrays."""
    source = np.asarray(Image.open(io.BytesIO(sample.src)).convert("RGB"))
    target = np.asarray(Image.open(io.BytesIO(sample.tgt)).convert("RGB"))
    mask = np.asarray(Image.open(io.BytesIO(sample.mask))) > 127 if sample.mask is not None else None
    return source, target, mask
