"""Regions of a face from MediaPipe's 468-point face mesh (its canonical topology), as pixel masks.

"Left" and "right" are the person's own: the person's right eye is on the image's left.
"""

from __future__ import annotations

import cv2
import numpy as np

FACE_OVAL = (
    10,
    338,
    297,
    332,
    284,
    251,
    389,
    356,
    454,
    323,
    361,
    288,
    397,
    365,
    379,
    378,
    400,
    377,
    152,
    148,
    176,
    149,
    150,
    136,
    172,
    58,
    132,
    93,
    234,
    127,
    162,
    21,
    54,
    103,
    67,
    109,
)
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
RIGHT_BROW = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
LEFT_BROW = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
NOSE = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 327, 64, 294, 48, 278, 129, 358)
# The jaw and lower cheeks, each side from the cheekbone down to the chin: what a slimming warp moves.
JAW_RIGHT = (234, 93, 132, 58, 172, 136, 150, 149, 176, 148)
JAW_LEFT = (454, 323, 361, 288, 397, 365, 379, 378, 400, 377)
CHIN = 152
NOSE_TIP = 1
FOREHEAD = 10
# Points that a retouch other than a reshaping must not move: eye corners, nose, mouth corners.
STABLE = (33, 133, 263, 362, 1, 4, 6, 168, 61, 291, 13, 14, 159, 145, 386, 374)
STABLE_UPPER = (33, 133, 263, 362, 1, 4, 6, 168, 159, 145, 386, 374)  # eyes and nose


def polygon_mask(shape: tuple[int, int], landmarks: np.ndarray, indices: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    points = np.round(landmarks[list(indices)]).astype(np.int32)
    cv2.fillPoly(mask, [cv2.convexHull(points) if len(indices) > 20 else points], 1)
    return mask > 0


def face_width(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[454] - landmarks[234]))


def skin_mask(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """The face's skin: inside the oval, outside the eyes, brows, lips and nostrils (grown a little)."""
    grow = max(2, round(0.03 * face_width(landmarks)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    features = np.zeros(shape, bool)
    for part in (RIGHT_EYE, LEFT_EYE, RIGHT_BROW, LEFT_BROW, LIPS_OUTER):
        features |= polygon_mask(shape, landmarks, part)
    features = cv2.dilate(features.astype(np.uint8), kernel) > 0
    oval = polygon_mask(shape, landmarks, FACE_OVAL)
    oval = cv2.erode(oval.astype(np.uint8), kernel) > 0  # the oval's rim is hair and jaw shadow
    return oval & ~features


def eye_openness(landmarks: np.ndarray) -> float:
    """Mean of the two eyes' height / width: about 0.25-0.35 open, below 0.1 closed."""
    right = np.linalg.norm(landmarks[159] - landmarks[145]) / max(
        np.linalg.norm(landmarks[33] - landmarks[133]), 1
    )
    left = np.linalg.norm(landmarks[386] - landmarks[374]) / max(
        np.linalg.norm(landmarks[263] - landmarks[362]), 1
    )
    return float((right + left) / 2)


def mouth_openness(landmarks: np.ndarray) -> float:
    """Inner-lip gap / mouth width: 0 closed, above 0.1 open."""
    return float(
        np.linalg.norm(landmarks[13] - landmarks[14]) / max(np.linalg.norm(landmarks[61] - landmarks[291]), 1)
    )


def yaw(landmarks: np.ndarray) -> float:
    """Where the nose tip sits between the cheeks: 0 facing the camera, towards -1 turned to the image's
    left, towards +1 to its right."""
    right_cheek, left_cheek, nose = landmarks[234, 0], landmarks[454, 0], landmarks[NOSE_TIP, 0]
    middle = (right_cheek + left_cheek) / 2
    return float((nose - middle) / max(abs(left_cheek - right_cheek) / 2, 1))
