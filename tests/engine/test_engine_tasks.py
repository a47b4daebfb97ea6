"""The two offline tasks on real photos: each edit does what its instruction says."""

from __future__ import annotations

import numpy as np
import pytest
from engine_inputs import photo

from annotators.inpaint import ClassicalInpainter
from tasks import subject_removal, tone_operations, tone_transformation
from tasks.records import Candidate, ObjectLabel, Skip, SourceSample
from tasks.tools import Tools
from tasks.vocabulary import COCO_OBJECTS, object_names, position_phrase


def source(name: str = "coffee.png") -> SourceSample:
    return SourceSample(uri=name, sha256="0" * 64, image=np.asarray(photo(name)).copy())


def lum(image: np.ndarray) -> float:
    return float(tone_operations.luminance(image.astype(np.float32) / 255).mean())


def test_vocabulary_covers_the_80_coco_categories_in_both_languages() -> None:
    assert len(COCO_OBJECTS) == 80
    assert len(set(COCO_OBJECTS.values())) == 80
    for name, zh in COCO_OBJECTS.items():
        assert zh and not zh.isascii(), name
    assert object_names("Dining Table") == {"en": "dining table", "zh": "餐桌"}
    assert position_phrase((0, 0, 10, 10), 300, 300) == {"en": "at the top left", "zh": "左上角"}
    assert position_phrase((140, 140, 160, 160), 300, 300)["en"] == "in the middle"


@pytest.fixture(scope="module")
def tone_pairs() -> dict[str, Candidate]:
    """Every operation on the astronaut; the studio portrait is no outdoor scene, so the scene check is off
    here (tests/engine/test_tone_quality.py checks it)."""
    params = tone_transformation.Params(per_image=len(tone_transformation.OPERATIONS), scene_check=False)
    pairs = tone_transformation.make_pairs(source("astronaut.png"), params, Tools(), seed=3)
    return {pair.variant: pair for pair in pairs}


def test_tone_yields_every_operation_with_its_inverse(tone_pairs: dict[str, Candidate]) -> None:
    operations = {variant.split(":")[0] for variant in tone_pairs}
    assert operations == set(tone_transformation.OPERATIONS) and len(operations) >= 6
    for variant, pair in tone_pairs.items():
        if variant.endswith(":inverse"):
            forward = tone_pairs[variant.removesuffix(":inverse")]
            assert np.array_equal(pair.source, forward.target) and np.array_equal(pair.target, forward.source)
            assert pair.instruction != forward.instruction
        assert pair.source.shape == pair.target.shape
        assert np.abs(pair.source.astype(int) - pair.target.astype(int)).mean() > 2, variant


def forward(pairs: dict[str, Candidate], operation: str) -> Candidate:
    return next(p for v, p in pairs.items() if v.startswith(operation + ":") and not v.endswith(":inverse"))


def test_tone_edits_move_the_image_the_way_the_instruction_says(tone_pairs: dict[str, Candidate]) -> None:
    exposure = forward(tone_pairs, "exposure")
    brighter = lum(exposure.target) > lum(exposure.source)
    assert brighter == (exposure.params["strength"] > 0)
    assert ("Increase" in exposure.instruction["en"] or "Brighten" in exposure.instruction["en"]) == brighter

    balance = forward(tone_pairs, "white_balance")

    def red_blue(image: np.ndarray) -> float:
        return float(image[..., 0].mean() / image[..., 2].mean())

    warmer = red_blue(balance.target) > red_blue(balance.source)
    assert warmer == (balance.params["strength"] > 0) and ("warm" in balance.instruction["en"]) == warmer

    night = forward(tone_pairs, "night")
    assert lum(night.target) < 0.5 * lum(night.source)
    assert red_blue(night.target) < 0.9 * red_blue(night.source)  # a blue cast

    haze = forward(tone_pairs, "haze")
    assert haze.target.std() < haze.source.std()  # scattering lowers contrast
    for weather in ("rain", "snow"):
        pair = forward(tone_pairs, weather)
        assert (pair.target.astype(int) - pair.source.astype(int)).max() > 60  # bright streaks or flakes
        assert weather in pair.instruction["en"].lower()


