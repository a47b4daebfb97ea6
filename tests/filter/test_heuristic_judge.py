"""The offline heuristic judge on the real example photos, edited in known good and known bad ways, judged
from (source, target, instruction) alone."""

from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest
from conftest import PHOTOS
from PIL import Image

from annotators.inpaint import ClassicalInpainter
from annotators.judge.heuristic import HeuristicJudge, NearDuplicateIndex, Signature, measure, psnr, ssim_maps
from annotators.judge.intent import read_instruction
from pipelines.load import labels_from_annotations
from tasks import subject_removal
from tasks.tone_transformation import OPERATIONS

judge = HeuristicJudge()
WARMER = {"en": "Make the colour temperature warmer.", "zh": "把色温调暖。"}
COOLER = {"en": "Make the colour temperature cooler.", "zh": "把色温调冷。"}
DARKER = {"en": "Make the photo darker.", "zh": "把照片调暗一些。"}
REMOVE_ROCKET = {"en": "Remove the rocket.", "zh": "移除火箭。"}


def _warm(img: np.ndarray) -> np.ndarray:
    return np.clip(img.astype(np.float32) * [1.12, 1.0, 0.82], 0, 255).astype(np.uint8)


def _jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


@pytest.fixture(scope="module")
def rocket_removal() -> tuple[np.ndarray, np.ndarray]:
    """The launch photo and its removal pair, made by the offline task from the hand-drawn label."""
    coco = json.loads((PHOTOS / "labels.coco.json").read_text())
    (image,) = [i for i in coco["images"] if i["file_name"] == "rocket.jpg"]
    annotations = [{"category": "rocket", **a} for a in coco["annotations"] if a["image_id"] == image["id"]]
    source = np.asarray(Image.open(PHOTOS / "rocket.jpg").convert("RGB"))
    label = labels_from_annotations(annotations, *source.shape[:2])[0]
    hole = subject_removal.removal_hole(label, subject_removal.Params())
    return source, ClassicalInpainter()(source, hole)


def test_instructions_are_read_in_both_languages() -> None:
    for operation in OPERATIONS.values():
        for options in operation.phrases.values():
            for en, zh in options:
                intent = read_instruction({"en": en, "zh": zh})
                assert intent.kind == "tone" and intent.consistent, (en, zh, intent)
    lighter = {"en": "Delete the lighter at the bottom.", "zh": "把下方的打火机删掉。"}
    assert read_instruction(lighter).kind == "remove"  # a lighter, not "lighter"
    beach = {"en": "Replace the background with a beach.", "zh": "把背景换成海滩。"}
    assert read_instruction(beach).kind == "background"
    night = {"en": "Make it look like it was taken at night.", "zh": "让照片看起来像是在夜里拍的。"}
    assert read_instruction(night).tone == {"time": "night"}
    broken = read_instruction({"en": "Remove the cup.", "zh": "把照片调亮一些。"})
    assert not broken.consistent


def test_ssim_and_psnr_basics(photos: dict[str, np.ndarray]) -> None:
    grey = cv2.cvtColor(photos["camera.png"], cv2.COLOR_RGB2GRAY).astype(np.float32)
    ssim, structure = ssim_maps(grey, grey)
    assert np.allclose(ssim, 1.0, atol=1e-4) and np.allclose(structure, 1.0, atol=1e-4)
    flat = grey * 0.5 + 64  # a contrast change keeps the local structure but not SSIM's other terms
    assert ssim_maps(grey, flat)[1].mean() > 0.99 > ssim_maps(grey, flat)[0].mean()
    a = np.full((4, 4, 3), 100, np.uint8)
    assert psnr(a, a + 10) == pytest.approx(20 * np.log10(255 / 10))
    assert psnr(a, a) == 100.0
    with pytest.raises(ValueError, match="differ in size"):
        measure(photos["camera.png"], photos["camera.png"][:-1])


