"""The `persons` tool: person segmentation with MediaPipe's selfie segmentation model (offline, its weights
shipped in annotators/mediapipe/).

The model looks at a 256x256 view of what it is given, so it segments people who fill a good part of the
frame; callers with small people (a street video) hand it a crop around each one.
"""

from __future__ import annotations

import numpy as np

from annotators import mediapipe_models
from annotators.mediapipe_models import PersonSegmenter, close_before_exit
from annotators.registry import Plugin, Resources

BACKENDS = {"offline": "annotators.persons:MediaPipePersons"}


class MediaPipePersons(Plugin):
    name = "mediapipe_selfie_segmentation"
    version = "mediapipe-0.10.21-models"
    resources = Resources(num_cpus=1.0)

    def __init__(self, models_dir: str | None = None) -> None:
        super().__init__(models_dir)
        self.segmenter = PersonSegmenter()
        close_before_exit(self.segmenter)

    @classmethod
    def check(cls, models_dir: str | None) -> None:
        mediapipe_models.check_runtime("mediapipe")
        mediapipe_models.model_file("selfie_segmentation.tflite")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.segmenter(image).reshape(image.shape[:2])
