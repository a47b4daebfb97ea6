"""The `pose` tool: a person's 33 body landmarks with MediaPipe's BlazePose (full) landmark model on LiteRT
(offline, weights taken from a wheel by annotators.mediapipe_models).

The caller says where the person is (a box, from person segmentation); the model reads a square crop
around it 1.25 times its longer side, which is how MediaPipe's own graph frames a body for this model.
"""

from __future__ import annotations

import numpy as np

from annotators import mediapipe_models
from annotators.litert import LiteRTModel, sigmoid, square_crop, to_image
from annotators.registry import Plugin, Resources
from tasks.tools import Pose

BACKENDS = {"offline": "annotators.pose:MediaPipePose"}


class MediaPipePose(Plugin):
    name = "mediapipe_pose_full"
    version = "mediapipe-0.10.21-models"
    resources = Resources(num_cpus=1.0)

    def __init__(self, models_dir: str | None = None, min_presence: float = 0.5) -> None:
        super().__init__(models_dir)
        self.model = LiteRTModel(mediapipe_models.model_file("pose_landmark_full.tflite"))
        self.min_presence = min_presence

    @classmethod
    def check(cls, models_dir: str | None) -> None:
        mediapipe_models.check_runtime("ai_edge_litert")
        mediapipe_models.model_file("pose_landmark_full.tflite")

    def __call__(self, image: np.ndarray, box: tuple[int, int, int, int]) -> Pose | None:
        x0, y0, x1, y1 = box
        centre = ((x0 + x1) / 2, (y0 + y1) / 2)
        crop, back = square_crop(image, centre, 1.25 * max(x1 - x0, y1 - y0), 0.0, self.model.size)
        landmarks, presence, *_ = self.model(crop)
        score = float(sigmoid(presence.ravel()[0]))
        if score < self.min_presence:
            return None
        points = landmarks.reshape(39, 5)[:33]  # x, y, z, visibility, presence; 33-38 are auxiliary
        return Pose(landmarks=to_image(points[:, :2], back), visibility=sigmoid(points[:, 3]), score=score)