@pytest.mark.parametrize("name", ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"])
def test_a_global_edit_is_judged_against_what_was_asked(photos: dict[str, np.ndarray], name: str) -> None:
    src = photos[name]
    warm, dark = _warm(src), (src * 0.6).astype(np.uint8)
    good = [judge.judge(src, warm, WARMER), judge.judge(src, dark, DARKER)]
    assert min(r.o for r in good) > 6.5
    wrong_way = judge.judge(src, warm, COOLER)
    assert wrong_way.sc < 2 and wrong_way.details["edit_success"] == 0
    unchanged = judge.judge(src, src, WARMER)
    assert unchanged.sc == 0
    blurred = judge.judge(src, cv2.GaussianBlur(warm, (0, 0), 5), WARMER)
    assert blurred.pq < 3 and blurred.details["sharpness_ratio"] < 0.1
    noise = np.random.default_rng(0).normal(0, 18, src.shape)
    noisy = judge.judge(src, np.clip(warm + noise, 0, 255).astype(np.uint8), WARMER)
    assert noisy.pq < 3 and noisy.details["noise_ratio"] > 4
    blank = judge.judge(src, np.full_like(src, 128), DARKER)
    assert blank.pq == 0
    assert max(wrong_way.o, unchanged.o, blurred.o, noisy.o, blank.o) < min(r.o for r in good) - 3


def test_a_removal_is_judged_as_a_removal(
    photos: dict[str, np.ndarray], rocket_removal: tuple[np.ndarray, np.ndarray]
) -> None:
    source, target = rocket_removal
    good = judge.judge(source, target, REMOVE_ROCKET)
    assert good.details["intent"] == "remove" and good.o > 7
    assert good.details["psnr_outside"] > 40  # only the rocket's region changed
    # The same pixels under another category's instruction, or with an instruction whose languages disagree.
    assert judge.judge(source, target, DARKER).sc < 2
    assert judge.judge(source, target, {"en": "Remove the rocket.", "zh": "把照片调暗一些。"}).sc <= 2
    # Reversed, the pair is an addition of the rocket, not a removal.
    assert judge.judge(target, source, REMOVE_ROCKET).sc < 2
    assert judge.judge(target, source, {"en": "Add a rocket.", "zh": "添加一个火箭。"}).o > 7
    # A removal that left the rocket's ghost, and one that also changed everything else.
    ghost = (target * 0.7 + source * 0.3).astype(np.uint8)
    assert judge.judge(source, ghost, REMOVE_ROCKET).o < good.o - 3
    other = cv2.resize(photos["coffee.png"], (source.shape[1], source.shape[0]))
    unrelated = judge.judge(source, other, REMOVE_ROCKET)
    assert unrelated.sc < 2


def test_weather_needs_an_outdoor_scene(photos: dict[str, np.ndarray]) -> None:
    rain = OPERATIONS["rain"]
    instruction = {"en": "Add falling rain.", "zh": "加上下雨的效果。"}
    rng = np.random.default_rng(0)

    def rained(image: np.ndarray) -> np.ndarray:
        return (rain.apply(image.astype(np.float32) / 255, 0.9, rng) * 255).astype(np.uint8)

    street, cup = photos["camera.png"], photos["coffee.png"]  # a lawn under a sky; a cup close-up
    assert judge.judge(street, rained(street), instruction).o > 6
    assert judge.judge(cup, rained(cup), instruction).sc <= 2


def test_near_duplicates_are_the_same_edit_of_the_same_photo(photos: dict[str, np.ndarray]) -> None:
    src = photos["chelsea.png"]
    copy = _jpeg_roundtrip(src, 80)  # the same photo, re-encoded: a duplicate source
    mask_a = np.zeros(src.shape[:2], np.uint8)
    mask_a[src.shape[0] // 4 : src.shape[0] // 2, src.shape[1] // 4 : src.shape[1] // 2] = 255
    mask_b = np.roll(mask_a, (src.shape[0] // 3, src.shape[1] // 3), axis=(0, 1))

    def inpaint(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return cv2.inpaint(img, mask, 5, cv2.INPAINT_TELEA)

    index = NearDuplicateIndex()
    assert index.add("warm", Signature.of(src, _warm(src))) is None
    assert index.add("dark", Signature.of(src, (src * 0.55).astype(np.uint8))) is None
    assert index.add("remove_a", Signature.of(src, inpaint(src, mask_a))) is None
    assert index.add("remove_b", Signature.of(src, inpaint(src, mask_b))) is None  # another region
    assert index.add("other_photo", Signature.of(photos["coffee.png"], _warm(photos["coffee.png"]))) is None
    assert index.add("warm_copy", Signature.of(copy, _warm(copy))) == "warm"
    assert index.add("remove_a_copy", Signature.of(copy, inpaint(copy, mask_a))) == "remove_a"
