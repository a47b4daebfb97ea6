"""The `recolour` tool: give the part of an object that has its main colour a new named colour.

Offline backend: a move in CIE LCh. The region's lightness is shifted to the target colour's while each
pixel keeps its offset from the region's median lightness (the shading and the texture live there; see
__call__ for light and dark targets), its
chroma is set to the target's (scaled by how saturated the pixel was, so highlights stay pale), and its
hue is turned to the target's. Chroma is then lowered pixel by pixel until the colour is inside the sRGB
gamut, so no channel clips into a different hue. The weights the task hands over are soft (the edge of the
object, the edge between its main colour and its other parts), and a pixel with weight 0 is returned as it
was: nothing spills outside the region.
"""

from __future__ import annotations

import numpy as np

from annotators.registry import Plugin
from tasks.colours import GREY_CHROMA, NamedColour, chroma_hue, lab_to_rgb, rgb_to_lab
from tasks.masks import bbox_of

BACKENDS = {
    "offline": "annotators.recolour:LabRecolour",
    "models": "annotators.appearance_models:DepthRecolour",
}

_GAMUT_STEPS = (0.85, 0.7, 0.55, 0.4, 0.25, 0.1, 0.0)


def into_gamut(lightness: np.ndarray, chroma: np.ndarray, hue: np.ndarray) -> np.ndarray:
    """RGB of (L, C, h), with the chroma of out-of-gamut pixels lowered step by step until they fit."""
    radians = np.radians(hue)
    lab = np.stack([lightness, chroma * np.cos(radians), chroma * np.sin(radians)], axis=-1)
    rgb = lab_to_rgb(lab)
    outside = ((rgb < -0.002) | (rgb > 1.002)).any(axis=-1)
    for factor in _GAMUT_STEPS:
        if not outside.any():
            break
        lab[outside, 1:] = np.stack(
            [
                chroma[outside] * factor * np.cos(radians[outside]),
                chroma[outside] * factor * np.sin(radians[outside]),
            ],
            axis=-1,
        )
        rgb[outside] = lab_to_rgb(lab[outside])
        outside = ((rgb < -0.002) | (rgb > 1.002)).any(axis=-1)
    return np.clip(rgb, 0.0, 1.0)


def signed_hue_difference(hue: np.ndarray, centre: float) -> np.ndarray:
    return (hue - centre + 180.0) % 360.0 - 180.0


class LabRecolour(Plugin):
    name = "lab_recolour"
    version = "1"

    def __init__(
        self, models_dir: str | None = None, hue_variation: float = 0.3, max_hue_offset: float = 15.0
    ) -> None:
        super().__init__(models_dir)
        # The region's own hue variation is kept, scaled and bounded: highlights and edge pixels that mix
        # in the background's hue would otherwise turn into a third colour (a pink glint on a blue apple).
        self.hue_variation = hue_variation
        self.max_hue_offset = max_hue_offset

    def __call__(
        self,
        image: np.ndarray,
        weights: np.ndarray,
        colour: NamedColour,
        subject: str,
        depth: np.ndarray | None = None,
    ) -> np.ndarray:
        """``image`` HxWx3 uint8; ``weights`` HxW float in [0, 1], the region to recolour; ``subject`` and
        ``depth`` guide the model backend (the offline shift keeps the photo's own lightness instead)."""
        box = bbox_of(weights > 0)
        if box is None:
            return image.copy()
        x0, y0, x1, y1 = box
        crop = image[y0:y1, x0:x1]
        alpha = weights[y0:y1, x0:x1].astype(np.float32)
        lab = rgb_to_lab(crop)
        lightness = lab[..., 0]
        chroma, hue = chroma_hue(lab)
        core = alpha > 0.5
        if core.sum() < 16:
            core = alpha > 0
        source = np.median(lab[core], axis=0)
        source_chroma, source_hue = chroma_hue(source)
        target = colour.lab
        target_chroma, target_hue = chroma_hue(target)

        # Lightness: the target's, plus each pixel's offset from the region's median (the shading and the
        # texture). A light or dark target has no room for that on one side: the whole region first moves
        # away from the limit (a white object is white in the light and grey in its shadows), by at most
        # 15 so it stays the colour asked for, and only what still does not fit is compressed. The room is
        # measured to the 90th and 10th percentiles: the brightest tenth is mostly glints, which may clip.
        median_l = float(source[0])
        high = float(np.percentile(lightness[core], 90)) - median_l + target[0]
        low = float(np.percentile(lightness[core], 10)) - median_l + target[0]
        shift = -min(max(high - 97.0, 0.0), 15.0) + min(max(3.0 - low, 0.0), 15.0)
        centre = target[0] + shift
        room_above, room_below = (
            (97.0 - centre) / max(high - target[0], 1.0),
            (centre - 3.0) / max(target[0] - low, 1.0),
        )
        gain = min(1.0, room_above, room_below)
        new_l = centre + max(gain, 0.3) * (lightness - median_l)

        # A near-black region's hue and chroma are mostly noise: scaling them would speckle the new colour.
        if source_chroma >= GREY_CHROMA and median_l >= 25.0:
            new_c = target_chroma * np.clip(chroma / source_chroma, 0.0, 1.5)
            offset = self.hue_variation * signed_hue_difference(hue, float(source_hue))
            new_h = target_hue + np.clip(offset, -self.max_hue_offset, self.max_hue_offset)
        else:
            new_c = np.full_like(chroma, target_chroma)
            new_h = np.full_like(hue, target_hue)
        # Near white and near black a surface holds little colour: speculars stay white, deep shadows dark.
        new_c = new_c * np.clip(np.minimum(new_l, 100.0 - new_l) / 18.0, 0.0, 1.0)

        recoloured = into_gamut(np.clip(new_l, 0.0, 100.0), new_c, new_h % 360.0) * 255.0
        blended = crop.astype(np.float32) * (1.0 - alpha[..., None]) + recoloured * alpha[..., None]
        out = image.copy()
        out[y0:y1, x0:x1] = np.where(
            alpha[..., None] > 0, np.clip(np.round(blended), 0, 255).astype(np.uint8), crop
        )
        return out
