"""The `objects` annotator: named object masks for the local-edit tasks.

Offline backend: labels from COCO-style annotations are used as they are (they come with masks and names).
A photo without labels gets the people MediaPipe's person segmentation finds (annotators/mediapipe_models.py):
its model ships with the package and names what it segments, "person". Nothing else is proposed: a salient
region without a name cannot make an instruction a person would accept, so such photos get no labels and the
tasks skip them (`unnamed_region`).
"""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np

from annotators.mediapipe_models import PACKAGE, Face, FaceDetector, PersonSegmenter
from annotators.registry import Annotator, PluginUnavailable
from tasks.masks import bbox_of
from tasks.records import ObjectLabel, SourceSample

BACKENDS = {
    "offline": "annotators.objects:OfflineObjects",
    "models": "annotators.objects_models:FlorenceSam2Objects",
}


class People:
    """One label per person: a connected region of MediaPipe's person probability holding exactly one face
    found by MediaPipe's face detector. Without a face, the segmenter also marks buildings and statues (seen
    on the held-out photos); with two, the region is two people merged, whose removal no instruction names."""

    name = "mediapipe_people"
    version = PersonSegmenter.version

    def __init__(self, threshold: float = 0.5, min_area: float = 0.004, min_confidence: float = 0.75) -> None:
        self.threshold = threshold
        self.min_area = min_area  # of the image
        self.min_confidence = min_confidence  # mean probability inside a region

    def annotate(self, sources: list[SourceSample]) -> None:
        with PersonSegmenter() as segmenter, FaceDetector() as faces:
            for source in sources:
                source.labels = self.people(source.image, segmenter(source.image), faces(source.image))

    def people(self, image: np.ndarray, probability: np.ndarray, faces: list[Face]) -> list[ObjectLabel]:
        mask = probability > self.threshold
        count, components = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        labels = []
        for index in range(1, count):
            region = components == index
            if region.mean() < self.min_area:
                continue
            confidence = float(probability[region].mean())
            box = bbox_of(region)
            inside = [f for f in faces if _centre_inside(f.box, region)]
            if confidence < self.min_confidence or len(inside) != 1 or box is None:
                continue
            region = cv2.morphologyEx(region.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
            labels.append(ObjectLabel("person", box, region, confidence, source=self.name))
        return labels


def _centre_inside(box: tuple[int, int, int, int], region: np.ndarray) -> bool:
    x, y = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    return 0 <= y < region.shape[0] and 0 <= x < region.shape[1] and bool(region[y, x])


class OfflineObjects(Annotator):
    """Labels when the source has them, else the people in it."""

    name = "objects"
    version = People.version

    def __init__(self, models_dir: str | None = None) -> None:
        super().__init__(models_dir)
        self.people = People()

    @classmethod
    def check(cls, models_dir: str | None) -> None:
        if importlib.util.find_spec(PACKAGE) is None:
            raise PluginUnavailable(
                "objects (offline backend) needs mediapipe to find people: pip install --no-deps "
                "mediapipe==1.2.3 absl-py flatbuffers (its OpenCV dependency would replace the headless one)"
            )

    def describe_source(self, source: SourceSample) -> dict[str, str]:
        if source.labels and all(label.source == "labels" for label in source.labels):
            return {"backend": "labels", "name": "coco", "version": "coco"}
        return {"backend": self.backend, "name": self.people.name, "version": self.people.version}

    def annotate(self, sources: list[SourceSample]) -> None:
        self.people.annotate([source for source in sources if not source.labels])
