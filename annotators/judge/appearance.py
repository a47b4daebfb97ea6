"""Measurements the offline judge takes for appearance edits: a named colour, a new material, a style, text.

All take the pair at the judge's working size (RGB uint8) and, for the local ones, the edited region found
from the change map (annotators/judge/heuristic.py). None reads the task's parameters or mask.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from tasks.colours import TARGETS_BY_KEY, chroma_hue, delta_e94, hue_distance

# Lab (OpenCV float: L 0..100) of a colour the instruction names lies within this CIE94 distance of the
# region's median colour when a person would call the region by that name.
SOFT_EDGE_SHARE = 0.001  # a source with fewer fixed-threshold edge pixels is too soft for them (see style)
EDGE_STRENGTH = 20.0  # Sobel of Lab (lightness plus colour, smoothed) below which the source has no edge


def colour_measures(
    lab_source: np.ndarray, lab_target: np.ndarray, region: np.ndarray, colour_key: str | None
) -> dict[str, float]:
    """How far the region's new colour is from the colour asked for (CIE94 of the median, and the hue angle
    for a chromatic colour), how far its old colour was, and how much of the same old colour was left
    unchanged around the region (half an object recoloured, or only its outline)."""
    old = np.median(lab_source[region], axis=0)
    new = np.median(lab_target[region], axis=0)
    measures: dict[str, float] = {"colour_asked": 0.0, "left_behind": _cut_through(lab_source, region)}
    if colour_key is None or colour_key not in TARGETS_BY_KEY:
        return measures
    named = TARGETS_BY_KEY[colour_key]
    aim = named.lab
    measures.update(
        colour_asked=1.0,
        colour_error=float(delta_e94(aim, new[None])[0]),
        colour_error_before=float(delta_e94(aim, old[None])[0]),
    )
    if named.chromatic:
        chroma, hue = chroma_hue(new)
        _, aim_hue = chroma_hue(aim)
        measures["hue_error"] = float(hue_distance(hue, aim_hue)) if chroma > 8 else 180.0
    else:
        measures["hue_error"] = 0.0 if float(np.hypot(new[1], new[2])) < 20 else 90.0
    return measures


def _palette(lab: np.ndarray) -> np.ndarray:
    """The Lab colours that sum up a set of pixels: the mean of each cell of a 10 x 16 x 16 grid (L, a, b)
    holding at least 1 % of them (deterministic, unlike k-means with random seeds)."""
    cells = np.floor(lab / (10.0, 16.0, 16.0)).astype(np.int32)
    _, inverse, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    sums = np.zeros((len(counts), 3))
    np.add.at(sums, inverse, lab)
    kept = counts >= max(1, 0.01 * len(lab))
    return (sums[kept] / counts[kept, None]).astype(np.float32)


def old_colour_rim(lab_source: np.ndarray, lab_target: np.ndarray, region: np.ndarray) -> float:
    """Share of the unchanged band along the edited region's outline (3 pixels wide, in the target) whose
    colour is one the region had before and not one of the unchanged side, nor the region's new colour: a
    matte halo of the old background around a kept subject, the old object's rim around its replacement,
    the part of a surface a recolouring left in the old colour."""
    kept = ~region
    band = kept & (cv2.dilate(region.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0)
    inner = cv2.erode(kept.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    if band.sum() < 20 or inner.sum() < 50 or region.sum() < 50:
        return 0.0
    pixels = lab_target[band]

    def nearest(centres: np.ndarray) -> np.ndarray:
        return np.linalg.norm(pixels[:, None, :] - centres[None], axis=2).min(axis=1)

    to_old, to_kept = nearest(_palette(lab_source[region])), nearest(_palette(lab_source[inner]))
    to_new = np.linalg.norm(pixels - np.median(lab_target[region], axis=0), axis=1)
    return float(((to_old < 0.5 * to_kept) & (to_old < 12) & (to_new > 15)).mean())


def _cut_through(lab_source: np.ndarray, region: np.ndarray) -> float:
    """Share of the region's outline that runs where the source has no edge: a recolouring that stops in
    the middle of a surface (half an object, only its rim) and leaves the rest in the old colour."""
    outline = region & ~(cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    if not outline.any():
        return 0.0
    smooth = cv2.GaussianBlur(lab_source, (0, 0), 1.0)
    strength = sum(
        np.hypot(cv2.Sobel(smooth[..., c], cv2.CV_32F, 1, 0), cv2.Sobel(smooth[..., c], cv2.CV_32F, 0, 1))
        for c in range(3)
    )
    strength = cv2.dilate(strength, np.ones((5, 5), np.uint8))  # the outline may sit a pixel or two off
    return float((strength[outline] < EDGE_STRENGTH).mean())


def _fine(grey: np.ndarray) -> np.ndarray:
    return np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 1.5))


def _edges(grey: np.ndarray, high: float = 150.0) -> np.ndarray:
    return cv2.Canny(cv2.GaussianBlur(grey, (0, 0), 2.0).astype(np.uint8), high / 3, high) > 0


def _scene_edge_f1(g_source: np.ndarray, g_target: np.ndarray) -> float:
    """F1 of the scene's edges in the source and the target. On a soft photo (an apple on cloth, out of focus)
    the fixed thresholds find a few dozen edge pixels, and an F1 of those is noise: any stroke a style draws
    counts against it. There the thresholds come from the source's own contrast (its 90th percentile of
    gradient), the same for both pictures, so a target that washes the scene away still loses its edges."""
    edges = _edges(g_source)
    if edges.mean() >= SOFT_EDGE_SHARE:
        return edge_f1(edges, _edges(g_target))
    smooth = cv2.GaussianBlur(g_source, (0, 0), 2.0).astype(np.uint8)
    magnitude = np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    high = float(np.clip(np.quantile(magnitude, 0.9), 30.0, 150.0))
    return edge_f1(_edges(g_source, high), _edges(g_target, high))


def edge_f1(a: np.ndarray, b: np.ndarray, tolerance: int = 2, within: np.ndarray | None = None) -> float:
    """F1 of two edge maps matched within `tolerance` pixels (optionally only where `within`); 1.0 when
    neither has an edge there."""
    if within is not None:
        a, b = a & within, b & within
    if not a.any() and not b.any():
        return 1.0
    kernel = np.ones((2 * tolerance + 1, 2 * tolerance + 1), np.uint8)
    near_a = cv2.dilate(a.astype(np.uint8), kernel) > 0
    near_b = cv2.dilate(b.astype(np.uint8), kernel) > 0
    precision = (b & near_a).sum() / max(int(b.sum()), 1)
    recall = (a & near_b).sum() / max(int(a.sum()), 1)
    return float(2 * precision * recall / max(precision + recall, 1e-6))


def _colour_gradient(lab: np.ndarray) -> np.ndarray:
    """Gradient magnitude of Lab (lightness plus colour, lightly smoothed): an outline between two surfaces
    of one grey but different colours still counts."""
    smooth = cv2.GaussianBlur(lab, (0, 0), 1.5)
    return sum(
        np.hypot(cv2.Sobel(smooth[..., c], cv2.CV_32F, 1, 0), cv2.Sobel(smooth[..., c], cv2.CV_32F, 0, 1))
        for c in range(3)
    )


def material_measures(
    g_source: np.ndarray,
    g_target: np.ndarray,
    lab_source: np.ndarray,
    lab_target: np.ndarray,
    region: np.ndarray,
) -> dict[str, float]:
    """A new material: the surface texture inside the region changed (fine detail and its layout), while the
    outline kept its place and the form its shading (correlation of the coarse lightness).

    The outline is compared as the correlation of the colour gradient's magnitude across a band along the
    region's edge: where the edges lie, whatever their contrast. A new material changes the object's contrast
    with what is around it (a red sweet made white marble on a white table), so fixed-threshold edges come and
    go with it, most of all on a small object whose band holds a few edge pixels; a smeared or moved outline
    puts the gradient elsewhere. A coarse new texture (brick, wood grain) adds gradient inside the band and
    lowers the correlation; there the fixed-threshold edge F1 of the band still finds the outline, so the
    score takes whichever of the two finds it."""
    inner = cv2.erode(region.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    if inner.sum() < 64:
        inner = region
    fine_s, fine_t = _fine(g_source)[inner], _fine(g_target)[inner]
    detail_change = abs(float(np.log((fine_t.mean() + 0.5) / (fine_s.mean() + 0.5))))
    layout = _correlation(fine_s, fine_t)  # the same fine detail in the same place: no new texture
    coarse_s = cv2.GaussianBlur(g_source, (0, 0), 4.0)[inner]
    coarse_t = cv2.GaussianBlur(g_target, (0, 0), 4.0)[inner]
    band = cv2.dilate(region.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    band &= ~(cv2.erode(region.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0)
    return {
        "texture_change": detail_change + max(0.0, 1.0 - layout),
        "form_kept": _correlation(coarse_s, coarse_t),
        "outline_kept": _correlation(_colour_gradient(lab_source)[band], _colour_gradient(lab_target)[band]),
        "outline_edges_kept": edge_f1(_edges(g_source), _edges(g_target), within=band),
    }


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 16 or a.std() < 1e-3 or b.std() < 1e-3:
        return 0.0
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _colour_count(rgb: np.ndarray) -> int:
    q = (rgb // 32).reshape(-1, 3).astype(np.int32)
    return len(np.unique(q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2]))


def _gradient(grey: np.ndarray) -> np.ndarray:
    return np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))


def _layout_correlation(g_source: np.ndarray, g_target: np.ndarray) -> float:
    """Correlation of the two pictures' gradient magnitudes at 64x64: the scene's outlines and masses, where
    hatching, strokes and pencil grain have averaged into tone."""
    small = [cv2.resize(g, (64, 64), interpolation=cv2.INTER_AREA) for g in (g_source, g_target)]
    grads = [_gradient(g) for g in small]
    return _correlation(grads[0], grads[1])


def style_measures(
    source: np.ndarray, target: np.ndarray, g_source: np.ndarray, g_target: np.ndarray, to_photo: bool
) -> dict[str, float]:
    """A change of rendering: the scene's edges kept (F1 of the coarse edge maps), and the statistics a style
    moves: distinct colours, gradient energy, flat area, chroma (each target against source, signed). The
    scene's edges are those of the photo side, the target when a stylised picture is made a photo: hatching
    or a cartoon's outlines are the style, not the scene, and a pair and its inverse then measure alike."""
    grad_s, grad_t = _gradient(g_source), _gradient(g_target)
    lab_s = cv2.cvtColor(source.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    lab_t = cv2.cvtColor(target.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    chroma_s = float(np.hypot(lab_s[..., 1], lab_s[..., 2]).mean())
    chroma_t = float(np.hypot(lab_t[..., 1], lab_t[..., 2]).mean())
    return {
        "edge_f1": _scene_edge_f1(g_target, g_source) if to_photo else _scene_edge_f1(g_source, g_target),
        "layout": _layout_correlation(g_source, g_target),
        "d_colours": float(np.log(_colour_count(target) / _colour_count(source))),
        "d_gradient": float(np.log((grad_t.mean() + 1) / (grad_s.mean() + 1))),
        "d_flat": float((grad_t < 8).mean() - (grad_s < 8).mean()),
        "d_chroma": float(np.log((chroma_t + 2) / (chroma_s + 2))),
    }


@lru_cache(maxsize=1)
def _reader():  # type: ignore[no-untyped-def]
    from annotators.ocr import RapidOCRText  # onnxruntime: only when a text edit is judged

    return RapidOCRText(threads=1)


def _normal(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _changed_box(source: np.ndarray, target: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) of the pixels a text edit changed, at full size: a word is small."""
    diff = cv2.absdiff(source, target).max(axis=2) > 40
    diff = cv2.morphologyEx(diff.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    ys, xs = np.nonzero(diff)
    if ys.size < 4:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _padded_crop(image: np.ndarray, box: tuple[int, int, int, int], margin_x: float) -> np.ndarray:
    """The box grown by `margin_x` of its height sideways and a third of it up and down, then padded with the
    picture's median border colour: the OCR detector misses words that touch the image edge."""
    x0, y0, x1, y1 = box
    h = y1 - y0
    mx, my = int(round(margin_x * h)), int(round(h / 3))
    crop = image[max(0, y0 - my) : y1 + my, max(0, x0 - mx) : x1 + mx]
    edge = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]])
    pad = max(8, h)
    return cv2.copyMakeBorder(
        crop, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=np.median(edge, axis=0).tolist()
    )


