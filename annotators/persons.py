"""The `persons` tool: person segmentation with MediaPipe's selfie segmentation model (offline, its weights
taken from a wheel by annotators.mediapipe_models).

The model looks at a 256x256 view of what it is given, so it segments people who fill a good part of the
frame; callers with small people (a street video) hand it a crop around each one.
"""

from __future__ import annotations

import numpy as np

from annotators import mediapipe_models
from annotators.mediapipe_models import close_before_exit
from annotators.registry import Plugin, Resources

BACKENDS = {"offline": "annotators.persons:MediaPipePersons"}


class MediaPipePersons(Plugin):
    name = "mediapipe_selfie_segmentation"
    version = "mediapipe-0.10.21-models"
    resources = Resources(num_cpus=1.0)

    def __init__(self, models_dir: str | None = None) -> None:
        super().__init__(models_dir)
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        options = vision.ImageSegmenterOptions(
            base_options=BaseOptions(
                model_asset_path=mediapipe_models.model_file("selfie_segmentation.tflite")
            ),
            output_confidence_masks=True,
            output_category_mask=False,
        )
        self.segmenter = vision.ImageSegmenter.create_from_options(options)
        close_before_exit(self.segmenter)

    @classmethod
    def check(cls, models_dir: str | None) -> None:
        mediapipe_models.check_runtime("mediapipe")
        mediapipe_models.model_file("selfie_segmentation.tflite")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        frame = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        (confidence,) = self.segmenter.segment(frame).confidence_masks
        mask = np.array(confidence.numpy_view(), dtype=np.float32)
        return mask.reshape(image.shape[:2])
