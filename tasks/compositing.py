"""Putting pixels of one photo into another: mattes, colour harmonisation and alpha compositing.

Shared by subject_replacement (an object cut from another photo, pasted over the old one) and
background_change (a subject kept, everything around it taken from another photo). Pure numpy/OpenCV.

- `refine_matte`: label masks (COCO polygons, segmenter output) are coarse at the edge. GrabCut, run only in
  a band around the edge, snaps the cut to the colour boundary; a guided filter with the photo as guide then
  turns the hard cut into a soft alpha that follows hair and fur. The core of the mask stays opaque and the
  far outside stays transparent, whatever GrabCut decides.
- `matte_defects`: what a person sees in a bad matte: holes of foreground colour punched into the subject,
  and a halo (a rim of the old background carried along with the subject).
- `harmonise`: moves an object's colours by the difference between the lighting of the scene it came from
  and the scene it goes to (Lab means and spreads measured on each scene), so a part of a warm indoor photo
  pasted into a cool outdoor one turns cooler, and a colour object in a greyscale photo loses its colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tasks.masks import bbox_of

GREY_CHROMA = 4.0  # mean Lab chroma below which a photo is greyscale (a scan, a black-and-white print)


def to_lab(image: np.ndarray) -> np.ndarray:
    """RGB uint8 -> CIE Lab float32 (L 0-100, a and b about -128..127)."""
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def from_lab(lab: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


def ring(mask: np.ndarray, inner: int, outer: int) -> np.ndarray:
    """Pixels between `inner` and `outer` pixels outside the mask (a band of its surroundings)."""
    near = cv2.dilate(mask.astype(np.uint8), _disc(inner)) > 0 if inner > 0 else mask
    far = cv2.dilate(mask.astype(np.uint8), _disc(outer)) > 0
    return far & ~near


def _disc(radius: int) -> np.ndarray:
    radius = max(1, int(radius))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def erode(mask: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return mask.copy()
    return cv2.erode(mask.astype(np.uint8), _disc(radius)) > 0


def refine_matte(image: np.ndarray, mask: np.ndarray, band: int, work_size: int = 320) -> np.ndarray:
    """A soft alpha (float32 0..1) for ``mask``, its edge moved onto the photo's colour boundary.

    GrabCut decides every pixel of the mask but its deep core (more than three ``band`` inside the edge),
    and the pixels within ``band / 2`` outside it; farther outside stays background. Hand-drawn polygons and
    coarse segmenters include strips of background wider than any fixed band, which is why the whole mask
    is open to GrabCut's colour models; they rarely leave out more than a few pixels of the object, while
    GrabCut readily claims a neighbour of like colour that touches it (a flag's star above a dark cap), so
    the matte may grow only a little. It runs on a crop around the mask, at most ``work_size`` pixels on
    its longer side (GrabCut's cost grows with the pixel count).
    """
    box = bbox_of(mask)
    if box is None:
        return np.zeros(mask.shape, np.float32)
    height, width = mask.shape
    margin = 3 * band
    x0, y0 = max(0, box[0] - margin), max(0, box[1] - margin)
    x1, y1 = min(width, box[2] + margin), min(height, box[3] + margin)
    crop, crop_mask = image[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    scale = min(1.0, work_size / max(crop.shape[:2]))
    size = (max(8, round(crop.shape[1] * scale)), max(8, round(crop.shape[0] * scale)))
    small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(crop_mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    small_band = max(2, round(band * scale))
    reach = max(2, band // 2)

    core = erode(small_mask, 3 * small_band)
    outside = ~(cv2.dilate(small_mask.astype(np.uint8), _disc(max(1, round(reach * scale)))) > 0)
    seeds = np.where(small_mask, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    seeds[core] = cv2.GC_FGD
    seeds[_thin_parts(small_mask, max(1, small_band // 2))] = cv2.GC_FGD
    seeds[outside] = cv2.GC_BGD
    cut = small_mask
    if core.any() and outside.any():  # GrabCut needs both definite classes to model their colours
        cv2.setRNGSeed(0)  # GrabCut seeds its colour models from OpenCV's global RNG: same input, same cut
        models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), seeds, None, *models, 6, cv2.GC_INIT_WITH_MASK)
        cut = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    cut = _fill_small_holes(_largest_components(cut, core), 0.002 * float(cut.sum()))

    # The cut, scaled back to the crop, is softened by a guided filter at full size with the photo as
    # guide: the edge follows the photo's own edges (hair, fur) that the small cut could not see.
    full = (crop.shape[1], crop.shape[0])
    cut_full = cv2.resize(cut.astype(np.float32), full, interpolation=cv2.INTER_LINEAR)
    guide = crop.astype(np.float32) / 255.0
    soft = cv2.ximgproc.guidedFilter(guide, cut_full, 2, 1e-4)
    # The filter spreads even a crisp edge over 6-8 pixels, which reads as a dark or light glow round the
    # subject on a new background: steepen it to the 2-3 pixels of a photo's own edges.
    soft = np.clip((soft - 0.5) * 2.5 + 0.5, 0.0, 1.0)
    soft[cv2.resize(core.astype(np.uint8), full, interpolation=cv2.INTER_NEAREST) > 0] = 1.0
    soft[cv2.resize(outside.astype(np.uint8), full, interpolation=cv2.INTER_NEAREST) > 0] = 0.0
    alpha = np.zeros(mask.shape, np.float32)
    alpha[y0:y1, x0:x1] = soft
    # GrabCut's cut tends to keep a one-pixel line of the old background along the edge (a light fringe
    # round dark hair on any new background): pull the alpha in by a pixel.
    alpha = cv2.erode(alpha, np.ones((3, 3), np.uint8))
    # What was certain at full size stays certain (the small crop blurs the core's edge).
    alpha[erode(mask, 3 * band)] = 1.0
    alpha[~(cv2.dilate(mask.astype(np.uint8), _disc(reach)) > 0)] = 0.0
    _thin_alpha(image, alpha, _thin_parts(mask, max(1, band // 2)))
    return alpha


def _thin_alpha(image: np.ndarray, alpha: np.ndarray, thin: np.ndarray) -> None:
    """Alpha of thin parts (an antenna, a stem: a pixel or two wide, every pixel a mix of the part and what
    is behind it) from their lightness, in place: a difference matte, 0 at the lightness of the background
    beside them, 1 at the part's own (its darkest, or lightest, few pixels)."""
    if not thin.any():
        return
    near = cv2.dilate(thin.astype(np.uint8), _disc(2)) > 0
    lab = to_lab(image)
    lightness = lab[..., 0]
    behind = _local_mean(lab, (alpha <= 0.02) & ~near, sigma=3.0)[..., 0]
    around = float(np.nanmedian(behind[thin])) if np.isfinite(behind[thin]).any() else np.nan
    if not np.isfinite(around):
        return
    dark = float(np.median(lightness[thin])) < around
    own = float(np.percentile(lightness[thin], 5 if dark else 95))
    contrast = behind - own
    with np.errstate(invalid="ignore", divide="ignore"):
        mixed = (behind - lightness) / contrast
    usable = near & np.isfinite(mixed) & (np.abs(contrast) > 10.0)
    alpha[usable] = np.clip(mixed[usable], 0.0, 1.0)


def _thin_parts(mask: np.ndarray, radius: int) -> np.ndarray:
    """The parts of ``mask`` narrower than a disc of ``radius`` (an apple's stem, a hand's fingers), as
    a label draws them only where they are: GrabCut's smoothness would shave them off. Specks and the
    unevenness of the label's edge, left by the same opening, are too small to count."""
    opened = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, _disc(radius)) > 0
    parts = (mask & ~opened).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(parts, connectivity=8)
    keep = [index for index in range(1, count) if stats[index, cv2.CC_STAT_AREA] >= 3 * radius * radius]
    return np.isin(labels, keep)


def _largest_components(cut: np.ndarray, core: np.ndarray) -> np.ndarray:
    """Keep the parts of the cut connected to the core: GrabCut can claim specks of the background."""
    count, labels = cv2.connectedComponents(cut.astype(np.uint8), connectivity=8)
    if count <= 2 or not core.any():
        return cut
    keep = np.unique(labels[core & cut])
    return np.isin(labels, keep[keep > 0])


def best_matte(
    image: np.ndarray, label: np.ndarray, band: int, max_halo: float, max_dropped: float, max_holes: float
) -> tuple[np.ndarray, MatteDefects] | tuple[None, MatteDefects]:
    """The refined matte when it is clean; else the label's own mask with a feathered edge when that is
    clean (GrabCut drops parts whose colour the background shares: the red foot of a cup on a red saucer);
    else None, with the refined matte's defects."""
    refined = refine_matte(image, label, band)
    defects = matte_defects(image, refined, label, band)
    if defects.halo <= max_halo and defects.dropped <= max_dropped and defects.holes <= max_holes:
        return refined, defects
    plain = feathered(label, max(1.5, band / 6))
    plain_defects = matte_defects(image, plain, label, band)
    if plain_defects.halo <= max_halo and plain_defects.holes <= max_holes:
        return plain, plain_defects
    return None, defects


def _fill_small_holes(cut: np.ndarray, max_area: float) -> np.ndarray:
    """Close holes smaller than ``max_area`` pixels (an eye's highlight, a button GrabCut gave away); larger
    ones may be real (the gap under an arm), and matte_defects judges them."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats((~cut).astype(np.uint8), connectivity=4)
    height, width = cut.shape
    filled = cut.copy()
    for index in range(1, count):
        x, y, w, h, area = stats[index]
        inner = x > 0 and y > 0 and x + w < width and y + h < height
        if inner and area < max_area:
            filled[labels == index] = True
    return filled


@dataclass(frozen=True)
class MatteDefects:
    holes: float  # area of foreground-coloured holes inside the subject, over the subject's area
    halo: float  # share of the subject's rim whose colour is the old background's, not the subject's
    dropped: float  # parts of the label the matte left out though their colour is no background's
    unseen: float = 0.0  # share of the rim where subject and old background look alike: the cut is a guess


def matte_defects(image: np.ndarray, alpha: np.ndarray, label: np.ndarray, band: int) -> MatteDefects:
    """Holes, halo and dropped parts of a matte refined from ``label``, measured on its photo.

    - A hole (a background region enclosed by the subject) is a defect when its colour is the surrounding
      subject's, not the background's: a gap between an arm and a body shows the background and is fine; a
      piece of shirt missing from the matte is not.
    - The rim is the outer 3 pixels of the opaque matte; a rim pixel is a halo pixel when its colour is much
      nearer the background just outside than the subject just inside. Where the two are of similar colour
      (less than 12 apart in Lab) neither can be seen, and those pixels are not counted.
    - Dropped: label pixels deep inside the label that the matte left out. Colour models (Lab histograms) of
      the subject's interior and of the surroundings say whether such a pixel is background (a strip of wall
      a rough polygon took in: rightly dropped) or could be either (the red foot of a cup on a red saucer:
      the matte cannot tell, and the subject would lose a part).
    """
    subject = alpha > 0.5
    area = float(subject.sum())
    if area == 0:
        return MatteDefects(holes=1.0, halo=1.0, dropped=1.0, unseen=1.0)
    lab = to_lab(image)
    background = alpha < 0.02

    # Holes: background components that do not touch the image border.
    count, labels = cv2.connectedComponents((~subject).astype(np.uint8), connectivity=4)
    border = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])).tolist())
    outer = np.isin(labels, list(border)) & background
    bg_colour = lab[outer].mean(axis=0) if outer.any() else None
    bad_holes = 0.0
    for index in range(1, count):
        if index in border:
            continue
        hole = labels == index
        size = float(hole.sum())
        if size < 0.0005 * area:
            continue
        around = ring(hole, 1, 4) & subject
        if not around.any() or bg_colour is None:
            bad_holes += size
            continue
        hole_colour = lab[hole].mean(axis=0)
        if np.linalg.norm(hole_colour - lab[around].mean(axis=0)) < np.linalg.norm(hole_colour - bg_colour):
            bad_holes += size

    interior = erode(subject, max(2, band // 2))
    surroundings = background & ring(subject, max(2, band // 2), 3 * band)
    dropped = 0.0
    lost = erode(label, max(1, band // 4)) & ~subject
    if lost.any() and interior.sum() >= 50 and surroundings.sum() >= 50:
        bins = _colour_bins(lab)
        fg_model, bg_model = _histogram(bins, interior), _histogram(bins, surroundings)
        clearly_background = bg_model[bins[lost]] > 4.0 * fg_model[bins[lost]]
        dropped = float((~clearly_background).sum()) / area

    opaque = alpha > 0.95
    rim = opaque & ~erode(opaque, 3)
    inside = erode(opaque, 5) & ~erode(opaque, 12)
    outside = background & ring(subject, 2, 10)
    halo = unseen = 0.0
    if rim.any() and inside.any() and outside.any():
        fg_local = _local_mean(lab, inside, sigma=6.0)
        bg_local = _local_mean(lab, outside, sigma=6.0)
        measured = rim & np.isfinite(fg_local[..., 0]) & np.isfinite(bg_local[..., 0])
        valid = measured & (np.linalg.norm(np.nan_to_num(fg_local - bg_local), axis=-1) > 12.0)
        if measured.sum() >= 20:
            unseen = 1.0 - float(valid.sum()) / float(measured.sum())
        if valid.sum() >= 20:
            to_fg = np.linalg.norm(np.nan_to_num(lab - fg_local), axis=-1)
            to_bg = np.linalg.norm(np.nan_to_num(lab - bg_local), axis=-1)
            halo = float((valid & (to_bg < 0.5 * to_fg)).sum()) / float(valid.sum())
    return MatteDefects(holes=bad_holes / area, halo=halo, dropped=dropped, unseen=unseen)


def _local_mean(lab: np.ndarray, where: np.ndarray, sigma: float) -> np.ndarray:
    """The mean colour of ``where`` pixels near each pixel (NaN where there are none nearby)."""
    weight = cv2.GaussianBlur(where.astype(np.float32), (0, 0), sigma)
    total = cv2.GaussianBlur(lab * where[..., None].astype(np.float32), (0, 0), sigma)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / weight[..., None]
    mean[weight < 1e-3] = np.nan
    return mean


def _colour_bins(lab: np.ndarray, per_axis: int = 8) -> np.ndarray:
    """Each pixel's bin in a per_axis^3 grid over Lab (L 0-100, a and b -100..100)."""
    l_bin = np.clip(lab[..., 0] / 100.0 * per_axis, 0, per_axis - 1).astype(np.int32)
    a_bin = np.clip((lab[..., 1] + 100.0) / 200.0 * per_axis, 0, per_axis - 1).astype(np.int32)
    b_bin = np.clip((lab[..., 2] + 100.0) / 200.0 * per_axis, 0, per_axis - 1).astype(np.int32)
    return (l_bin * per_axis + a_bin) * per_axis + b_bin


