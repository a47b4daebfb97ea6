"""Running a MediaPipe .tflite landmark model on the LiteRT interpreter: the rotated square crop it
expects, and the way back from crop pixels to image pixels."""

from __future__ import annotations

import cv2
import numpy as np


class LiteRTModel:
    """One .tflite model with one float32 NHWC image input taking values in [0, 1]."""

    def __init__(self, path: str, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=path, num_threads=threads)
        self.interpreter.allocate_tensors()
        (self.input,) = self.interpreter.get_input_details()
        self.size = int(self.input["shape"][1])  # square models: 192 (face mesh), 256 (pose)
        self.outputs = self.interpreter.get_output_details()

    def __call__(self, crop: np.ndarray) -> list[np.ndarray]:
        tensor = (crop.astype(np.float32) / 255.0)[None]
        self.interpreter.set_tensor(self.input["index"], tensor)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(output["index"]).copy() for output in self.outputs]


def square_crop(
    image: np.ndarray, centre: tuple[float, float], side: float, angle_deg: float, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``side``-pixel square around ``centre``, turned by ``angle_deg`` (counter-clockwise, so that a
    tilted face comes out upright), resampled to ``size``; and the 2x3 affine back to image pixels."""
    forward = cv2.getRotationMatrix2D(centre, angle_deg, size / side)
    forward[:, 2] += (size / 2 - centre[0], size / 2 - centre[1])
    crop = cv2.warpAffine(
        image, forward, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return crop, cv2.invertAffineTransform(forward)


def to_image(points: np.ndarray, back: np.ndarray) -> np.ndarray:
    """Crop pixels (N, 2) to image pixels through the affine ``back``."""
    return (points @ back[:, :2].T + back[:, 2]).astype(np.float32)


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float32)))
