"""Measurements that decide whether a person's two masks (one per frame) make a motion a person accepts.

All are taken from the frames, never from the instruction:
- the same person in both frames: the first frame's mask, moved by the median flow of its pixels or to where
  its pixels are found again in the second frame, must land on the second frame's mask (tracked), and the
  colours of the person's pixels must agree;
- present in both: the two masks are of a similar size (a person half out of the region, or gone, is not);
- one person: a mask as wide as it is tall is a group (people side by side merge into one mask);
- how far the body went, against the person's height: a pose motion (arm, head) is named only for a body
  that stayed in place; a walk only for a clear displacement, mostly sideways or mostly towards/away.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tasks.masks import bbox_of


@dataclass(frozen=True)
class Track:
    overlap: float  # IoU of the first mask, moved by its median flow or matched template, with the second
    colour: float  # Bhattacharyya distance of the person's colour histograms (0 same, 1 disjoint)
    size_ratio: float  # smaller mask area over larger
    shift: float  # mask centroid displacement, in person heights
    dx: float  # sideways displacement of the centroid, in person heights (+ right)
    feet_dy: float  # displacement of the feet (the mask's lowest row), in person heights (+ down)
    scale: float  # second mask's height over the first's
    breadth: float  # the wider mask's width over its height: a group of people is wider than one person

    def as_record(self) -> dict[str, float]:
        return {k: round(float(v), 3) for k, v in self.__dict__.items()}


def _histogram(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    # The mask's rim is often background: its inner part holds the person's own colours.
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8))
    if inner.sum() < 50:
        inner = mask.astype(np.uint8)
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], inner, [8, 4, 8], [0, 180, 0, 256, 0, 256])
    return cv2.normalize(hist, None, norm_type=cv2.NORM_L1).flatten()


def _moved_overlap(in_first: np.ndarray, in_second: np.ndarray, shift: np.ndarray | None) -> float:
    """IoU of the first mask moved by ``shift`` (x, y) with the second mask."""
    if shift is None:
        return 0.0
    height, width = in_first.shape
    moved = cv2.warpAffine(
        in_first.astype(np.uint8), np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]), (width, height)
    ).astype(bool)
    return float((moved & in_second).sum()) / max(float((moved | in_second).sum()), 1.0)


def _matched_shift(first: np.ndarray, second: np.ndarray, in_first: np.ndarray) -> np.ndarray | None:
    """Where the person's pixels of the first frame are found in the second (template matching within a
    person's height around them): flow loses a walker who went farther than their own width."""
    box = bbox_of(in_first)
    assert box is not None
    x0, y0, x1, y1 = box
    reach = y1 - y0
    height, width = in_first.shape
    sx0, sy0 = max(0, x0 - reach), max(0, y0 - reach)
    sx1, sy1 = min(width, x1 + reach), min(height, y1 + reach)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (first, second)]
    template = grey[0][y0:y1, x0:x1]
    if min(template.shape) < 8:
        return None
    scores = cv2.matchTemplate(
        grey[1][sy0:sy1, sx0:sx1], template, cv2.TM_CCORR_NORMED, mask=in_first[y0:y1, x0:x1].astype(np.uint8)
    )
    _, _, _, (bx, by) = cv2.minMaxLoc(np.nan_to_num(scores, nan=-1.0))
    return np.array([sx0 + bx - x0, sy0 + by - y0], np.float32)


def track(
    first: np.ndarray,
    second: np.ndarray,
    in_first: np.ndarray,
    in_second: np.ndarray,
    flow: np.ndarray,
) -> Track:
    """How the person's mask in the first frame relates to the one in the second (both non-empty)."""
    shifts = [np.median(flow[in_first], axis=0), _matched_shift(first, second, in_first)]
    overlap = max(_moved_overlap(in_first, in_second, shift) for shift in shifts)
    colour = float(
        cv2.compareHist(_histogram(first, in_first), _histogram(second, in_second), cv2.HISTCMP_BHATTACHARYYA)
    )
    areas = float(in_first.sum()), float(in_second.sum())
    box_first, box_second = bbox_of(in_first), bbox_of(in_second)
    assert box_first is not None and box_second is not None
    tall = float(max(box_first[3] - box_first[1], box_second[3] - box_second[1], 1))
    centroids = [np.argwhere(m).mean(axis=0)[::-1] for m in (in_first, in_second)]  # (x, y)
    step = centroids[1] - centroids[0]
    return Track(
        overlap=overlap,
        colour=colour,
        size_ratio=min(areas) / max(max(areas), 1.0),
        shift=float(np.hypot(*step)) / tall,
        dx=float(step[0]) / tall,
        feet_dy=float(box_second[3] - box_first[3]) / tall,
        scale=(box_second[3] - box_second[1]) / max(box_first[3] - box_first[1], 1),
        breadth=max((b[2] - b[0]) / max(b[3] - b[1], 1) for b in (box_first, box_second)),
    )


def walk(moved: Track, min_sideways: float, min_scale: float) -> list[str]:
    """The one walk the body's displacement shows clearly: sideways by ``min_sideways`` heights with the feet
    staying at about the same depth, or towards/away (the body grew/shrank by ``min_scale`` and the feet went
    down/up) with little sideways motion. A mixed or small displacement names nothing."""
    sideways, depth = abs(moved.dx), abs(moved.feet_dy)
    if sideways >= min_sideways and sideways >= 1.5 * depth and abs(np.log(moved.scale)) < np.log(min_scale):
        return ["walk_right" if moved.dx > 0 else "walk_left"]
    if sideways <= 0.5 * depth:
        if moved.scale >= min_scale and moved.feet_dy > 0:
            return ["walk_towards_camera"]
        if moved.scale <= 1 / min_scale and moved.feet_dy < 0:
            return ["walk_away"]
    return []