def _histogram(bins: np.ndarray, where: np.ndarray, per_axis: int = 8) -> np.ndarray:
    counts = np.bincount(bins[where], minlength=per_axis**3).astype(np.float64) + 0.5  # Laplace smoothing
    return counts / counts.sum()


@dataclass(frozen=True)
class SceneLight:
    """Lab statistics of a scene (or part of one): what its light does to the colours in it."""

    mean: np.ndarray  # (3,) L, a, b
    std: np.ndarray  # (3,)
    chroma: float  # mean sqrt(a^2 + b^2): near 0 for a greyscale photo

    @classmethod
    def of(cls, image: np.ndarray, where: np.ndarray) -> SceneLight:
        lab = to_lab(image)[where]
        if lab.size == 0:
            lab = to_lab(image).reshape(-1, 3)
        return cls(lab.mean(axis=0), lab.std(axis=0) + 1e-3, float(np.hypot(lab[:, 1], lab[:, 2]).mean()))


def harmonise(
    image: np.ndarray,
    where: np.ndarray,
    origin: SceneLight,
    destination: SceneLight,
    strength: float,
    limit: float = 100.0,
    greyscale: bool = False,
) -> np.ndarray:
    """``image`` with the pixels of ``where`` relit from the ``origin`` scene's light to the
    ``destination``'s, by ``strength`` (0: unchanged, 1: the full difference).

    Brightness moves by the difference of the scenes' mean L (the object keeps its own contrast) and the
    colour cast by the difference of their mean a, b. In a ``greyscale`` destination photo, chroma is
    scaled by the ratio of the scenes' chroma (a colour object in a greyscale photo loses its colour; a
    grey object is never coloured in); a scene that is only less colourful (a hazy sky, a white table)
    takes no colour away. No mean moves by more than ``limit`` Lab units.
    """
    if strength <= 0 or not where.any():
        return image.copy()
    lab = to_lab(image)
    pixels = lab[where]
    shift = np.clip(strength * (destination.mean - origin.mean), -limit, limit)
    out = pixels.copy()
    out[:, 0] = pixels[:, 0] + shift[0]
    chroma_ratio = 1.0
    if greyscale and destination.chroma < origin.chroma:
        # Fully: a greyscale photo has no colour to give anything, whatever the strength.
        chroma_ratio = destination.chroma / max(origin.chroma, 1e-3)
    out[:, 1:] = (pixels[:, 1:] + shift[1:]) * chroma_ratio
    out[:, 0] = np.clip(out[:, 0], 0, 100)
    lab = lab.copy()
    lab[where] = out
    result = image.copy()
    result[where] = from_lab(lab)[where]
    return result


