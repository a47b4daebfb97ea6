"""Portrait retouching operations on one face, each guided by the face mesh (tasks.face_regions).

Each returns the edited photo and the mask of the pixels it may change; pixels outside that mask are
returned exactly as they were.
"""

from __future__ import annotations

import cv2
import numpy as np

from tasks import face_regions as fr


def _feather(mask: np.ndarray, sigma: float) -> np.ndarray:
    return np.clip(cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(sigma, 0.5)), 0.0, 1.0)


def _blend(image: np.ndarray, edited: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``edited`` where ``weight`` > 0, ``image`` elsewhere, exactly."""
    w = weight[..., None]
    out = image.astype(np.float32) * (1 - w) + edited.astype(np.float32) * w
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    mask = weight > 1e-3
    out[~mask] = image[~mask]
    return out, mask


def smooth_skin(
    image: np.ndarray, landmarks: np.ndarray, keep_detail: float
) -> tuple[np.ndarray, np.ndarray]:
    """Edge-preserving smoothing of the skin; ``keep_detail`` of the fine texture (pores) is added back."""
    width = fr.face_width(landmarks)
    skin = fr.skin_mask(image.shape[:2], landmarks)
    smooth = cv2.bilateralFilter(image, d=0, sigmaColor=30, sigmaSpace=max(2.0, width / 40))
    smooth = cv2.bilateralFilter(smooth, d=0, sigmaColor=20, sigmaSpace=max(2.0, width / 60))
    detail = image.astype(np.float32) - cv2.GaussianBlur(image, (0, 0), max(1.0, width / 250)).astype(
        np.float32
    )
    edited = smooth.astype(np.float32) + keep_detail * detail
    return _blend(image, np.clip(edited, 0, 255), _feather(skin, width / 60))


def add_blemishes(
    image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Small reddish-brown spots on the cheeks, forehead and chin (the source of a removal pair)."""
    width = fr.face_width(landmarks)
    skin = cv2.erode(fr.skin_mask(image.shape[:2], landmarks).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    ys, xs = np.nonzero(skin)
    if ys.size < 100:
        return image.copy(), np.zeros(image.shape[:2], bool)
    out = image.astype(np.float32)
    mask = np.zeros(image.shape[:2], bool)
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    for index in rng.choice(ys.size, size=count, replace=False):
        y, x = int(ys[index]), int(xs[index])
        radius = width * rng.uniform(0.008, 0.016)
        r = int(np.ceil(3 * radius))
        y0, y1, x0, x1 = (
            max(0, y - r),
            min(image.shape[0], y + r + 1),
            max(0, x - r),
            min(image.shape[1], x + r + 1),
        )
        d2 = (yy[y0:y1, x0:x1] - y) ** 2 + (xx[y0:y1, x0:x1] - x) ** 2
        spot = np.exp(-d2 / (2 * radius**2))
        spot = np.where(spot > 0.05, spot, 0.0)[..., None]  # its faint tail is cut: the mask is exact
        # A blemish darkens the skin and pulls it towards red-brown (inflamed or pigmented skin).
        strength = rng.uniform(0.25, 0.4)
        tint = np.array([0.92, 0.62, 0.58], np.float32)
        patch = out[y0:y1, x0:x1]
        out[y0:y1, x0:x1] = patch * (1 - spot * strength) + patch * tint * spot * strength * 0.55
        mask[y0:y1, x0:x1] |= spot[..., 0] > 0
    return np.clip(np.round(out), 0, 255).astype(np.uint8), mask


def brighten_eyes(image: np.ndarray, landmarks: np.ndarray, amount: float) -> tuple[np.ndarray, np.ndarray]:
    """Lighter whites and clearer irises: a luminance lift and local contrast inside the eye openings."""
    width = fr.face_width(landmarks)
    shape = image.shape[:2]
    eyes = fr.polygon_mask(shape, landmarks, fr.RIGHT_EYE) | fr.polygon_mask(shape, landmarks, fr.LEFT_EYE)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    light = lab[..., 0]
    blurred = cv2.GaussianBlur(light, (0, 0), max(1.0, width / 80))
    light = light + amount * 0.6 * (light - blurred)  # crisper iris edge and catchlight
    light = 255.0 * (np.clip(light, 0, 255) / 255.0) ** (
        1.0 / (1.0 + amount)
    )  # lift the whites more than the pupil
    lab[..., 0] = np.clip(light, 0, 255)
    edited = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    return _blend(image, edited, _feather(eyes, width / 150) * eyes.astype(np.float32))


def teeth_mask(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The visible teeth: bright, low-chroma pixels inside the inner lips."""
    mouth = fr.polygon_mask(image.shape[:2], landmarks, fr.LIPS_INNER)
    if mouth.sum() < 20:
        return np.zeros(image.shape[:2], bool)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    light, chroma = lab[..., 0], np.hypot(lab[..., 1] - 128, lab[..., 2] - 128)
    lit = light[mouth]
    return mouth & (light > max(110.0, np.percentile(lit, 40))) & (chroma < 40)


def whiten_teeth(image: np.ndarray, landmarks: np.ndarray, amount: float) -> tuple[np.ndarray, np.ndarray]:
    teeth = teeth_mask(image, landmarks)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 2] = 128 + (lab[..., 2] - 128) * (1 - 0.7 * amount)  # less yellow
    lab[..., 1] = 128 + (lab[..., 1] - 128) * (1 - 0.4 * amount)
    lab[..., 0] = lab[..., 0] + (255 - lab[..., 0]) * 0.25 * amount
    edited = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    width = fr.face_width(landmarks)
    weight = _feather(teeth, width / 200) * fr.polygon_mask(image.shape[:2], landmarks, fr.LIPS_INNER)
    return _blend(image, edited, weight)


def slim_face(
    image: np.ndarray, landmarks: np.ndarray, amount: float, person: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Jaw and lower cheeks pulled towards the face's midline by ``amount`` of their distance to it, as a
    smooth warp around the jaw line that fades within a third of the face's width (the eyes and nose stay
    put) and stops at the edge of the ``person`` mask."""
    height, width_px = image.shape[:2]
    width = fr.face_width(landmarks)
    top, chin = landmarks[fr.FOREHEAD], landmarks[fr.CHIN]
    axis = (chin - top) / max(float(np.linalg.norm(chin - top)), 1.0)
    normal = np.array([axis[1], -axis[0]], np.float32)
    sigma = 0.12 * width
    yy, xx = np.mgrid[0:height, 0:width_px].astype(np.float32)
    # Each pixel moves towards the midline by ``amount`` of its own distance to it (nothing on the midline
    # moves), weighted by how close it is to the jaw: a squeeze of the lower face, not a shift.
    side = (xx - top[0]) * normal[0] + (yy - top[1]) * normal[1]
    reach = np.zeros((height, width_px), np.float32)
    for index in fr.JAW_RIGHT + fr.JAW_LEFT:
        point = landmarks[index]
        reach = np.maximum(reach, np.exp(-((xx - point[0]) ** 2 + (yy - point[1]) ** 2) / (2 * sigma**2)))
    # Only the person moves (and the background the jaw uncovers): a door frame behind a cheek stays straight.
    grow = max(2, round(0.04 * width))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    body = cv2.dilate((person > 0.5).astype(np.uint8), kernel).astype(np.float32)
    reach *= cv2.GaussianBlur(body, (0, 0), grow / 2)
    shift_x = -amount * side * reach * normal[0]
    shift_y = -amount * side * reach * normal[1]
    # Backward mapping: the output pixel p shows the input at p - shift (a good inverse for small shifts).
    warped = cv2.remap(image, xx - shift_x, yy - shift_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    moved = np.hypot(shift_x, shift_y) > 0.5  # below half a pixel the warp changes nothing visible
    return _blend(image, warped, moved.astype(np.float32))


def blur_background(image: np.ndarray, person: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """A lens-like (disc) blur of everything but the person, the person's colours kept out of the blur so
    that no halo forms around them."""
    r = max(2, round(radius))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)).astype(np.float32)
    disc /= disc.sum()
    background = np.clip(1.0 - person, 0.0, 1.0)
    weight = cv2.filter2D(background, -1, disc)
    blurred = cv2.filter2D(image.astype(np.float32) * background[..., None], -1, disc)
    blurred = blurred / np.maximum(weight, 1e-3)[..., None]
    return _blend(image, np.clip(blurred, 0, 255), background)
