"""Whether two images show the same scene: agreement of their edge maps.

A stylised photo changes colours, textures and strokes, but the scene's outlines must stay where they
were (the paper's style pairs are the same picture in two looks). Both images are reduced to a working
size and smoothed enough that texture (pencil grain, brush dabs, pixel blocks) stops producing edges; the
edges that remain are the scene's. The agreement is the F1 score of the two edge maps, an edge counting as
matched when the other map has one within a few pixels.
"""

from __future__ import annotations

import cv2
import numpy as np


def edge_map(image: np.ndarray, work_size: int = 256) -> np.ndarray:
    """Canny edges of the image at ``work_size`` (long side), after a blur that drops fine texture;
    thresholds from the median gradient, so a pale sketch and a dark painting are judged alike."""
    height, width = image.shape[:2]
    scale = work_size / max(height, width)
    small = cv2.resize(
        image, (max(8, round(width * scale)), max(8, round(height * scale))), interpolation=cv2.INTER_AREA
    )
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY) if small.ndim == 3 else small
    grey = cv2.bilateralFilter(cv2.GaussianBlur(grey, (0, 0), 1.5), 7, 30, 7)
    gradient = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    high = max(30.0, float(np.percentile(gradient, 90)))
    return cv2.Canny(grey, high * 0.4, high) > 0


def edge_agreement(first: np.ndarray, second: np.ndarray, tolerance: int = 2, work_size: int = 256) -> float:
    """F1 of the two images' edge maps (edge_map), with ``tolerance`` pixels at the working size."""
    a, b = edge_map(first, work_size), edge_map(second, work_size)
    if not a.any() or not b.any():
        return 0.0
    kernel = np.ones((2 * tolerance + 1, 2 * tolerance + 1), np.uint8)
    near_a = cv2.dilate(a.astype(np.uint8), kernel) > 0
    near_b = cv2.dilate(b.astype(np.uint8), kernel) > 0
    precision = float(near_a[b].mean())  # edges of the second image that the first has too
    recall = float(near_b[a].mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
