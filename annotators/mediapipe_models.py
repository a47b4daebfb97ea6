"""MediaPipe's model files (annotators/mediapipe/), and person segmentation and face detection on them.

The files come from the mediapipe 0.10.21 wheel (annotators/mediapipe/README.md), the last release that
shipped them. Person segmentation and face detection run under the current mediapipe's Tasks API on the CPU,
a few milliseconds a photo; the face mesh and the pose landmarks run on the LiteRT interpreter
(annotators/litert.py), because the Tasks landmarker graphs expect newer model bundles and misread these
files (tried: FaceLandmarker misplaces every point, PoseLandmarker refuses the input). mediapipe and
ai-edge-litert are installed without their dependencies (the Makefile does it): each names an OpenCV build
that would overwrite the headless OpenCV this project uses.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from annotators.registry import PluginUnavailable

MODEL_FOLDER = Path(__file__).parent / "mediapipe"
PACKAGE = "mediapipe"
# name -> SHA-256 of the file in the mediapipe 0.10.21 wheel
MODEL_FILES = {
    "face_detection_short_range.tflite": "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    "face_landmark.tflite": "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
    "selfie_segmentation.tflite": "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
    "pose_landmark_full.tflite": "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
}
# import name -> what installs it
RUNTIMES = {
    "mediapipe": "pip install 'step1x-data[faces]' && pip install --no-deps mediapipe==1.2.3",
    "ai_edge_litert": "pip install 'step1x-data[faces]' && pip install --no-deps ai-edge-litert==2.3.0",
}


def model_file(name: str) -> str:
    """The path of one shipped model file; PluginUnavailable (one line) when the installation lacks it."""
    if name not in MODEL_FILES:
        raise ValueError(f"unknown MediaPipe model {name!r}; known: {sorted(MODEL_FILES)}")
    path = MODEL_FOLDER / name
    if not path.is_file():
        raise PluginUnavailable(f"MediaPipe model {path} is missing: reinstall step1x-data (pip install .)")
    return str(path)


def is_intact(name: str) -> bool:
    return hashlib.sha256(Path(model_file(name)).read_bytes()).hexdigest() == MODEL_FILES[name]


def check_runtime(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        needs = f"the MediaPipe models need the Python package {module!r}"
        raise PluginUnavailable(f"{needs}: {RUNTIMES[module]}")


def close_before_exit(task: object) -> None:
    """Close a MediaPipe Tasks object (or a _Task) kept for the life of a worker, while the interpreter can
    still run it.

    Its close() runs on a thread pool; at exit that pool is shut down before atexit handlers run, so a plain
    atexit (or the object's own __del__) fails noisily. threading's exit hooks run before the pool's own
    (they are called last-registered first), so the task closes cleanly there.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(task.close)


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
    eyes: tuple[tuple[float, float], tuple[float, float]]  # the eye on the image's left, then its right


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
        height, width = rgb.shape[:2]
        faces = []
        for detection in self.task.detect(_image(rgb)).detections:
            box = detection.bounding_box
            x0, y0 = box.origin_x, box.origin_y
            score = float(detection.categories[0].score)
            left, right = ((k.x * width, k.y * height) for k in detection.keypoints[:2])
            faces.append(Face((x0, y0, x0 + box.width, y0 + box.height), score, (left, right)))
        return faces
