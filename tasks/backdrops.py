"""Plain studio backdrops: the background a photographer puts behind a person, a fruit or a flower.

background_change's offline backend takes a new background from another photo of the run when one fits the
subject and can be named; otherwise it puts the subject before a backdrop of one colour, which fits any
subject and is named for certain ("a plain light blue studio backdrop"). The backdrop is rendered as a
studio shows one: a little brighter behind the subject and falling off toward the corners, with the photo's
own grain so that it does not look pasted, and a soft contact shadow under a subject that stands on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tasks.compositing import from_lab, to_lab
from tasks.masks import bbox_of
from tasks.scene_words import Scene


@dataclass(frozen=True)
class Backdrop:
    key: str
    en: str
    zh: str
    lab: tuple[float, float, float]  # CIE Lab of the backdrop where it is lit evenly

    @property
    def neutral(self) -> bool:
        return float(np.hypot(self.lab[1], self.lab[2])) < 3.0

    def scene(self) -> Scene:
        en, zh = f"a plain {self.en} studio backdrop", f"纯{self.zh}的摄影棚背景"
        return Scene(f"plain_{self.key}", en, zh, ground=True)


BACKDROPS: tuple[Backdrop, ...] = (
    Backdrop("white", "white", "白色", (95.0, 0.0, 1.5)),
    Backdrop("light_grey", "light grey", "浅灰色", (78.0, 0.0, 0.0)),
    Backdrop("dark_grey", "dark grey", "深灰色", (34.0, 0.0, 0.0)),
    Backdrop("black", "black", "黑色", (10.0, 0.0, 0.0)),
    Backdrop("light_blue", "light blue", "浅蓝色", (80.0, -6.0, -22.0)),
    Backdrop("navy", "navy blue", "深蓝色", (24.0, 8.0, -36.0)),
    Backdrop("beige", "beige", "米色", (86.0, 2.0, 14.0)),
    Backdrop("pink", "pastel pink", "淡粉色", (84.0, 16.0, 4.0)),
    Backdrop("sage", "sage green", "灰绿色", (66.0, -14.0, 12.0)),
    Backdrop("teal", "teal", "青色", (48.0, -26.0, -8.0)),
    Backdrop("burgundy", "burgundy", "酒红色", (28.0, 36.0, 14.0)),
)


def colour_distance(a: np.ndarray, b: np.ndarray) -> float:
    """CIE76 distance of two Lab colours."""
    return float(np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32)))


def choices(
    rim: np.ndarray, old_background: np.ndarray, greyscale: bool, min_contrast: float, max_alike: float
) -> list[Backdrop]:
    """The backdrops that set the subject off and change the picture: at most ``max_alike`` of the subject's
    rim pixels (``rim``: N x 3 Lab) within ``min_contrast`` of the backdrop's colour (else the subject melts
    into it there, and its cut edge reads as a smudge), and the backdrop at least ``min_contrast`` from the
    old background's mean colour; only neutral ones for a greyscale photo."""
    picked = []
    for backdrop in BACKDROPS:
        if greyscale and not backdrop.neutral:
            continue
        distance = np.linalg.norm(rim - np.asarray(backdrop.lab, np.float32), axis=-1)
        alike = float((distance < min_contrast).mean())
        if alike <= max_alike and colour_distance(backdrop.lab, old_background) >= min_contrast:
            picked.append(backdrop)
    return picked


def grain(image: np.ndarray, where: np.ndarray) -> float:
    """The photo's noise in grey levels, measured where it is smooth (the median absolute deviation of the
    fine detail over the ``where`` pixels, which in flat areas is the sensor's and the JPEG's grain)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    detail = grey - cv2.GaussianBlur(grey, (0, 0), 1.5)
    values = detail[where] if where.any() else detail.ravel()
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def render(
    backdrop: Backdrop, subject: np.ndarray, noise: float, rng: np.random.Generator, shadow: float = 0.3
) -> np.ndarray:
    """The backdrop at the subject's photo size (``subject`` is its HxW bool mask), uint8 RGB.

    Light: +4 % of L behind the subject's centre, falling to -12 % in the far corners. Grain: Gaussian,
    ``noise`` grey levels. Contact shadow: when the subject ends inside the frame it stands on the backdrop
    (a fruit on a sweep), and the backdrop darkens softly beneath and around its lower part, by ``shadow``
    at most.
    """
    height, width = subject.shape
    box = bbox_of(subject)
    cx, cy = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2) if box else (width / 2, height / 2)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    reach = float(np.hypot(max(cx, width - cx), max(cy, height - cy)))
    r2 = ((xs - cx) ** 2 + (ys - cy) ** 2) / reach**2
    lab = np.empty((height, width, 3), np.float32)
    lab[..., 0] = backdrop.lab[0] * (1.04 - 0.16 * r2)
    lab[..., 1], lab[..., 2] = backdrop.lab[1], backdrop.lab[2]
    if box is not None and box[3] < height and shadow > 0:
        subject_height = box[3] - box[1]
        lower = subject.copy()
        lower[: box[1] + subject_height // 2] = False  # only the part that rests on the floor casts it
        sigma = max(2.0, 0.04 * subject_height)
        occlusion = cv2.GaussianBlur(lower.astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
        occlusion = np.clip(occlusion / max(float(occlusion.max()), 1e-6), 0, 1)
        occlusion[: box[1] + subject_height // 2] *= 0.3  # the shadow lies on the floor, below the middle
        lab[..., 0] *= 1.0 - shadow * occlusion
    lab[..., 0] = np.clip(lab[..., 0], 0, 100)
    image = from_lab(lab).astype(np.float32)
    image += rng.normal(0.0, noise, (height, width, 1)).astype(np.float32)  # luminance grain, as sensors make
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def rim_pixels(image: np.ndarray, alpha: np.ndarray, width: int = 4) -> np.ndarray:
    """Lab colours (N x 3) of the subject's outer ``width`` pixels: what meets the new background."""
    opaque = alpha > 0.5
    inner = cv2.erode(opaque.astype(np.uint8), np.ones((2 * width + 1, 2 * width + 1), np.uint8)) > 0
    rim = opaque & ~inner
    return to_lab(image)[rim if rim.any() else opaque]
