"""The `objects` annotator's models backend (Florence-2 + SAM-2) on real photos, with tiny models in their
upstream layouts: names from the vocabulary or dropped with a reason, boxes where Florence-2 put them,
masks from SAM-2 judged by the gate, labels from files untouched, out-of-memory errors that free memory."""

from __future__ import annotations

import json
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from engine_inputs import PHOTOS
from PIL import Image
from pycocotools import mask as coco_mask
from tiny_models import CUP_BOX

from annotators.objects_models import LABEL_SOURCE, FlorenceSam2Objects, MaskGate
from annotators.registry import PluginUnavailable, resolve
from tasks.records import ObjectLabel, SourceSample
from tasks.vocabulary import ALIASES, DETECTED_OBJECTS, OBJECTS, object_names, vocabulary_key

PERMISSIVE = MaskGate(min_score=0.0, max_outside=1.0, min_fill=0.0)


def source(name: str, labels: list[ObjectLabel] | None = None) -> SourceSample:
    image = np.asarray(Image.open(PHOTOS / name).convert("RGB"))
    return SourceSample(uri=name, sha256=name, image=image, labels=labels or [])


def coco_labels(name: str) -> list[ObjectLabel]:
    """The photo's human labels from examples/photos/labels.coco.json, with their masks."""
    coco = json.loads((PHOTOS / "labels.coco.json").read_text())
    image = next(i for i in coco["images"] if i["file_name"] == name)
    names = {c["id"]: c["name"] for c in coco["categories"]}
    labels = []
    for annotation in coco["annotations"]:
        if annotation["image_id"] != image["id"]:
            continue
        rles = coco_mask.frPyObjects(annotation["segmentation"], image["height"], image["width"])
        mask = coco_mask.decode(coco_mask.merge(rles)).astype(bool)
        x, y, w, h = annotation["bbox"]
        labels.append(ObjectLabel(names[annotation["category_id"]], (x, y, x + w, y + h), mask))
    return labels


@pytest.fixture(scope="module")
def annotator(models_dir: Path) -> FlorenceSam2Objects:
    return resolve("objects", "models")(str(models_dir))


def test_named_boxes_become_labels_with_sam2_masks(annotator: FlorenceSam2Objects) -> None:
    annotator.gate = PERMISSIVE  # random SAM-2 weights score every mask ~0.5: let them through here
    coffee = source("coffee.png")
    annotator.annotate([coffee])
    # Florence-2 said "cup" at the cup's box, "cactus" (no vocabulary name, nor from its region caption)
    # and "human face" (not removable) elsewhere: only the cup is labelled.
    (cup,) = coffee.labels
    assert cup.category == "cup" and cup.source == LABEL_SOURCE
    assert cup.mask.shape == coffee.image.shape[:2] and cup.mask.dtype == bool and cup.mask.any()
    # The mask is kept inside the cup's box (as Florence-2's 1000 location bins give it back, within a
    # pixel) grown by the gate's margin: 10 % of its 237 x 289 px on each side.
    x0, y0, x1, y1 = cup.bbox
    assert x0 >= CUP_BOX[0] - 25 and y0 >= CUP_BOX[1] - 30 and x1 <= CUP_BOX[2] + 26 and y1 <= CUP_BOX[3] + 31
    assert cup.mask[:, : CUP_BOX[0] - 25].sum() == 0 and cup.mask[:, CUP_BOX[2] + 26 :].sum() == 0
    record = annotator.describe_source(coffee)
    assert record["backend"] == "models" and record["name"] == LABEL_SOURCE
    assert "Florence-2-large+sam2.1-hiera-large" in record["version"]
    assert record["dropped"] == "not_removable:1,unnamed:1"
    names = object_names(cup.category)
    assert names == {"en": "cup", "zh": "杯子"}


def test_masks_sam2_scores_low_are_dropped_with_their_reason(annotator: FlorenceSam2Objects) -> None:
    annotator.gate = MaskGate()
    coffee = source("coffee.png")
    annotator.annotate([coffee])
    assert coffee.labels == []
    assert annotator.describe_source(coffee)["dropped"] == "mask_low_score:1,not_removable:1,unnamed:1"