def _stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width of binary ink: its area over the length of its skeleton."""
    if not ink.any():
        return 0.0
    skeleton = cv2.ximgproc.thinning(ink.astype(np.uint8) * 255) > 0
    return float(ink.sum() / max(int(skeleton.sum()), 1))


def _x_height(ink: np.ndarray) -> int:
    """Rows of binary ink at least 30 % as full as its fullest row: a word's x-height band (its
    lower-case bodies; cap height for capitals and digits), whatever its ascenders and descenders."""
    rows = ink.mean(axis=1)
    return int((rows >= 0.3 * rows.max()).sum()) if rows.max() > 0 else 0


def _enlarged(image: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The box's grey pixels 4x enlarged (strokes of small print are a pixel or two wide) and their ink
    (Otsu; the ink is the minority class, dark or light)."""
    x0, y0, x1, y1 = box
    grey = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
    grey = cv2.resize(grey, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    _, dark = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    return grey, dark.astype(bool) if dark.mean() < 0.5 else ~dark.astype(bool)


def word_style(image: np.ndarray, box: tuple[int, int, int, int]) -> dict[str, float]:
    """How the word in `box` is drawn against the other words on its line (the box's rows, eight of its
    heights either side), read 4x enlarged: log ratios of the stroke width (a bolder or blurred word has
    wider strokes once binarised) and of the ink contrast (a darker or fainter word). Empty when the line
    has too little other ink to compare with."""
    x0, y0, x1, y1 = box
    h = y1 - y0
    lo = max(0, x0 - 8 * h)
    band, ink = _enlarged(image, (lo, y0, x1 + 8 * h, y1))
    left, right = 4 * (x0 - lo), 4 * (x1 - lo)
    inside = np.zeros_like(ink)
    inside[:, left:right] = True
    word, rest = ink & inside, ink & ~inside
    if word.sum() < 32 or rest.sum() < 0.5 * word.sum():
        return {}
    grey = band.astype(np.float32)
    paper = float(np.median(grey[~ink]))

    def contrast(where: np.ndarray) -> float:
        return abs(float(np.median(grey[ink & where])) - paper) + 5

    return {
        "stroke": float(np.log(_stroke_width(word) / _stroke_width(rest))),
        "contrast": float(np.log(contrast(inside) / contrast(~inside))),
    }


def text_measures(source: np.ndarray, target: np.ndarray, old: str, new: str) -> dict[str, float]:
    """Read the changed word in the target (RapidOCR, weights in its wheel): is the new text there, and the
    old text gone from that place (the whole page may hold the old word elsewhere)? And is the word drawn
    like its line in both pictures (a pair whose source or target shows a pasted-in word, bolder, fainter,
    blurred or jammed against the next word, is no text edit a person would make)? Detection runs on a crop
    around the changed pixels: the whole page would cost seconds on a CPU."""
    box = _changed_box(source, target)
    if box is None:
        return {"new_text_read": 0.0, "old_text_gone": 0.0}
    old_n, new_n = _normal(old), _normal(new)
    read = _normal(" ".join(line.text for line in _reader()(_padded_crop(target, box, 3.0))))
    tight = _normal(" ".join(line.text for line in _reader()(_padded_crop(target, box, 0.3))))
    # The line is compared with only where the OCR reads other text beside the word (a sign of one word over
    # a photo has no line: the photo's texture is no print to match).
    beside = len(read) > len(new_n) + 1
    styles = [word_style(image, box) for image in (source, target)] if beside else []
    if old.isascii() == new.isascii():
        # Words of one script should be drawn in one weight: the old word is in the page's own type, which
        # also holds where the line has no other words beside it (a tilted line, a word alone).
        # So should their lower-case bodies be of one height, where both words have lower case (or neither:
        # codes, digits): the x-height band of a capitalised word is its cap height.
        old_ink, new_ink = (_enlarged(image, box)[1] for image in (source, target))
        old_width, new_width = _stroke_width(old_ink), _stroke_width(new_ink)
        style = {"stroke": float(np.log((new_width + 0.1) / (old_width + 0.1)))}
        if (old.upper() != old) == (new.upper() != new):
            style["size"] = float(np.log((_x_height(new_ink) + 1) / (_x_height(old_ink) + 1)))
        styles.append(style)
    return {
        "new_text_read": float(bool(new_n) and new_n in read),
        "old_text_gone": float(not old_n or old_n not in tight or old_n in new_n),
        # The word least like its line, in either picture: an inverse pair shows the same two pictures.
        "word_stroke_off": max((abs(style.get("stroke", 0.0)) for style in styles), default=0.0),
        "word_contrast_off": max((abs(style.get("contrast", 0.0)) for style in styles), default=0.0),
        "word_size_off": max((abs(style.get("size", 0.0)) for style in styles), default=0.0),
    }
