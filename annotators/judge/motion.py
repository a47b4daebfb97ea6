"""What the judge reads in a motion pair: the person in the changed region, followed from source to target.

A motion pair changes one region: where a person was and where they are. The judge finds the person there
in both pictures (MediaPipe's person segmenter, annotators/mediapipe_models.py, on a crop around the region:
it looks at a 256x256 view, so small walkers are segmented on a crop, not on the frame) and measures how the
two masks relate with the same tracking the motion task's gates use (tasks/motion_gates.py): the first mask
moved by its flow or matched template must land on the second, the person's colours must agree, the masks
must be of a similar size (a person who vanished or appeared is not a motion), and how far and which way the
body went. Everything is measured on the two pictures; nothing comes from the task.
"""

from __future__ import annotations

import functools
import re
import threading

import cv2
import numpy as np

from tasks import motion_gates

# Walks the instruction may name (English, Chinese), each with how it shows: (dx sign, depth sign) where
# depth +1 is towards the camera (the body grows, the feet go down).
_WALKS: list[tuple[str, str, tuple[int, int]]] = [
    ("left", r"\b(walk|move|step)\b[^.]*\bleft\b|向左(走|移动)", (-1, 0)),
    ("right", r"\b(walk|move|step)\b[^.]*\bright\b|向右(走|移动)", (1, 0)),
    ("towards", r"\btowards? the camera\b|朝镜头|走过来", (0, 1)),
    ("away", r"\baway from the camera\b|走远|离开镜头", (0, -1)),
]


def walks_named(text: str) -> tuple[str, ...]:
    """The walks an instruction names (a text in either language, lower case)."""
    return tuple(name for name, pattern, _ in _WALKS if re.search(pattern, text))


LARGE_PERSON = 0.03  # of the picture: a person this large is segmented on the whole picture


# The filter judges in threads, and a MediaPipe task is not thread-safe: one segmenter, one call at a time.
_SEGMENTING = threading.Lock()


@functools.cache
def _segmenter():  # noqa: ANN202 - a MediaPipe task, made once per process (its model loads in ~50 ms)
    from annotators.mediapipe_models import PersonSegmenter, close_before_exit

    segmenter = PersonSegmenter()
    close_before_exit(segmenter)
    return segmenter


def _segment(image: np.ndarray) -> np.ndarray:
    with _SEGMENTING:
        return _segmenter()(image)


def _crop(region: np.ndarray, grow: float = 1.6) -> tuple[int, int, int, int]:
    """A square around the region's box, `grow` times its longer side, inside the picture."""
    ys, xs = np.nonzero(region)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    side = grow * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    height, width = region.shape
    return (
        max(0, round(cx - side / 2)),
        max(0, round(cy - side / 2)),
        min(width, round(cx + side / 2)),
        min(height, round(cy + side / 2)),
    )


def _person(image: np.ndarray, crop: tuple[int, int, int, int], region: np.ndarray) -> np.ndarray:
    """The person mask in the crop that overlaps the changed region most (others there did not move)."""
    x0, y0, x1, y1 = crop
    mask = np.zeros(image.shape[:2], bool)
    mask[y0:y1, x0:x1] = _segment(np.ascontiguousarray(image[y0:y1, x0:x1])) > 0.5
    return _owner(mask, region)


def _owner(mask: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The connected part of a person mask that overlaps the changed region most."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask
    overlap = np.bincount(labels[region], minlength=count)[1:]
    overlap = np.where(stats[1:, cv2.CC_STAT_AREA] >= 0.1 * stats[1:, cv2.CC_STAT_AREA].max(), overlap, 0)
    return labels == 1 + int(np.argmax(overlap))


def _colour_tracked(source: np.ndarray, target: np.ndarray, first: np.ndarray, second: np.ndarray) -> float:
    """IoU of the first mask, moved to where the person's own colours fit the target best (the least
    squared difference over the mask, searched within a body height), with the second mask."""
    ys, xs = np.nonzero(first)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    reach = y1 - y0
    height, width = first.shape
    sx0, sy0 = max(0, x0 - reach), max(0, y0 - reach)
    sx1, sy1 = min(width, x1 + reach), min(height, y1 + reach)
    template = np.ascontiguousarray(source[y0:y1, x0:x1]).astype(np.float32)
    if min(template.shape[:2]) < 8:
        return 0.0
    window = np.ascontiguousarray(target[sy0:sy1, sx0:sx1]).astype(np.float32)
    mask = np.repeat(first[y0:y1, x0:x1, None], 3, axis=2).astype(np.float32)
    misfit = cv2.matchTemplate(window, template, cv2.TM_SQDIFF, mask=mask)
    _, _, (bx, by), _ = cv2.minMaxLoc(np.nan_to_num(misfit, nan=np.inf))
    moved = np.zeros_like(first)
    dx, dy = sx0 + bx - x0, sy0 + by - y0
    moved[y0 + dy : y1 + dy, x0 + dx : x1 + dx] = first[y0:y1, x0:x1]
    return float((moved & second).sum()) / max(float((moved | second).sum()), 1.0)


def motion_measures(source: np.ndarray, target: np.ndarray, region: np.ndarray) -> dict[str, float]:
    """The person followed from source to target inside the changed region (see the module docstring);
    `person_found` 0 where either picture has nobody there."""
    area = float(region.sum())
    # A person who fills a good part of the picture (a portrait whose arm moved) is segmented on the whole
    # picture, as a crop round the arm would show the model only a fragment of them; smaller ones on a crop.
    height, width = region.shape
    crop = (0, 0, width, height)
    first, second = (_owner(_segment(image) > 0.5, region) for image in (source, target))
    large = min(first.sum(), second.sum()) >= LARGE_PERSON * region.size
    if not (large and float((region & (first | second)).sum()) >= 0.5 * area):
        crop = _crop(region)
        first, second = _person(source, crop, region), _person(target, crop, region)
    if first.sum() < 0.05 * area or second.sum() < 0.05 * area:
        # Nobody in one of the pictures: someone appeared or vanished (the smaller side tells which).
        return {"person_found": 0.0, "size_ratio": float(min(first.sum(), second.sum()) / max(area, 1.0))}
    x0, y0, x1, y1 = crop
    grey = [cv2.cvtColor(np.ascontiguousarray(i[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY) for i in (source, target)]

    def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        field = np.zeros((*region.shape, 2), np.float32)
        field[y0:y1, x0:x1] = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        return field

    moved = motion_gates.track(source, target, first, second, flow(grey[0], grey[1]))
    # Followed backwards too, and by the person's colours (the gates' tracker correlates grey levels, which
    # a walker on an even road can match anywhere on the road).
    overlap = max(
        moved.overlap,
        motion_gates.track(target, source, second, first, flow(grey[1], grey[0])).overlap,
        _colour_tracked(source, target, first, second),
    )
    close_up = bool(first[-3:].any() or second[-3:].any())
    return {
        "person_found": 1.0,
        **{k: float(v) for k, v in moved.__dict__.items()},
        "overlap": overlap,
        "close_up": float(close_up),
        "cut_by_side": float(not close_up and bool(first[:, [0, -1]].any() or second[:, [0, -1]].any())),
        "person_cover": float((region & (first | second)).sum()) / max(area, 1.0),
    }