def test_sources_with_labels_keep_them_and_a_batch_mixes_both(annotator: FlorenceSam2Objects) -> None:
    annotator.gate = PERMISSIVE
    labelled = source("camera.png", coco_labels("camera.png"))
    before = [(label.category, label.bbox) for label in labelled.labels]
    coffee = source("coffee.png")
    annotator.annotate([labelled, coffee])
    assert [(label.category, label.bbox) for label in labelled.labels] == before
    assert annotator.describe_source(labelled) == {"backend": "labels", "name": "coco", "version": "coco"}
    assert [label.category for label in coffee.labels] == ["cup"]


def test_the_gate_on_real_masks() -> None:
    gate = MaskGate()
    cup, spoon = coco_labels("coffee.png")
    assert gate.problem(cup.mask, 0.95, cup.bbox) is None
    assert gate.problem(cup.mask, 0.4, cup.bbox) == "mask_low_score"
    assert gate.problem(np.zeros_like(cup.mask), 0.95, cup.bbox) == "mask_empty"
    # The cup's mask prompted by the spoon's box: most of it lies outside that box.
    assert gate.problem(cup.mask, 0.95, spoon.bbox) == "mask_outside_box"
    # The spoon's mask prompted by a box around both: it covers little of that box.
    around = (min(cup.bbox[0], spoon.bbox[0]), 0, 600, 400)
    assert gate.problem(spoon.mask, 0.95, around) == "mask_fills_little_of_box"


def test_out_of_memory_is_torch_s_error_and_frees_what_the_call_held(
    annotator: FlorenceSam2Objects, monkeypatch: pytest.MonkeyPatch
) -> None:
    held: list[weakref.ref] = []

    def allocate_then_fail(*args: object, **kwargs: object) -> None:
        activations = torch.empty(1 << 20)  # what a real forward holds when the allocator gives up
        held.append(weakref.ref(activations))
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(annotator.florence.model, "generate", allocate_then_fail)
    with pytest.raises(torch.OutOfMemoryError, match="Tried to allocate 2.00 GiB") as raised:
        annotator.annotate([source("coffee.png")])
    assert raised.value.__context__ is None and raised.value.__cause__ is None
    assert held and held[0]() is None  # the failed call's tensors are gone while the error is handled


def test_remote_code_florence_is_one_line(tmp_path: Path, models_dir: Path) -> None:
    """microsoft/Florence-2-large (custom code, other weight names) is refused before anything loads."""
    remote = tmp_path / "Florence-2-large"
    remote.mkdir()
    config = json.loads((models_dir / "Florence-2-large" / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_florence2.Florence2ForConditionalGeneration"}
    (remote / "config.json").write_text(json.dumps(config))
    with pytest.raises(PluginUnavailable) as raised:
        FlorenceSam2Objects(str(tmp_path))
    assert "florence-community/Florence-2-large" in str(raised.value) and "\n" not in str(raised.value)


def test_detector_names_map_onto_the_bilingual_vocabulary() -> None:
    assert vocabulary_key("Coffee cup") == "coffee cup"
    assert vocabulary_key("a white mugs") == "mug"
    assert vocabulary_key("mobile phone") == "cell phone"
    assert vocabulary_key("red sports car") == "car"
    assert vocabulary_key("butterflies") == "butterfly"
    assert vocabulary_key("Teddy bear") == "teddy bear"
    # Parts of other things, what people wear and generic words name nothing a removal can take away.
    for name in ("human face", "wheel", "car door", "clothing", "object", "objects", ""):
        assert vocabulary_key(name) is None, name
    assert set(ALIASES.values()) <= set(OBJECTS)
    for key, zh in DETECTED_OBJECTS.items():
        assert key == key.lower() and zh and all("\u4e00" <= ch <= "\u9fff" for ch in zh), key
