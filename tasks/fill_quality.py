"""Is a hole fillable from its surroundings, and does a fill look like them? Measurements on pixels alone.

Used by the removal tasks (to choose a fill and to reject what a person would reject) and by the offline
judge (annotators/judge), so a pair is measured the same way when it is made and when it is judged.

Everything is measured on a ring of pixels around the hole, as wide as a fifth of the hole's size:

- `surroundings`: the ring's texture energy (fine detail, in grey levels) and how many distinct colour
  regions the hole's boundary touches. One region (a table top, grass, sky) can be continued into the hole;
  several (a saucer, its rim and the table; a hand and a coat) meet inside it, and a classical fill cannot
  draw where.
- `fill`: after the fill, inside against the ring: texture energy ratio (a smooth patch in grass is a
  texture hole), coherence excess (a diffusion fill smears into streaks), mean colour difference (a visible
  patch), colours of the removed object still present (leftovers), and the object's outline still showing
  (a ghost edge).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Median fine detail (grey levels) from which surroundings count as textured: grass measures 1.5-1.8, a
# wooden table 0.9-1.0, white paper 0.1-0.5 (the held-out photos of bench/heldout_photos.py). A diffusion
# fill on the table already shows as a smooth patch, so the table counts as textured.
TEXTURE_ENERGY = 0.7


def ring_of(hole: np.ndarray, width: int | None = None) -> np.ndarray:
    """The pixels within `width` of the hole, outside it (default: a fifth of the hole's size, 6-40 px)."""
    if width is None:
        width = int(np.clip(0.2 * np.sqrt(hole.sum()), 6, 40))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    return (cv2.dilate(hole.astype(np.uint8), kernel) > 0) & ~hole


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def detail(grey: np.ndarray) -> np.ndarray:
    """Absolute fine detail: |grey - its Gaussian blur| (texture, grain, edges)."""
    return np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 2.0))


def coherence(grey: np.ndarray, scale: float = 3.0) -> np.ndarray:
    """Per pixel, how strongly the local gradients share one orientation, 0..1 (structure tensor
    (l1 - l2) / (l1 + l2)): high along edges and streaks, low in isotropic texture and flat areas."""
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3) / 8
    jxx = cv2.GaussianBlur(gx * gx, (0, 0), scale)
    jyy = cv2.GaussianBlur(gy * gy, (0, 0), scale)
    jxy = cv2.GaussianBlur(gx * gy, (0, 0), scale)
    spread = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2)
    return spread / np.maximum(jxx + jyy, 1e-6)


@dataclass(frozen=True)
class Surroundings:
    energy: float  # median fine detail of the ring, in grey levels (0-255)
    regions: int  # distinct colour regions the hole's boundary touches (see boundary_regions)

    @property
    def textured(self) -> bool:
        return self.energy >= TEXTURE_ENERGY


def surroundings(image: np.ndarray, hole: np.ndarray) -> Surroundings:
    """How the ring around `hole` looks in `image` (the photo before the fill)."""
    ring = ring_of(hole)
    if not ring.any():
        return Surroundings(0.0, 0)
    return Surroundings(float(np.median(detail(_grey(image))[ring])), boundary_regions(image, hole))


@dataclass(frozen=True)
class FillReport:
    texture_ratio: float  # fine detail inside / in the ring (1 = the same texture; << 1 a smooth patch)
    coherence_excess: float  # mean coherence inside - in the ring (> 0: streaks the ring does not have)
    colour_difference: float  # |mean Lab inside - mean Lab of the ring|, in Lab units
    leftover: float  # fraction of the fill and its rim whose colour is the removed object's, not the ring's
    ghost: float  # fine detail along the object's outline / the ring's (a visible outline)
    seam: float  # fine detail along the hole's border / the ring's (a visible patch edge)
    novel: float  # fraction of the fill whose colour the ring does not have (a ghost, a line, a blotch)

    def problems(self, ring_energy: float) -> list[str]:
        """What a person would notice, as reasons (empty for a fill that passes)."""
        found = []
        if ring_energy >= TEXTURE_ENERGY and self.texture_ratio < 0.6:
            found.append("texture_hole")
        if self.texture_ratio > 2.5:
            found.append("noisy_fill")
        if self.coherence_excess > 0.2:
            found.append("smeared_fill")
        if self.colour_difference > 10.0:
            found.append("colour_patch")
        if self.leftover > 0.04:
            found.append("object_leftovers")
        if self.ghost > 1.8:
            found.append("ghost_outline")
        if self.seam > 1.8:
            found.append("visible_seam")
        if self.novel > 0.015:
            found.append("foreign_pixels")
        return found


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def measure_fill(
    source: np.ndarray, target: np.ndarray, hole: np.ndarray, object_mask: np.ndarray
) -> FillReport:
    """The fill of `hole` in `target` against its ring; `object_mask` (inside the hole) is what was removed
    from `source`."""
    ring = ring_of(hole)
    rim = ring_of(hole, 4)  # where an object's edge that its mask missed would show
    grey = _grey(target)
    fine = detail(grey)
    streaks = coherence(grey)
    ring_detail = float(np.median(fine[ring])) + 0.5
    lab_target, lab_source = _lab(target), _lab(source)
    ring_colours = lab_target[ring & ~rim]
    fill_colours = lab_target[hole]
    colour_difference = float(np.linalg.norm(fill_colours.mean(0) - ring_colours.mean(0)))
    # Lines show in the fine detail (a smooth ramp across a fill does not); + 1 grey level so that on a
    # flat ring a line must be visible, not just measurable, to count.
    typical = float(np.percentile(fine[ring & ~rim], 75)) + 1.0
    return FillReport(
        texture_ratio=(float(np.median(fine[hole])) + 0.5) / ring_detail,
        coherence_excess=float(streaks[hole].mean() - streaks[ring].mean()),
        colour_difference=colour_difference,
        leftover=_leftover(lab_target[hole | rim], ring_colours, lab_source[object_mask & hole]),
        ghost=_along(fine, _outline(object_mask)) / typical,
        seam=_along(fine, _outline(hole)) / typical,
        novel=_novel(cv2.blur(lab_target, (3, 3))[hole], cv2.blur(lab_target, (3, 3))[ring & ~rim]),
    )