def test_tone_skips_flat_images() -> None:
    flat = SourceSample(uri="grey", sha256="1" * 64, image=np.full((128, 128, 3), 90, np.uint8))
    result = tone_transformation.make_pairs(flat, tone_transformation.Params(), Tools(), seed=0)
    assert isinstance(result, Skip) and result.reason == "flat_image"


def rectangle(x0: int, y0: int, x1: int, y1: int, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_removal_fills_the_object_and_leaves_the_rest() -> None:
    sample = source("rocket.jpg")
    mask = rectangle(305, 127, 337, 411, (427, 640))
    sample.labels = [ObjectLabel("rocket", (305, 127, 337, 411), mask)]
    (pair,) = subject_removal.make_pairs(
        sample, subject_removal.Params(), Tools(inpaint=ClassicalInpainter()), seed=0
    )
    assert np.array_equal(pair.source[~pair.mask], pair.target[~pair.mask])
    assert pair.mask[mask].all() and pair.mask.sum() > mask.sum()  # dilated past the object
    # The bright rocket body is replaced by the dark sky around it (above the glow of the launch pad).
    rows = slice(150, 350)
    body = pair.target[rows, 312:334].mean()
    sky = np.concatenate([pair.source[rows, 285:298], pair.source[rows, 348:360]], axis=1).mean()
    assert pair.source[rows, 312:334].mean() > sky + 40
    assert abs(body - sky) < 12
    assert "rocket" in pair.instruction["en"] and "火箭" in pair.instruction["zh"]


def test_removal_rejects_objects_it_cannot_remove_cleanly() -> None:
    tools = Tools(inpaint=ClassicalInpainter())
    shape = (400, 600)
    cases = {
        "mask_too_small": rectangle(300, 200, 306, 206, shape),
        "mask_too_large": rectangle(20, 20, 580, 380, shape),
        "mask_cut_by_border": rectangle(0, 100, 120, 300, shape),
    }
    for reason, mask in cases.items():
        sample = source()
        sample.labels = [ObjectLabel("cup", (0, 0, 1, 1), mask)]
        result = subject_removal.make_pairs(sample, subject_removal.Params(), tools, seed=0)
        assert isinstance(result, Skip) and result.reason == reason, reason
    unlabelled = subject_removal.make_pairs(source(), subject_removal.Params(), tools, 0)
    assert unlabelled.reason == "unnamed_region"


def test_addition_is_the_removal_pair_reversed() -> None:
    from tasks import subject_addition

    sample = source("rocket.jpg")
    mask = rectangle(305, 127, 337, 411, (427, 640))
    sample.labels = [ObjectLabel("rocket", (305, 127, 337, 411), mask)]
    tools = Tools(inpaint=ClassicalInpainter())
    (removal,) = subject_removal.make_pairs(sample, subject_removal.Params(), tools, seed=4)
    (addition,) = subject_addition.make_pairs(sample, subject_addition.Params(), tools, seed=4)
    assert np.array_equal(addition.target, sample.image)  # the real photo is the target
    assert np.array_equal(addition.source, removal.target)
    assert addition.instruction["en"].startswith(
        ("Add a rocket", "Put a rocket", "Place a rocket", "Insert a rocket")
    )
    zh = addition.instruction["zh"]
    assert "火箭" in zh and ("加" in zh or "放" in zh)
    assert addition.variant == "add:" + removal.variant


def test_pointwise_operations_as_lookup_tables_equal_the_per_pixel_math() -> None:
    import cv2

    image = np.asarray(photo("coffee.png"))
    levels = np.repeat(np.linspace(0.0, 1.0, 256, dtype=np.float32)[:, None, None], 3, axis=2)
    pointwise = [op for op in tone_transformation.OPERATIONS.values() if op.pointwise]
    assert {op.name for op in pointwise} == {"exposure", "white_balance"}
    for op in pointwise:
        for strength in (-0.9, 0.7):
            rng = np.random.default_rng(0)
            per_pixel = tone_operations.to_uint8(op.apply(image.astype(np.float32) / 255, strength, rng))
            table = tone_operations.to_uint8(op.apply(levels, strength, rng))
            assert np.array_equal(cv2.LUT(image, table), per_pixel), (op.name, strength)
