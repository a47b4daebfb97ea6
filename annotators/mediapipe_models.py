"""MediaPipe's person segmentation and face detection, from the model files in annotators/mediapipe/.

The files come from the mediapipe 0.10.21 wheel (annotators/mediapipe/README.md); the current mediapipe runs
them through its Tasks API on the CPU, a few milliseconds a photo. mediapipe is installed without its
dependencies (the Makefile does it): it asks for opencv-contrib-python, which would overwrite the headless
OpenCV this project uses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

MODEL_FOLDER = Path(__file__).parent / "mediapipe"
PACKAGE = "mediapipe"


def model_file(name: str) -> str:
    path = MODEL_FOLDER / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the package's MediaPipe model files were not installed")
    return str(path)


def _vision() -> tuple:
    # MediaPipe's C++ core logs through glog to stderr; keep it to warnings and above.
    os.environ.setdefault("GLOG_minloglevel", "2")
    import mediapipe
    from mediapipe.tasks.python import BaseOptions, vision

    return mediapipe, BaseOptions, vision


def _image(rgb: np.ndarray) -> object:
    mediapipe, _, _ = _vision()
    return mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))


class _Task:
    """A MediaPipe task, used as a context manager: it must be closed while the interpreter is fully alive,
    since mediapipe's own finaliser fails during interpreter shutdown (its dispatcher's thread pool is
    gone by then, even for atexit handlers). Creating one takes a few milliseconds."""

    def __init__(self, task: object) -> None:
        self.task = task

    def close(self) -> None:
        if self.task is not None:
            self.task.close()
            self.task = None

    def __enter__(self) -> _Task:
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.close()


class PersonSegmenter(_Task):
    """Per-pixel probability that a pixel belongs to a person (selfie_segmentation.tflite)."""

    version = "mediapipe-selfie_segmentation-0.10.21"

    def __init__(self) -> None:
        _, base_options, vision = _vision()
        options = vision.ImageSegmenterOptions(
            base_options=base_options(model_asset_path=model_file("selfie_segmentation.tflite")),
            output_confidence_masks=True,
            output_category_mask=False,
        )
        super().__init__(vision.ImageSegmenter.create_from_options(options))

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        result = self.task.segment(_image(rgb))
        return np.array(result.confidence_masks[0].numpy_view()[..., 0], dtype=np.float32)


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1
    score: float


class FaceDetector(_Task):
    """Faces and their boxes (BlazeFace short range: faces within a few metres of the camera)."""

    version = "mediapipe-face_detection_short_range-0.10.21"

    # 0.75: at 0.6 the detector found a face in an apple on the held-out photos (score 0.64).
    def __init__(self, min_score: float = 0.75) -> None:
        _, base_options, vision = _vision()
        options = vision.FaceDetectorOptions(
            base_options=base_options(model_asset_path=model_file("face_detection_short_range.tflite")),
            min_detection_confidence=min_score,
        )
        super().__init__(vision.FaceDetector.create_from_options(options))

    def __call__(self, rgb: np.ndarray) -> list[Face]:
        faces = []
        for detection in self.task.detect(_image(rgb)).detections:
            box = detection.bounding_box
            x0, y0 = box.origin_x, box.origin_y
            score = float(detection.categories[0].score)
            faces.append(Face((x0, y0, x0 + box.width, y0 + box.height), score))
        return faces
