"""How cleanly an edit's outline was cut: what the judge reads along the border between the pixels an edit
replaced (a new background, a new object) and those it kept.

Along that border each pixel of the source is compared with the colours on either side of it nearby: the
kept side (further from the border) and the replaced side (further into the edit). A clean cut keeps only
what looks like the kept side and replaces only what looks like the replaced side. Two faults are counted:

- `rim_left`: kept pixels along the border that look like what was replaced: a halo of the old background
  round a subject, or a rim of the old object round the new one;
- `cut_in`: replaced pixels along the border that looked like the kept side: a matte that bit into the
  subject (a cut-away foot, a shaved edge).
Both are fractions of their band; the colours are CIELAB of the source, compared through local means.
"""

from __future__ import annotations

import cv2
import numpy as np

BAND_PX = 3  # the band each side of the border that is checked
REACH_PX = 10  # how far from the border the colours of each side are taken
MARGIN = 6.0  # CIE76: a pixel counts for the other side when it is this much closer to that side's colour


def _within(mask: np.ndarray, px: int) -> np.ndarray:
    """Pixels within `px` of `mask` (a disc), mask included."""
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), disc) > 0


def _local_mean(lab: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the mean colour of `mask`'s pixels nearby, and whether there are any."""
    weight = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), REACH_PX / 2)
    total = cv2.GaussianBlur(lab * mask[..., None].astype(np.float32), (0, 0), REACH_PX / 2)
    return total / np.maximum(weight, 1e-6)[..., None], weight > 0.02


def matte_measures(lab_source: np.ndarray, replaced: np.ndarray) -> dict[str, float]:
    """`rim_left` and `cut_in` (see the module docstring) of the edit that replaced the `replaced` pixels."""
    kept = ~replaced
    near_replaced, near_kept = _within(replaced, BAND_PX), _within(kept, BAND_PX)
    kept_band, replaced_band = kept & near_replaced, replaced & near_kept
    # Each side's own colours, taken beyond the band: what a clean cut would find either side of the border.
    kept_side = kept & ~_within(replaced, BAND_PX + 2) & _within(replaced, REACH_PX + BAND_PX)
    replaced_side = replaced & ~_within(kept, BAND_PX + 2) & _within(kept, REACH_PX + BAND_PX)
    if not (kept_band.any() and replaced_band.any() and kept_side.any() and replaced_side.any()):
        return {"rim_left": 0.0, "cut_in": 0.0}
    kept_mean, kept_known = _local_mean(lab_source, kept_side)
    replaced_mean, replaced_known = _local_mean(lab_source, replaced_side)
    to_kept = np.linalg.norm(lab_source - kept_mean, axis=2)
    to_replaced = np.linalg.norm(lab_source - replaced_mean, axis=2)
    known = kept_known & replaced_known
    like_replaced = known & (to_replaced + MARGIN < to_kept)
    like_kept = known & (to_kept + MARGIN < to_replaced)
    return {
        "rim_left": float(like_replaced[kept_band].sum()) / max(float((kept_band & known).sum()), 1.0),
        "cut_in": float(like_kept[replaced_band].sum()) / max(float((replaced_band & known).sum()), 1.0),
    }
