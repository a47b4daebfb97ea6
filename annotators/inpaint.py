"""Classical inpainting (offline backend): a fill chosen to suit the hole's surroundings.

Looked at on held-out photos (bench/RESULTS.md): on smooth surroundings (paper, a table top, sky) Telea's
fast-marching diffusion, with grain matched to the surroundings, leaves a clean surface; on texture (grass,
foliage) it leaves a blurred patch, and OpenCV's shift-map, which copies patches of the surroundings, keeps
the texture. Neither can continue structure: a hole whose boundary touches several distinct surfaces (a
saucer, its rim and the table) is refused (`can_fill`), as is a hole too large to fill from its surroundings.

The fill runs on a crop around the hole at a bounded working size, is scaled back, and is blended with an
edge feathered inwards, so pixels outside the mask are returned untouched (the masks the tasks pass are
dilated past the object, so the hole's rim is background already).
"""

from __future__ import annotations

import cv2
import numpy as np

from annotators.registry import Plugin
from tasks.fill_quality import ring_of, surroundings
from tasks.masks import bbox_of

BACKENDS = {
    "offline": "annotators.inpaint:ClassicalInpainter",
    "models": "annotators.inpaint_models:DiffusionInpainter",
}


class ClassicalInpainter(Plugin):
    name = "opencv_telea_shiftmap"
    version = f"opencv-{cv2.__version__}"

    def __init__(
        self,
        models_dir: str | None = None,
        work_size: int = 320,
        context: float = 0.6,
        feather: int = 3,
        max_area: float = 0.12,
        seed: int = 0,
    ) -> None:
        super().__init__(models_dir)
        self.work_size = work_size  # longest side of the crop the fill is computed on
        self.context = context  # margin around the hole, as a fraction of the hole's size
        self.feather = feather
        self.max_area = max_area  # of the image: larger holes leave too little to copy from
        self.seed = seed

    def can_fill(self, image: np.ndarray, mask: np.ndarray) -> str | None:
        """Why this fill cannot make the hole look like its surroundings, or None."""
        if mask.mean() > self.max_area:
            return "hole_too_large"
        if surroundings(image, mask).regions > 1:
            return "structured_surroundings"
        return None

    def __call__(self, image: np.ndarray, mask: np.ndarray, prompt: str | None = None) -> np.ndarray:
        if prompt is not None:
            raise ValueError(f"{self.name} fills holes from their surroundings; it cannot paint {prompt!r}")
        box = bbox_of(mask)
        if box is None:
            return image.copy()
        height, width = mask.shape
        x0, y0, x1, y1 = box
        margin_x = int((x1 - x0) * self.context) + 8
        margin_y = int((y1 - y0) * self.context) + 8
        cx0, cy0 = max(0, x0 - margin_x), max(0, y0 - margin_y)
        cx1, cy1 = min(width, x1 + margin_x), min(height, y1 + margin_y)
        crop = image[cy0:cy1, cx0:cx1]
        crop_mask = mask[cy0:cy1, cx0:cx1]

        scale = min(1.0, self.work_size / max(crop.shape[:2]))
        size = (max(8, round(crop.shape[1] * scale)), max(8, round(crop.shape[0] * scale)))
        small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        small_hole = cv2.resize(crop_mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        # Scaling can shrink thin parts of the hole out of existence; grow it back by a pixel.
        small_hole = cv2.dilate(small_hole, np.ones((3, 3), np.uint8))
        if surroundings(crop, crop_mask).textured:
            filled = _shift_map(small, small_hole)
            grain = scale < 1.0  # copied patches keep their grain unless they were downscaled
        else:
            filled = cv2.inpaint(small, small_hole * 255, max(3, round(5 * scale)), cv2.INPAINT_TELEA)
            grain = True  # diffusion is smoother than any photo
        fill = cv2.resize(filled, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_CUBIC).astype(
            np.float32
        )
        if grain:
            fill += self._grain(crop, crop_mask, mask_seed=x0 * 7919 + y0)

        alpha = crop_mask.astype(np.float32)
        core = cv2.erode(
            crop_mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(self.feather, 1)
        )
        if self.feather > 0 and core.any():  # a hole thinner than the feather is replaced whole
            blurred = cv2.GaussianBlur(core.astype(np.float32), (0, 0), self.feather / 2)
            alpha = np.where(crop_mask, blurred, 0.0)
        out = image.copy()
        blended = crop * (1.0 - alpha[..., None]) + fill * alpha[..., None]
        out[cy0:cy1, cx0:cx1] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
        return out

    def _grain(self, crop: np.ndarray, hole: np.ndarray, mask_seed: int) -> np.ndarray:
        """Gaussian grain with the per-channel strength of the fine detail around the hole."""
        ring = ring_of(hole.astype(bool), 6)
        if ring.sum() < 16:
            return np.zeros(crop.shape, np.float32)
        detail = crop.astype(np.float32) - cv2.GaussianBlur(crop.astype(np.float32), (0, 0), 1.5)
        # Median absolute deviation: edges crossing the ring would inflate a plain standard deviation.
        strength = 1.4826 * np.median(np.abs(detail[ring]), axis=0)
        rng = np.random.default_rng(self.seed + mask_seed)
        noise = rng.standard_normal(crop.shape[:2]).astype(np.float32)[..., None]  # luminance-like grain
        return cv2.GaussianBlur(noise, (0, 0), 0.6)[..., None] * strength


def _shift_map(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """OpenCV's shift-map inpainting (its mask convention: 0 = missing)."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    filled = np.zeros_like(bgr)
    cv2.xphoto.inpaint(bgr, (1 - hole) * 255, filled, cv2.xphoto.INPAINT_SHIFTMAP)
    return cv2.cvtColor(filled, cv2.COLOR_BGR2RGB)