def _centres(colours: np.ndarray, k: int) -> np.ndarray:
    sample = colours[:: max(1, len(colours) // 4000)].astype(np.float32)
    k = min(k, len(sample))
    cv2.setRNGSeed(0)  # k-means++ seeding is random: the same pixels must give the same verdict
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, _, centres = cv2.kmeans(sample, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    return centres


def _nearest(colours: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return np.min(np.linalg.norm(colours[:, None, :] - centres[None, :, :], axis=2), axis=1)


def _leftover(fill: np.ndarray, ring: np.ndarray, removed: np.ndarray) -> float:
    """Fraction of fill pixels much nearer the removed object's colours than any colour of the ring."""
    if len(removed) < 16 or len(ring) < 16 or len(fill) == 0:
        return 0.0
    object_centres, ring_centres = _centres(removed, 4), _centres(ring, 6)
    # Object colours that the surroundings also have (a white cup on a white table) prove nothing.
    distinct = object_centres[_nearest(object_centres, ring_centres) > 12.0]
    if len(distinct) == 0:
        return 0.0
    sample = fill[:: max(1, len(fill) // 20000)]
    to_object, to_ring = _nearest(sample, distinct), _nearest(sample, ring_centres)
    return float(np.mean((to_object < 8.0) & (to_object < 0.5 * to_ring)))


def _novel(fill: np.ndarray, ring: np.ndarray) -> float:
    """Fraction of fill pixels farther from every colour of the ring than almost all ring pixels are."""
    if len(fill) == 0 or len(ring) < 32:
        return 0.0
    centres = _centres(ring, 8)
    ring_sample = ring[:: max(1, len(ring) // 20000)]
    limit = float(np.percentile(_nearest(ring_sample, centres), 98)) + 3.0
    fill_sample = fill[:: max(1, len(fill) // 20000)]
    return float(np.mean(_nearest(fill_sample, centres) > limit))


def _outline(mask: np.ndarray) -> np.ndarray:
    return mask & ~cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def _along(values: np.ndarray, line: np.ndarray) -> float:
    """The 75th percentile of `values` on a line (a visible line stands out on most of its length)."""
    return float(np.percentile(values[line], 75)) if line.sum() >= 8 else 0.0


def boundary_regions(image: np.ndarray, hole: np.ndarray, min_share: float = 0.15) -> int:
    """How many distinct colour regions the hole's boundary touches (each on at least `min_share` of it).
    One: the hole sits inside one surface, which a fill can continue; more: the fill would have to draw
    where they meet."""
    inner = ring_of(hole, 4)
    colours = _lab(image)[inner]
    if len(colours) < 32:
        return 1
    centres = _centres(colours, 4)
    nearest = np.argmin(np.linalg.norm(colours[:, None, :] - centres[None], axis=2), axis=1)
    shares = np.bincount(nearest, minlength=len(centres)) / len(colours)
    # Merge centres closer than a clearly visible colour difference: shading of one surface is one region.
    groups: list[list[int]] = []
    for i in np.argsort(-shares):
        for group in groups:
            if np.linalg.norm(centres[i] - centres[group[0]]) < 15.0:
                group.append(int(i))
                break
        else:
            groups.append([int(i)])
    return sum(1 for group in groups if shares[group].sum() >= min_share)
