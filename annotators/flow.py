"""The `flow` tool: dense optical flow between two frames.

Offline backend: OpenCV's DIS flow (medium preset) on grey frames at a bounded working size; on
Middlebury's stereo pair it is within a third of a pixel of the true disparity (see the reference notes),
far closer than Farneback. Models backend: RAFT through torchvision, its weights loaded from the models
folder (safetensors only).
"""

from __future__ import annotations

import cv2
import numpy as np

from annotators.registry import Plugin, Resources

BACKENDS = {"offline": "annotators.flow:DISFlow", "models": "annotators.flow_models:RAFTFlow"}


def working_size(
    height: int, width: int, max_side: int, multiple: int = 1, min_side: int = 1
) -> tuple[int, int]:
    """(width, height) scaled so the longer side is at most ``max_side`` and the shorter at least
    ``min_side``, each a multiple of ``multiple``."""
    scale = max(min(1.0, max_side / max(height, width)), min_side / min(height, width))
    w = max(multiple, round(width * scale / multiple) * multiple)
    h = max(multiple, round(height * scale / multiple) * multiple)
    return w, h


def resize_flow(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """A flow field computed at another size, resampled to (height, width) with its vectors rescaled."""
    fh, fw = flow.shape[:2]
    if (fh, fw) == (height, width):
        return flow
    out = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
    out[..., 0] *= width / fw
    out[..., 1] *= height / fh
    return out


class DISFlow(Plugin):
    name = "opencv_dis_flow"
    version = f"opencv-{cv2.__version__}-medium"
    resources = Resources(num_cpus=1.0)

    def __init__(self, models_dir: str | None = None, max_side: int = 640) -> None:
        super().__init__(models_dir)
        self.max_side = max_side  # DIS is linear in pixels; subject motion is many pixels at this size
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        height, width = first.shape[:2]
        size = working_size(height, width, self.max_side)
        grey = [
            cv2.cvtColor(cv2.resize(f, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
            for f in (first, second)
        ]
        flow = self.dis.calc(grey[0], grey[1], None)
        return resize_flow(flow, height, width)
