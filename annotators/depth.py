"""The `depth` tool: how near each pixel is, for edits that must follow an object's shape.

Offline backend: no depth weights ship in any package, so nothing here measures depth. What it gives is a
shape prior from the object's outline, the "inflated silhouette" of sketch-based modelling: the object is
taken to be round, highest in the middle of its silhouette and falling to its outline with a circular
profile. That is right for the cups, fruit, balls, pots and bottles that material edits mostly get, and the
texture it bends around them reads as wrapping; on a flat object it bends the texture a little anyway.
Shading in a photo says more than that, but it mixes the object's own paint and pattern into the
estimate, which is what a texture transfer must not copy (see annotators/retexture.py).

Models backend (annotators/depth_models.py): Depth Anything through transformers, relative depth of the
whole photo.

Both return HxW float32 in [0, 1], 1 = nearest.
"""

from __future__ import annotations

import cv2
import numpy as np

from annotators.registry import Plugin
from tasks.masks import bbox_of

BACKENDS = {
    "offline": "annotators.depth:SilhouetteDepth",
    "models": "annotators.depth_models:DepthAnythingDepth",
}


class SilhouetteDepth(Plugin):
    name = "silhouette_inflation"
    version = "1"

    def __call__(self, image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """``mask`` (HxW bool) is required: the prior is a shape inflated from it; 0 outside it."""
        if mask is None:
            raise ValueError(f"{self.name} inflates an object's silhouette and needs its mask")
        depth = np.zeros(mask.shape, np.float32)
        box = bbox_of(mask)
        if box is None:
            return depth
        x0, y0, x1, y1 = box
        crop = np.pad(mask[y0:y1, x0:x1], 1).astype(np.uint8)  # a border of 0: the outline is depth 0
        distance = cv2.distanceTransform(crop, cv2.DIST_L2, 5)
        peak = float(distance.max())
        # The distance transform has a crease along the shape's medial axis; a blur of a sixth of the
        # largest inscribed radius rounds it off, and the mask puts the outline back to 0.
        distance = cv2.GaussianBlur(distance, (0, 0), max(1.0, peak / 6)) * crop
        t = np.clip(distance / max(float(distance.max()), 1e-6), 0.0, 1.0)
        height = np.sqrt(1.0 - (1.0 - t) ** 2)  # circular cross-section: steep at the outline, flat on top
        depth[y0:y1, x0:x1] = height[1:-1, 1:-1]
        return depth
