"""The `faces` tool: faces and their 468-point mesh, from MediaPipe's models (offline, shipped in
annotators/mediapipe/).

MediaPipe's short-range face detector (Tasks API) finds each face and its eyes; the face mesh model (LiteRT)
then reads the face in a square crop 1.5 times the detected box, turned so the eyes are level, as
MediaPipe's own face-mesh graph does. A detection whose mesh says "no face" (its presence score) is dropped.
The short-range detector is made for faces that fill a good part of the picture (portraits, selfies).
"""

from __future__ import annotations

import numpy as np

from annotators import mediapipe_models
from annotators.litert import LiteRTModel, sigmoid, square_crop, to_image
from annotators.mediapipe_models import FaceDetector, close_before_exit
from annotators.registry import Plugin, Resources
from tasks.tools import Face

BACKENDS = {"offline": "annotators.faces:MediaPipeFaces"}


class MediaPipeFaces(Plugin):
    name = "mediapipe_face_mesh"
    version = "mediapipe-0.10.21-models"
    resources = Resources(num_cpus=1.0)

    def __init__(self, models_dir: str | None = None, min_score: float = 0.5, max_faces: int = 8) -> None:
        super().__init__(models_dir)
        self.detector = FaceDetector(min_score)
        close_before_exit(self.detector)
        self.mesh = LiteRTModel(mediapipe_models.model_file("face_landmark.tflite"))
        self.max_faces = max_faces

    @classmethod
    def check(cls, models_dir: str | None) -> None:
        mediapipe_models.check_runtime("mediapipe")
        mediapipe_models.check_runtime("ai_edge_litert")
        mediapipe_models.model_file("face_detection_short_range.tflite")
        mediapipe_models.model_file("face_landmark.tflite")

    def __call__(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        faces = []
        for face in self.detector(image)[: self.max_faces]:
            x0, y0, x1, y1 = face.box
            (left_x, left_y), (right_x, right_y) = face.eyes
            angle = float(np.degrees(np.arctan2(right_y - left_y, right_x - left_x)))
            centre = ((x0 + x1) / 2, (y0 + y1) / 2)
            crop, back = square_crop(image, centre, 1.5 * max(x1 - x0, y1 - y0), angle, self.mesh.size)
            points, presence = self.mesh(crop)
            if float(sigmoid(presence.ravel()[0])) < 0.5:
                continue
            landmarks = to_image(points.reshape(468, 3)[:, :2], back)
            x0, y0 = np.floor(landmarks.min(axis=0)).astype(int)
            x1, y1 = np.ceil(landmarks.max(axis=0)).astype(int) + 1
            faces.append(
                Face(
                    box=(max(0, int(x0)), max(0, int(y0)), min(width, int(x1)), min(height, int(y1))),
                    score=face.score,
                    landmarks=landmarks,
                )
            )
        return faces
