"""The `objects` annotator: named object masks for the local-edit tasks.

Offline backend: labels from COCO-style annotations are used as they are (they come with masks); a photo
without labels gets its salient object: OpenCV's fine-grained static saliency proposes where the
object is, and GrabCut, seeded from that proposal, cuts its silhouette along the image's colour edges.
"""

from __future__ import annotations

import contextlib

import cv2
import numpy as np

from annotators.registry import Annotator
from tasks.masks import bbox_of
from tasks.records import ObjectLabel, SourceSample

BACKENDS = {
    "offline": "annotators.objects:OfflineObjects",
    "models": "annotators.objects_models:FlorenceSam2Objects",
}


class SalientObjects:
    """Saliency + GrabCut: one salient-object mask per photo, category unknown ("object")."""

    name = "saliency_grabcut"
    version = f"opencv-{cv2.__version__}"

    def __init__(self, work_size: int = 384, grabcut_iterations: int = 4, min_area: float = 0.002) -> None:
        self.work_size = work_size  # GrabCut's cost grows with pixels; masks are upscaled afterwards
        self.iterations = grabcut_iterations
        self.min_area = min_area

    def __call__(self, image: np.ndarray) -> list[ObjectLabel]:
        height, width = image.shape[:2]
        scale = min(1.0, self.work_size / max(height, width))
        small = cv2.resize(
            image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
        )
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        saliency = cv2.saliency.StaticSaliencyFineGrained_create()
        ok, sal_map = saliency.computeSaliency(bgr)
        if not ok:
            return []
        sal = cv2.GaussianBlur(sal_map.astype(np.float32), (0, 0), 3)
        sal = cv2.normalize(sal, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        _, proposal = cv2.threshold(sal, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        proposal = self._best_component(proposal > 0, sal)
        if proposal is None:
            return []

        # GrabCut seeds: the proposal is probably foreground, everything else probably background,
        # and a thin frame definitely background (the subject rarely fills the border).
        seeds = np.full(proposal.shape, cv2.GC_PR_BGD, np.uint8)
        seeds[proposal] = cv2.GC_PR_FGD
        frame = max(2, round(0.02 * max(proposal.shape)))
        seeds[:frame, :] = seeds[-frame:, :] = cv2.GC_BGD
        seeds[:, :frame] = seeds[:, -frame:] = cv2.GC_BGD
        background_model = np.zeros((1, 65), np.float64)
        foreground_model = np.zeros((1, 65), np.float64)
        # GrabCut refuses seeds with an empty class; the proposal is then all we have.
        with contextlib.suppress(cv2.error):
            cv2.grabCut(
                bgr, seeds, None, background_model, foreground_model, self.iterations, cv2.GC_INIT_WITH_MASK
            )
        cut = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
        cut = self._best_component(cut, sal)
        if cut is None:
            return []
        cut = cv2.morphologyEx(cut.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        mask = cv2.resize(cut, (width, height), interpolation=cv2.INTER_LINEAR) > 0
        box = bbox_of(mask)
        if box is None or mask.mean() < self.min_area:
            return []
        score = float(sal[cut > 0].mean()) / 255.0
        return [ObjectLabel(category="object", bbox=box, mask=mask, score=score, source=self.name)]

    @staticmethod
    def _best_component(mask: np.ndarray, saliency: np.ndarray) -> np.ndarray | None:
        """The connected component with the most total saliency (large and salient beats specks)."""
        count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        if count <= 1:
            return None
        totals = np.bincount(labels.ravel(), weights=saliency.ravel().astype(np.float64), minlength=count)
        totals[0] = -1.0  # label 0 is the background
        return labels == int(np.argmax(totals))


class OfflineObjects(Annotator):
    """Labels when the source has them, else the salient object."""

    name = "objects"
    version = SalientObjects.version

    def __init__(self, models_dir: str | None = None) -> None:
        super().__init__(models_dir)
        self.detector = SalientObjects()

    def describe_source(self, source: SourceSample) -> dict[str, str]:
        if source.labels and all(label.source == "labels" for label in source.labels):
            return {"backend": "labels", "name": "coco", "version": "coco"}
        return {"backend": self.backend, "name": self.detector.name, "version": self.detector.version}

    def annotate(self, sources: list[SourceSample]) -> None:
        for source in sources:
            if not source.labels:
                source.labels = self.detector(source.image)
