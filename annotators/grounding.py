"""The `grounding` tool: where in a photo is the thing a phrase names? Tasks use it to check that an edit
put what it claims where it claims (subject_replacement: "is there a cat where the dog was?").

Offline backend: it cannot read what a thing is, only that a distinct thing stands there. OpenCV's
fine-grained saliency on a crop around the region, thresholded (Otsu) and cut along colour edges by GrabCut,
gives the salient object's box; a pasted object that the compositing washed into its surroundings has none,
or a box elsewhere. Models backend (annotators/grounding_models.py): Florence-2's open-vocabulary detection
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
    "offline": "annotators.grounding:SalientGrounding",
    "models": "annotators.grounding_models:Florence2Grounding",
}


class SalientGrounding(Plugin):
    name = "saliency_grounding"
    version = f"opencv-{cv2.__version__}"

    def __init__(self, models_dir: str | None = None, context: float = 0.5, work_size: int = 256) -> None:
        super().__init__(models_dir)
        self.context = context  # margin around the region, of its size: the object must stand out of this
        self.work_size = work_size

    def __call__(self, image: np.ndarray, phrase: str, region: tuple[int, int, int, int]) -> list[Found]:
        height, width = image.shape[:2]
        x0, y0, x1, y1 = region
        mx, my = round((x1 - x0) * self.context), round((y1 - y0) * self.context)
        cx0, cy0, cx1, cy1 = max(0, x0 - mx), max(0, y0 - my), min(width, x1 + mx), min(height, y1 + my)
        crop = image[cy0:cy1, cx0:cx1]
        scale = min(1.0, self.work_size / max(crop.shape[:2]))
        size = (max(16, round(crop.shape[1] * scale)), max(16, round(crop.shape[0] * scale)))
        small = cv2.cvtColor(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
        ok, saliency = cv2.saliency.StaticSaliencyFineGrained_create().computeSaliency(small)
        if not ok:
            return []
        saliency = cv2.GaussianBlur(saliency.astype(np.float32), (0, 0), 2)
        saliency = cv2.normalize(saliency, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        _, proposal = cv2.threshold(saliency, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        seeds = np.where(proposal > 0, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
        frame = max(2, round(0.03 * max(size)))
        seeds[:frame], seeds[-frame:], seeds[:, :frame], seeds[:, -frame:] = (cv2.GC_BGD,) * 4
        cv2.setRNGSeed(0)  # GrabCut seeds its colour models from OpenCV's global RNG: same input, same cut
        models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        with contextlib.suppress(cv2.error):  # GrabCut refuses seeds without a foreground
            cv2.grabCut(small, seeds, None, *models, 3, cv2.GC_INIT_WITH_MASK)
        cut = ((seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(cut, connectivity=8)
        if count <= 1:
            return []
        best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        box = bbox_of(labels == best)
        if box is None:
            return []
        score = float(saliency[labels == best].mean()) / 255.0
        bx0, by0, bx1, by1 = (round(v / scale) for v in box)
        return [Found((cx0 + bx0, cy0 + by0, cx0 + bx1, cy0 + by1), score, "object")]
