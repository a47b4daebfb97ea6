"""The heuristic judge (heuristic-v6) on edits whose contrast the edit itself changes: a small bright coin
made wood as dark as the cloth, a smooth material on a grainy photo, and a style drawn over a soft photo.

Real photos from examples/photos and skimage's samples; none is in the labelled sets of bench/labels/.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import PHOTOS
from lab_colour import to_lab, to_rgb
from skimage import data as skdata

from annotators.judge.appearance import SOFT_EDGE_SHARE, _edges
from annotators.judge.heuristic import HeuristicJudge

judge = HeuristicJudge()
COIN_WOOD = {"en": "Make the coin out of wood.", "zh": "把硬币变成木头材质的。"}
TO_CARTOON = {"en": "Turn this photo into a cartoon.", "zh": "把这张照片变成卡通风格。"}


@pytest.fixture(scope="module")
def coin() -> tuple[np.ndarray, np.ndarray]:
    """skimage's coins photo and one coin, segmented (Otsu, then the component nearest the middle): a small,
    bright object on a dark cloth, with its exact outline."""
    grey = skdata.coins()
    _, bright = cv2.threshold(cv2.GaussianBlur(grey, (0, 0), 1.5), 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = cv2.morphologyEx(bright, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    count, labels, stats, centres = cv2.connectedComponentsWithStats(bright)
    h, w = grey.shape
    coins = [i for i in range(1, count) if 0.004 < stats[i, cv2.CC_STAT_AREA] / (h * w) < 0.03]
    middle = min(coins, key=lambda i: float(np.hypot(*(centres[i] - (w / 2, h / 2)))))
    mask = cv2.morphologyEx((labels == middle).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB), mask > 0


def _dark_wood(source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The object in a brown wood (the grain of skimage's grass photo), its shading kept, as light as the
    cloth around it: its outline is one of colour, with next to no grey contrast left."""
    h, w = source.shape[:2]
    grain = cv2.resize(skdata.grass(), (w, h)).astype(np.float32)
    lab = to_lab(source)
    shading = lab[..., 0] - np.median(lab[..., 0][mask])
    out = lab.copy()
    ring = (cv2.dilate(mask.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0) & ~mask
    cloth = float(np.median(lab[..., 0][ring]))
    out[..., 0][mask] = np.clip(cloth + 0.2 * shading[mask] + 0.1 * (grain[mask] - grain.mean()), 0, 100)
    out[..., 1][mask], out[..., 2][mask] = 14.0, 26.0
    return to_rgb(out)


def test_a_dark_material_on_a_small_object_keeps_its_outline(coin: tuple[np.ndarray, np.ndarray]) -> None:
    source, mask = coin
    assert mask.mean() < 0.03  # a small object: its outline band holds few pixels
    target = _dark_wood(source, mask)
    good = judge.judge(source, target, COIN_WOOD)
    assert good.details["intent"] == "material" and good.details["outline_kept"] > 0.7, good.details
    assert good.o > 7, good.details
    # The same edit with its outline smeared over the cloth around the coin.
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((17, 17), np.uint8)) > 0
    ring &= ~(cv2.erode(mask.astype(np.uint8), np.ones((17, 17), np.uint8)) > 0)
    smeared = target.copy()
    smeared[ring] = cv2.GaussianBlur(target, (0, 0), 8)[ring]
    bad = judge.judge(source, smeared, COIN_WOOD)
    assert bad.details["outline_kept"] < good.details["outline_kept"] - 0.2, bad.details
    assert bad.o < good.o - 2, (good.o, bad.o)


def test_a_smooth_material_on_a_grainy_photo_is_not_a_blur() -> None:
    """skimage's coffee photo with film grain; the cup made a smooth glazed ceramic (its shading, no grain)
    inside an ellipse that stands for its outline."""
    source = skdata.coffee()
    grain = np.random.default_rng(3).normal(0, 12, source.shape[:2])[..., None]
    source = np.clip(source + grain, 0, 255).astype(np.uint8)
    h, w = source.shape[:2]
    cup = np.zeros((h, w), np.uint8)
    cv2.ellipse(cup, (w // 2 - 20, h // 2 + 10), (int(0.42 * w), int(0.45 * h)), 0, 0, 360, 1, -1)
    cup = cup > 0
    lab = to_lab(source)
    smooth = cv2.GaussianBlur(lab, (0, 0), 6)
    out = lab.copy()
    out[cup] = smooth[cup]
    out[..., 1][cup], out[..., 2][cup] = 4.0, 14.0  # a cream glaze
    target = to_rgb(out)
    instruction = {"en": "Make the cup out of ceramic.", "zh": "把杯子变成陶瓷材质的。"}
    good = judge.judge(source, target, instruction)
    assert good.details["intent"] == "material" and good.details["sharpness_ratio"] > 0.8, good.details
    assert good.details["no_artifacts"] > 9
    # A target blurred all over is still flawed: the blur shows on what the edit should have kept.
    blurred = judge.judge(source, cv2.GaussianBlur(target, (0, 0), 4), instruction)
    assert blurred.details["no_artifacts"] < 3, blurred.details


def test_a_style_on_a_soft_photo_is_judged_on_the_scenes_own_edges() -> None:
    """chelsea.png made soft (out of focus) has almost no edges at the fixed thresholds: a cartoon of it with
    dark outlines keeps the scene, and a washed-out target does not."""
    source = cv2.cvtColor(cv2.imread(str(PHOTOS / "chelsea.png")), cv2.COLOR_BGR2RGB)
    soft = cv2.GaussianBlur(source, (0, 0), 5)
    grey = cv2.cvtColor(soft, cv2.COLOR_RGB2GRAY).astype(np.float32)
    assert _edges(grey).mean() < SOFT_EDGE_SHARE
    # A cartoon: colours flattened (mean shift), outlines drawn from the soft picture's own edges.
    flat = cv2.pyrMeanShiftFiltering(soft, 12, 24)
    flat = (flat // 40 * 40 + 20).astype(np.uint8)
    lines = cv2.Canny(cv2.cvtColor(soft, cv2.COLOR_RGB2GRAY), 10, 30) > 0
    cartoon = flat.copy()
    cartoon[cv2.dilate(lines.astype(np.uint8), np.ones((2, 2), np.uint8)) > 0] = 20
    good = judge.judge(soft, cartoon, TO_CARTOON)
    assert good.details["intent"] == "style" and good.details["edge_f1"] > 0.3, good.details
    assert good.sc > 6, good.details
    washed = np.clip(0.25 * cv2.GaussianBlur(cartoon, (0, 0), 12) + 170, 0, 255).astype(np.uint8)
    bad = judge.judge(soft, washed, TO_CARTOON)
    assert bad.details["edge_f1"] < 0.15 and bad.o < 3, bad.details
