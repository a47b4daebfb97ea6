"""The `grounding` tool: where in a photo is the thing a phrase names? Tasks use it to check that an edit
put what it claims where it claims (subject_replacement: "is there a cat where the dog was?").

Offline backend: it cannot read what a thing is, only that a distinct thing stands in the region. GrabCut,
started from the region's box on a crop around it, separates what is in the box from its surroundings; the
thing is found when that cut fills a fair part of the box and its colours stand apart from the pixels
around it. A pasted object that the compositing washed into its surroundings gives no such cut. (Saliency
maps were tried first: on close-ups, where the object is most of the photo, they pick a highlight or a
corner instead.) Models backend (annotators/grounding_models.py): Florence-2's open-vocabulary detection
of the phrase.
"""

from __future__ import annotations

import contextlib

import cv2
import numpy as np

from annotators.registry import Plugin
from tasks.masks import bbox_of
from tasks.tools import Found

BACKENDS = {
    "offline": "annotators.grounding:DistinctGrounding",
    "models": "annotators.grounding_models:Florence2Grounding",
}


class DistinctGrounding(Plugin):
    name = "distinct_grounding"
    version = f"opencv-{cv2.__version__}-grabcut-1"

    def __init__(
        self,
        models_dir: str | None = None,
        context: float = 0.25,
        work_size: int = 256,
        min_fill: float = 0.3,
        min_separation: float = 12.0,
    ) -> None:
        super().__init__(models_dir)
        self.context = context  # margin around the region, of its size: the surroundings it must stand out of
        self.work_size = work_size
        self.min_fill = min_fill  # of the region's box the cut must cover
        self.min_separation = min_separation  # Lab distance of the cut's mean colour from its surroundings

    def __call__(self, image: np.ndarray, phrase: str, region: tuple[int, int, int, int]) -> list[Found]:
        height, width = image.shape[:2]
        x0, y0, x1, y1 = region
        mx, my = round((x1 - x0) * self.context), round((y1 - y0) * self.context)
        cx0, cy0, cx1, cy1 = max(0, x0 - mx), max(0, y0 - my), min(width, x1 + mx), min(height, y1 + my)
        crop = image[cy0:cy1, cx0:cx1]
        scale = min(1.0, self.work_size / max(crop.shape[:2]))
        size = (max(16, round(crop.shape[1] * scale)), max(16, round(crop.shape[0] * scale)))
        small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        sx, sy = size[0] / crop.shape[1], size[1] / crop.shape[0]
        rx0, ry0 = round((x0 - cx0) * sx), round((y0 - cy0) * sy)
        rx1, ry1 = round((x1 - cx0) * sx), round((y1 - cy0) * sy)
        if rx1 - rx0 < 4 or ry1 - ry0 < 4:
            return []
        seeds = np.full(small.shape[:2], cv2.GC_BGD, np.uint8)
        seeds[ry0:ry1, rx0:rx1] = cv2.GC_PR_FGD
        if (seeds == cv2.GC_BGD).sum() < 0.05 * seeds.size:
            # The region is nearly the whole photo: its outermost pixels stand in for the surroundings.
            frame = max(2, round(0.03 * max(size)))
            seeds[:frame], seeds[-frame:], seeds[:, :frame], seeds[:, -frame:] = (cv2.GC_BGD,) * 4
        cv2.setRNGSeed(0)  # GrabCut seeds its colour models from OpenCV's global RNG: same input, same cut
        models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        with contextlib.suppress(cv2.error):  # GrabCut refuses seeds without a foreground
            cv2.grabCut(bgr, seeds, None, *models, 5, cv2.GC_INIT_WITH_MASK)
        cut = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(cut.astype(np.uint8), connectivity=8)
        if count <= 1:
            return []
        best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        thing = labels == best
        if thing.sum() < self.min_fill * (rx1 - rx0) * (ry1 - ry0):
            return []
        lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
        around = (cv2.dilate(thing.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0) & ~thing
        if not around.any():
            return []
        separation = float(np.linalg.norm(lab[thing].mean(axis=0) - lab[around].mean(axis=0)))
        if separation < self.min_separation:
            return []
        box = bbox_of(thing)
        assert box is not None
        bx0, by0, bx1, by1 = box
        found = (cx0 + round(bx0 / sx), cy0 + round(by0 / sy), cx0 + round(bx1 / sx), cy0 + round(by1 / sy))
        return [Found(found, min(1.0, separation / 40.0), "object")]