def decontaminate(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The subject's own colours at its soft edge: ``image`` with the old background taken out of the
    pixels where the matte is partly transparent (I = aF + (1-a)B solved for F, B being the old background
    colour nearby). Without this, a light wall behind dark hair leaves a light fringe on any new background.
    Fully opaque pixels are returned as they are."""
    edge = (alpha > 0.0) & (alpha < 1.0)
    if not edge.any():
        return image.copy()
    lab = image.astype(np.float32)
    behind = _local_mean(lab, alpha <= 0.0, sigma=4.0)
    inside = _local_mean(lab, alpha >= 1.0, sigma=4.0)
    a = np.clip(alpha, 0.25, 1.0)[..., None]
    solved = (lab - (1.0 - a) * np.nan_to_num(behind, nan=0.0)) / a
    # Where no old background is near, or the solution leaves the colour range, the nearby subject colour
    # is the better guess.
    fallback = np.where(np.isfinite(inside), inside, lab)
    bad = ~np.isfinite(behind[..., 0]) | (solved.min(axis=-1) < -20) | (solved.max(axis=-1) > 275)
    solved = np.where(bad[..., None], fallback, solved)
    # The solution lies beyond the observed colour, away from the background; it may not overshoot the
    # subject's own colours nearby (an alpha a little too low would make bright specks along the edge).
    solved = np.clip(solved, np.minimum(lab, fallback), np.maximum(lab, fallback))
    out = image.copy()
    out[edge] = np.clip(np.round(solved[edge]), 0, 255).astype(np.uint8)
    return out


def composite(background: np.ndarray, foreground: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """foreground over background with a soft alpha (float 0..1); pixels at alpha 1 are foreground's
    exactly, at alpha 0 background's exactly."""
    a = alpha[..., None].astype(np.float32)
    mixed = foreground.astype(np.float32) * a + background.astype(np.float32) * (1.0 - a)
    out = np.clip(np.round(mixed), 0, 255).astype(np.uint8)
    out[alpha >= 1.0] = foreground[alpha >= 1.0]
    out[alpha <= 0.0] = background[alpha <= 0.0]
    return out


def feathered(mask: np.ndarray, radius: float) -> np.ndarray:
    """A soft alpha from a hard mask: opaque inside, falling to 0 at the mask's edge over ``radius`` px
    (the edge moves inwards, so nothing outside the mask shows through)."""
    if radius <= 0:
        return mask.astype(np.float32)
    inner = erode(mask, max(1, round(radius / 2)))
    soft = cv2.GaussianBlur(inner.astype(np.float32), (0, 0), radius / 2)
    soft = np.where(mask, soft, 0.0).astype(np.float32)
    soft[erode(mask, round(radius) + 1)] = 1.0
    return soft
