"""The offline heuristic judge on the real example photos, edited in known good and known bad ways."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from annotators.judge.heuristic import (
    HeuristicJudge,
    NearDuplicateIndex,
    Signature,
    measure,
    psnr,
    ssim_maps,
)

judge = HeuristicJudge()


def _warm(img: np.ndarray) -> np.ndarray:
    return np.clip(img.astype(np.float32) * [1.08, 1.0, 0.88], 0, 255).astype(np.uint8)


def _box_mask(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4 : h // 2, w // 4 : w // 2] = 255
    return mask


def _inpaint(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return cv2.inpaint(img, mask, 5, cv2.INPAINT_TELEA)


def _jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def test_ssim_and_psnr_basics(photos: dict[str, np.ndarray]) -> None:
    grey = cv2.cvtColor(photos["camera.png"], cv2.COLOR_RGB2GRAY).astype(np.float64)
    ssim, structure = ssim_maps(grey, grey)
    assert np.allclose(ssim, 1.0) and np.allclose(structure, 1.0)
    rng = np.random.default_rng(0)
    light = np.clip(grey + rng.normal(0, 5, grey.shape), 0, 255)
    heavy = np.clip(grey + rng.normal(0, 25, grey.shape), 0, 255)
    assert 1.0 > ssim_maps(grey, light)[0].mean() > ssim_maps(grey, heavy)[0].mean()
    # A contrast change keeps the local structure but not SSIM's luminance/contrast terms.
    flat = grey * 0.5 + 64
    assert ssim_maps(grey, flat)[1].mean() > 0.99 > ssim_maps(grey, flat)[0].mean()
    a = np.full((4, 4, 3), 100, np.uint8)
    assert psnr(a, a + 10) == pytest.approx(20 * np.log10(255 / 10))
    assert psnr(a, a) == 100.0


@pytest.mark.parametrize("name", ["astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg"])
def test_good_and_bad_edits_are_told_apart(photos: dict[str, np.ndarray], name: str) -> None:
    src = photos[name]
    mask = _box_mask(src)
    good_global = judge.judge(src, _warm(src), None)
    good_local = judge.judge(src, _inpaint(src, mask), mask)
    assert good_global.o > 6 and good_local.o > 6

    unchanged = judge.judge(src, src, None)
    assert unchanged.details["edit_success"] == 0 and unchanged.sc == 0  # nothing was edited
    blank = judge.judge(src, np.full_like(src, 128), None)
    assert blank.pq == 0  # a flat output is degenerate
    blurred = judge.judge(src, cv2.GaussianBlur(src, (0, 0), 6), None)
    assert blurred.pq < 2 and blurred.details["sharpness_ratio"] < 0.1
    burnt = judge.judge(src, np.clip(src.astype(np.float32) * 3, 0, 255).astype(np.uint8), None)
    assert burnt.pq < 2 and burnt.details["clipped_excess"] > 0.2
    # A local edit that also blurred everything outside its mask: the rest was not preserved.
    leaked = judge.judge(src, cv2.GaussianBlur(_inpaint(src, mask), (0, 0), 4), mask)
    assert leaked.details["psnr_outside"] < 30 and leaked.sc < good_local.sc
    assert max(unchanged.o, blank.o, blurred.o, burnt.o, leaked.o) < min(good_global.o, good_local.o)


def test_measurements_follow_the_mask(photos: dict[str, np.ndarray]) -> None:
    src = photos["coffee.png"]
    mask = _box_mask(src)
    m = measure(src, _inpaint(src, mask), mask)
    assert m["psnr_outside"] == 100.0 and m["ssim_outside"] == pytest.approx(1.0)
    assert m["changed_frac"] > 0.3
    with pytest.raises(ValueError, match="differ in size"):
        measure(src, src[:-1], None)


def test_near_duplicates_are_the_same_edit_of_the_same_photo(photos: dict[str, np.ndarray]) -> None:
    src = photos["chelsea.png"]
    copy = _jpeg_roundtrip(src, 80)  # the same photo, re-encoded: a duplicate source
    mask_a = _box_mask(src)
    mask_b = np.roll(mask_a, (src.shape[0] // 3, src.shape[1] // 3), axis=(0, 1))
    index = NearDuplicateIndex()
    assert index.add("warm", Signature.of(src, _warm(src))) is None
    assert index.add("dark", Signature.of(src, (src * 0.55).astype(np.uint8))) is None
    assert index.add("remove_a", Signature.of(src, _inpaint(src, mask_a))) is None
    assert index.add("remove_b", Signature.of(src, _inpaint(src, mask_b))) is None  # another region
    assert index.add("other_photo", Signature.of(photos["coffee.png"], _warm(photos["coffee.png"]))) is None
    assert index.add("warm_copy", Signature.of(copy, _warm(copy))) == "warm"
    assert index.add("remove_a_copy", Signature.of(copy, _inpaint(copy, mask_a))) == "remove_a"
