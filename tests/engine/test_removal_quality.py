"""Offline removal keeps only what a person would accept: named objects, fillable holes, fills that look like
their surroundings. Real example photos with their hand-drawn labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from engine_inputs import PHOTOS, photo

from annotators.inpaint import ClassicalInpainter
from annotators.objects import OfflineObjects
from pipelines.load import labels_from_annotations
from tasks import subject_removal
from tasks.fill_quality import measure_fill, surroundings
from tasks.records import ObjectLabel, SourceSample
from tasks.tools import Tools


def labelled(name: str) -> SourceSample:
    coco = json.loads((PHOTOS / "labels.coco.json").read_text())
    categories = {c["id"]: c["name"] for c in coco["categories"]}
    (image_id,) = [i["id"] for i in coco["images"] if i["file_name"] == name]
    annotations = [
        {"category": categories[a["category_id"]], "bbox": a["bbox"], "segmentation": a["segmentation"]}
        for a in coco["annotations"]
        if a["image_id"] == image_id
    ]
    image = np.asarray(photo(name)).copy()
    return SourceSample(name, "0" * 64, image, labels=labels_from_annotations(annotations, *image.shape[:2]))


def label(sample: SourceSample, category: str) -> ObjectLabel:
    return next(lab for lab in sample.labels if lab.category == category)


def hole(sample: SourceSample, category: str) -> np.ndarray:
    return subject_removal.removal_hole(label(sample, category), subject_removal.Params())


def test_holes_among_several_surfaces_are_refused() -> None:
    """The spoon lies across the saucer, its rim and the cup; the camera between a face and a hand."""
    inpaint = ClassicalInpainter()
    coffee, camera = labelled("coffee.png"), labelled("camera.png")
    assert inpaint.can_fill(coffee.image, hole(coffee, "spoon")) == "structured_surroundings"
    assert inpaint.can_fill(camera.image, hole(camera, "camera")) == "structured_surroundings"
    assert inpaint.can_fill(coffee.image, hole(coffee, "cup")) == "hole_too_large"
    rocket = labelled("rocket.jpg")
    assert surroundings(rocket.image, hole(rocket, "rocket")).regions == 1  # the night sky around it
    assert inpaint.can_fill(rocket.image, hole(rocket, "rocket")) is None


def test_a_clean_fill_passes_and_bad_fills_are_caught() -> None:
    rocket = labelled("rocket.jpg")
    region, obj = hole(rocket, "rocket"), label(rocket, "rocket").mask
    energy = surroundings(rocket.image, region).energy
    clean = ClassicalInpainter()(rocket.image, region)
    assert measure_fill(rocket.image, clean, region, obj).problems(energy) == []

    ghost = clean.copy()  # the rocket left at a third of its contrast: what a weak fill leaves behind
    ghost[obj] = (clean[obj] * 0.66 + rocket.image[obj] * 0.34).astype(np.uint8)
    assert "foreign_pixels" in measure_fill(rocket.image, ghost, region, obj).problems(energy)

    patch = clean.copy()  # a flat grey patch: a colour nobody would take for the sky
    patch[region] = 128
    problems = measure_fill(rocket.image, patch, region, obj).problems(energy)
    assert "colour_patch" in problems and "visible_seam" in problems


def test_a_texture_hole_is_caught() -> None:
    """The lawn of the camera photo: a flat fill of its mean colour is a texture hole; shift-map is not."""
    camera = labelled("camera.png")
    region = np.zeros(camera.image.shape[:2], bool)
    region[420:470, 300:360] = True  # lawn, right of the tripod
    energy = surroundings(camera.image, region).energy
    assert energy >= 0.7
    flat = camera.image.copy()
    flat[region] = camera.image[region].mean(axis=0).astype(np.uint8)
    assert "texture_hole" in measure_fill(camera.image, flat, region, region).problems(energy)
    copied = ClassicalInpainter()(camera.image, region)
    assert "texture_hole" not in measure_fill(camera.image, copied, region, region).problems(energy)


def test_removal_keeps_the_rocket_and_says_why_it_drops_the_others() -> None:
    tools = Tools(inpaint=ClassicalInpainter())
    (pair,) = subject_removal.make_pairs(labelled("rocket.jpg"), subject_removal.Params(), tools, seed=0)
    assert pair.params["category"] == "rocket" and set(pair.params["fill"]) >= {"novel", "seam", "ghost"}
    coffee = subject_removal.make_pairs(labelled("coffee.png"), subject_removal.Params(), tools, seed=0)
    assert coffee.reason in ("hole_too_large", "structured_surroundings")
    assert "spoon" not in coffee.detail and "structured_surroundings: 1" in coffee.detail


@pytest.fixture(scope="module")
def offline_objects() -> OfflineObjects:
    return OfflineObjects()


def test_offline_objects_name_people_and_nothing_else(offline_objects: OfflineObjects) -> None:
    """Without labels: MediaPipe finds the astronaut (a person with one face), and nothing in the launch
    photo or the coffee cup photo, which therefore give no sample (`unnamed_region`)."""
    people, launch, coffee = (
        SourceSample(name, "0" * 64, np.asarray(photo(name)).copy())
        for name in ("astronaut.png", "rocket.jpg", "coffee.png")
    )
    offline_objects.annotate([people, launch, coffee])
    (person,) = people.labels
    assert person.category == "person" and person.source == "mediapipe_people"
    x0, y0, x1, y1 = person.bbox
    assert x0 < 200 < x1 and y0 < 150 < y1  # her face
    assert launch.labels == [] and coffee.labels == []
    tools = Tools(inpaint=ClassicalInpainter())
    assert subject_removal.make_pairs(launch, subject_removal.Params(), tools, 0).reason == "unnamed_region"
