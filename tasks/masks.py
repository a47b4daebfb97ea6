"""Mask geometry shared by the local-edit tasks: area, border contact, dilation, boxes."""

from __future__ import annotations

import cv2
import numpy as np


def bbox_of(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight box (x0, y0, x1, y1), x1/y1 exclusive, or None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def border_cut_fraction(mask: np.ndarray) -> float:
    """How much of the object lies against the image border, as the largest over the four sides of
    (mask pixels on that border line) / (the object's extent along that side).

    An object whose silhouette runs along the frame edge is cut by it (its removal would leave a
    half-object the inpainter must invent); a spoon tip grazing the edge is not.
    """
    box = bbox_of(mask)
    if box is None:
        return 0.0
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    sides = (
        mask[0, :].sum() / width,
        mask[-1, :].sum() / width,
        mask[:, 0].sum() / height,
        mask[:, -1].sum() / height,
    )
    return float(max(sides))


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a bool mask by ``radius`` pixels with an elliptical kernel (covers halos and shadows' edges)."""
    if radius <= 0:
        return mask.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0
