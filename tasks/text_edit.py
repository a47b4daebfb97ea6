"""Replacing one word of text in a photo: erase it, then draw the new word in the old one's place, size,
colour, angle, weight, width and sharpness.

Everything happens in an upright patch around the word (the line's angle turned out): the word's pixels
are told from its background by Otsu's threshold, the background side being the one above and below the
word; each candidate face draws the OLD text, blurred as softly as its ink and with its outlines moved a
little towards the line's stroke width, and the face whose drawings fit the word and the other words of its
line best, in letter shapes and stroke width, is used for the new text; the old ink is filled from the
background around it; the new text is drawn in the old text's colour, as soft as it; a new word whose
strokes are much thicker or thinner than the line's is rejected; the patch goes back into the photo only
where something changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from tasks.tools import TextRenderer


@dataclass
class WordGeometry:
    centre: tuple[float, float]  # image pixels
    angle_deg: float  # the line's angle (image y down)
    width: float  # along the line
    height: float  # across it (the line's height)
    left_room: float  # free space before the word along the line, pixels (to the previous word or beyond)
    right_room: float  # after it
    alone: bool  # the only word of its line: centred, not left-aligned


@dataclass
class Replaced:
    image: np.ndarray  # the photo with the word replaced
    mask: np.ndarray  # bool HxW: every pixel that may differ
    font: str
    size_px: float
    colour: tuple[int, int, int]
    weight: float  # the new word's stroke width over the line's


class TextEditError(Exception):
    """The word cannot be replaced well; ``reason`` is the reject reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def line_axes(quad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors along the text line (top-left to top-right) and across it (downwards)."""
    along = (quad[1] - quad[0]) + (quad[2] - quad[3])
    along = along / max(float(np.linalg.norm(along)), 1e-6)
    return along, np.array([-along[1], along[0]], np.float32)


def word_geometry(word_quad: np.ndarray, line_quad: np.ndarray, neighbours: list[np.ndarray]) -> WordGeometry:
    """Where a word sits in its line, measured along and across the line's direction."""
    along, across = line_axes(line_quad)
    u = word_quad @ along
    v_line = line_quad @ across
    centre_u = (u.min() + u.max()) / 2
    centre_v = (v_line.min() + v_line.max()) / 2
    centre = along * centre_u + across * centre_v
    left_room = right_room = np.inf
    for other in neighbours:
        ou = other @ along
        if ou.max() <= u.min() + 1:
            left_room = min(left_room, u.min() - ou.max())
        elif ou.min() >= u.max() - 1:
            right_room = min(right_room, ou.min() - u.max())
    return WordGeometry(
        centre=(float(centre[0]), float(centre[1])),
        angle_deg=float(np.degrees(np.arctan2(along[1], along[0]))),
        width=float(u.max() - u.min()),
        height=float(v_line.max() - v_line.min()),
        left_room=float(left_room),
        right_room=float(right_room),
        alone=not neighbours,
    )


def _box_mask(shape: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    x0, y0, x1, y1 = (round(v) for v in box)
    mask[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = True
    return mask


def _ink_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _softness(t: np.ndarray) -> float:
    """Share of partly-inked pixels among inked ones: how soft (blurred, anti-aliased) strokes are."""
    inked = float((t >= 0.5).sum())
    return float(((t > 0.2) & (t < 0.8)).sum()) / max(inked, 1.0)


def _edge_strength(patch: np.ndarray, where: np.ndarray) -> float:
    """The strongest lightness gradients (90th percentile) around a word's strokes: low when they are soft."""
    lum = cv2.cvtColor(patch, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32)
    gradient = np.hypot(cv2.Sobel(lum, cv2.CV_32F, 1, 0), cv2.Sobel(lum, cv2.CV_32F, 0, 1))
    return float(np.percentile(gradient[where], 90)) if where.any() else 0.0


def _has_ideograph(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" for ch in text)


def _crop(profile: np.ndarray, box: tuple[int, int, int, int], margin: int = 2) -> np.ndarray:
    """The profile around an ink box, with the soft rim just outside it."""
    x0, y0, x1, y1 = box
    return profile[max(0, y0 - margin) : y1 + margin, max(0, x0 - margin) : x1 + margin]


def _blur(coverage: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(coverage, (0, 0), sigma) if sigma > 0 else coverage


def _full_strength(coverage: np.ndarray) -> np.ndarray:
    """Coverage scaled so that the stroke cores (its 95th percentile over the ink) reach 1, as the old word's
    profile does (it is measured against the level of its most extreme twentieth)."""
    inked = coverage[coverage > 0.15]
    if not inked.size:
        return coverage
    return np.clip(coverage / min(1.0, max(float(np.percentile(inked, 95)), 0.3)), 0.0, 1.0)


def stroke_width(profiles: Sequence[np.ndarray]) -> float:
    """Mean stroke width, pixels, of the ink in ``profiles`` (0 background .. 1 stroke core): twice the ink
    (coverage summed: area) over its total variation (the summed gradient: the outline's length, as a soft
    edge of any blur adds up to one across). A stroke of width w and length L has area wL and outline 2L.
    Ink density per box area does not tell a bold from a regular face on small soft text (a blurred regular
    word is as dark per area as a sharp bold one); this does from about 20 px up (bold 1.25 to 1.5 times
    regular). Below, strokes thinner than two pixels never reach a plateau and it reads them all about two
    pixels wide: bold and regular then differ by 5 to 30 %."""
    area = outline = 0.0
    for profile in profiles:
        gy, gx = np.gradient(np.pad(profile.astype(np.float32), 2))  # an edge on the border counts too
        area += float(profile.sum())
        outline += float(np.hypot(gx, gy).sum())
    return 2.0 * area / max(outline, 1e-6)


LEVEL_DEG = 0.5  # a line closer to horizontal than this is handled as level
SOFTNESS = (0.0, 0.4, 0.7, 1.0, 1.4, 1.8)  # Gaussian blurs (patch pixels) tried on a font's drawing
WEIGHT_PENALTY = 1.0  # per unit of |log| of the stroke-width ratio, against a soft overlap in 0..1
MAX_STROKE_OFFSET_EM = 0.025  # how far a face's outlines may move (per side, in ems) to match a weight
OFFSET_PENALTY = 0.1  # score lost by a face whose outlines moved that far
FILL_SIGMA_PX = 16.0  # the widest blur the background fill runs at full scale (letters about 32 px high)


@dataclass
class _Word:
    """A word measured in its upright patch."""

    patch: np.ndarray  # RGB, the line's angle turned out
    forward: np.ndarray  # 2x3 affine from the photo to the patch
    in_word: np.ndarray  # bool: the word's box
    t: np.ndarray  # ink profile inside the box (0 background .. 1 stroke core), 0 outside
    t_full: np.ndarray  # the same over the whole patch
    colour: np.ndarray  # RGB of the text
    old_box: tuple[int, int, int, int]  # the ink's box in the patch


@dataclass
class FontFit:
    font: str
    size_px: float  # em size
    stretch: float  # horizontal scale of the drawing
    sigma: float  # its blur
    offset_px: float  # its outlines moved out by this (negative: in), towards the line's stroke weight
    stroke_px: float  # the drawing's stroke width (blurred and at full strength, as it will be drawn)
    score: float  # soft overlap with the old ink, less penalties for stretching and for another weight


def _ink_colour(patch: np.ndarray, t: np.ndarray, inked: np.ndarray) -> np.ndarray:
    """The text colour: the lightness of the stroke cores (``t`` near 1), the hue of all the ink weighted by
    ``t``. Screen text drawn with sub-pixel anti-aliasing has red and blue fringes on every thin stroke, and
    its darkest pixels are often such a fringe; over the whole word they only partly cancel (both have a
    positive a*: a magenta tint that the black text never had). So the hue is kept in proportion to how much
    the ink's hues agree (the length of their mean over their mean length: 1 for a red sign's letters, low
    for fringes of opposite hues), squared."""
    lab = cv2.cvtColor(patch.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    core = inked & (t >= 0.99)
    weights = t[inked][:, None]
    ab = lab[inked][:, 1:]
    chroma = (ab * weights).sum(axis=0) / max(float(weights.sum()), 1e-6)
    spread = float((np.linalg.norm(ab, axis=1) * weights[:, 0]).sum()) / max(float(weights.sum()), 1e-6)
    chroma = chroma * (float(np.linalg.norm(chroma)) / max(spread, 1e-6)) ** 2
    colour = np.array([[[lab[core if core.any() else inked][:, 0].mean(), *chroma]]], np.float32)
    return np.clip(cv2.cvtColor(colour, cv2.COLOR_LAB2RGB)[0, 0] * 255.0, 0.0, 255.0)


class WordEditor:
    """Replaces words in one photo (one editor per source; the renderer is a shared tool)."""

    def __init__(
        self,
        renderer: TextRenderer,
        min_contrast: float = 25.0,  # L* units between text and background
        max_background_std: float = 9.0,  # L* spread of the background next to the word
        min_font_fit: float = 0.3,  # overlap of the best font's drawing of the old word with its ink
        max_weight_ratio: float = 1.15,  # the new word's stroke width over the line's, or its inverse
        min_cjk_px: float = 12.0,  # Chinese drawn smaller than this (em, pixels) is a smudge to a reader
        min_sharpness: float = 0.85,  # the new word's edge strength over the old one's
    ) -> None:
        self.renderer = renderer
        self.min_contrast = min_contrast
        self.max_background_std = max_background_std
        self.min_font_fit = min_font_fit
        self.max_weight_ratio = max_weight_ratio
        self.min_cjk_px = min_cjk_px
        self.min_sharpness = min_sharpness

    def _measure(self, image: np.ndarray, geometry: WordGeometry) -> _Word:
        """The word's upright patch, its ink profile and colour; TextEditError when it cannot be read."""
        h = geometry.height
        pad_x = 2.5 * h + 0.5 * geometry.width  # room for a longer replacement
        pad_y = 0.8 * h
        size = (int(np.ceil(geometry.width + 2 * pad_x)), int(np.ceil(h + 2 * pad_y)))
        # Level text is moved by whole pixels, so that neither taking the patch out nor putting it back
        # resamples it: half a pixel's shift would halve the darkness of a one-pixel stroke and blur it.
        level = abs(geometry.angle_deg) < LEVEL_DEG
        forward = cv2.getRotationMatrix2D(geometry.centre, 0.0 if level else geometry.angle_deg, 1.0)
        forward[:, 2] += (size[0] / 2 - geometry.centre[0], size[1] / 2 - geometry.centre[1])
        if level:
            forward[:, 2] = np.round(forward[:, 2])
        patch = cv2.warpAffine(image, forward, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        cx, cy = size[0] / 2, size[1] / 2
        # OCR word boxes are approximate: the word may reach halfway into the gap to its neighbours.
        reach_left = min(0.5 * h, 0.5 * geometry.left_room)
        reach_right = min(0.5 * h, 0.5 * geometry.right_room)
        word_box = (
            cx - geometry.width / 2 - max(0.1 * h, reach_left),
            cy - 0.6 * h,
            cx + geometry.width / 2 + max(0.1 * h, reach_right),
            cy + 0.6 * h,
        )
        shape = patch.shape[:2]
        in_word = _box_mask(shape, word_box)
        # Background reference: the bands just above and below the word (neighbouring words lie beside it).
        bands = _box_mask(shape, (word_box[0], cy - 0.85 * h, word_box[2], cy + 0.85 * h)) & ~in_word
        lum8 = cv2.cvtColor(patch, cv2.COLOR_RGB2LAB)[..., 0]
        threshold8, _ = cv2.threshold(lum8[in_word], 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        lum = lum8.astype(np.float32) * (100.0 / 255.0)  # L*, so the bounds read in familiar units
        threshold = threshold8 * (100.0 / 255.0)
        dark_background = float(np.mean(lum[bands] > threshold)) < 0.5
        ink = in_word & ((lum > threshold) if dark_background else (lum <= threshold))
        background = bands & ((lum <= threshold) if dark_background else (lum > threshold))
        if ink.sum() < 8 or background.sum() < 8:
            raise TextEditError("text_not_separable", "no ink or no background around the word")
        bg_lum, ink_lum = float(np.median(lum[background])), float(np.median(lum[ink]))
        if abs(bg_lum - ink_lum) < self.min_contrast:
            raise TextEditError(
                "low_contrast_text", f"text and background differ by {abs(bg_lum - ink_lum):.0f} L*"
            )
        # Median absolute deviation: a few pixels of a neighbouring line in the bands do not make it busy.
        spread = 1.4826 * float(np.median(np.abs(lum[background] - bg_lum)))
        if spread > self.max_background_std:
            raise TextEditError("busy_text_background", f"background L* spread {spread:.1f}")
        # The strokes' level is that of their cores, the most extreme twentieth of the ink, not the median
        # (small text is mostly anti-aliased rim; its darkest pixels are what the eye reads as its colour).
        extreme = float(np.percentile(lum[ink], 95 if dark_background else 5))
        t = np.clip((lum - bg_lum) / (extreme - bg_lum), 0.0, 1.0)
        # Otsu's split can put mottled background on the ink side; ink is what is well on the way from the
        # background's level to the strokes' level.
        ink = in_word & (t > 0.35)
        colour = _ink_colour(patch, t, in_word & (t > 0.15))
        old_box = _ink_box(ink)
        assert old_box is not None
        return _Word(patch, forward, in_word, np.where(in_word, t, 0.0), t, colour, old_box)

    def replace(
        self,
        image: np.ndarray,
        geometry: WordGeometry,
        old: str,
        new: str,
        context: Sequence[tuple[WordGeometry, str]] = (),
    ) -> Replaced:
        """``old`` at ``geometry`` replaced by ``new``. ``context``: other words of the same line (geometry,
        text); the font is the one that fits them and the word best together, as one word of ten pixels
        tells a serif from a sans, or a bold from a regular, only unreliably."""
        word = self._measure(image, geometry)
        patch, forward, in_word, t, colour, old_box = (
            word.patch,
            word.forward,
            word.in_word,
            word.t_full,
            word.colour,
            word.old_box,
        )
        h = geometry.height
        shape = patch.shape[:2]
        size = (shape[1], shape[0])
        # The line's stroke weight, from the word and the other words of its line (one short word is a few
        # strokes; the line's are many more, and the new word must match them all).
        others = []
        for other_geometry, other_text in context:
            try:
                others.append((self._measure(image, other_geometry), other_text))
            except TextEditError:
                continue
        line_stroke = stroke_width([_crop(w.t, w.old_box) for w in (word, *(o for o, _ in others))])
        fits = self._font_fits(old, word.t, old_box, line_stroke)
        totals = {font: fit.score for font, fit in fits.items()}
        for other, other_text in others:
            for font, other_fit in self._font_fits(other_text, other.t, other.old_box, line_stroke).items():
                totals[font] = totals.get(font, 0.0) + other_fit.score
        fit = fits[max(fits, key=lambda font: totals[font])] if fits else None
        if fit is None or fit.score < self.min_font_fit:
            score = -1.0 if fit is None else fit.score
            raise TextEditError("text_style_unmatched", f"best font overlap {score:.2f}")
        font, size_px, stretch, sigma, offset = fit.font, fit.size_px, fit.stretch, fit.sigma, fit.offset_px
        old_render = self.renderer(old, font, size_px)

        new_font = font if font in self.renderer.fonts(new) else self.renderer.fonts(new)[0]
        new_size = size_px
        if new_font != font:  # another script: same ink height above the baseline as the old word
            probe = self.renderer(new, new_font, 100.0)
            above = old_render.origin[1] - old_render.ink[1]
            new_size = 100.0 * above * 1.05 / max(probe.origin[1] - probe.ink[1], 1.0)
        if new_font != font and _has_ideograph(new) and new_size < self.min_cjk_px:
            raise TextEditError("text_too_small", f"{new!r} would be drawn {new_size:.0f} px high")
        if new_font == font:  # moved outlines make the ink taller by twice the offset: as much smaller
            new_size *= max(0.5, 1.0 - 2.0 * offset / max(old_box[3] - old_box[1], 1))
        else:
            offset = 0.0
        rendered = self.renderer(new, new_font, new_size, offset)
        coverage = rendered.coverage
        if stretch != 1.0:
            coverage = cv2.resize(
                coverage,
                (max(1, round(coverage.shape[1] * stretch)), coverage.shape[0]),
                interpolation=cv2.INTER_AREA,
            )
        ink_w = (rendered.ink[2] - rendered.ink[0]) * stretch
        # Baseline of the old word in the patch: its ink top plus the fitted font's ascent over its ink.
        baseline = old_box[1] + (old_render.origin[1] - old_render.ink[1])
        # A word that starts or ends its line keeps its left edge (the margin of a page or a label); one
        # between two others is centred on the old one, so that a shorter or longer word shares the change
        # between the spaces on both sides (a labelled edit left one wide gap after a shorter word); a word
        # alone on its line stays centred (signs).
        between = np.isfinite(geometry.left_room) and np.isfinite(geometry.right_room)
        centred = geometry.alone or between
        left = (old_box[0] + old_box[2]) / 2 - ink_w / 2 if centred else float(old_box[0])
        right = left + ink_w
        # The new ink may grow into the free space beside the word, less a gap, never over a neighbour.
        slack = 0.1 * h
        gap = 0.3 * h
        if (
            left < old_box[0] - max(0.0, geometry.left_room - gap) - slack
            or right > old_box[2] + max(0.0, geometry.right_room - gap) + slack
        ):
            raise TextEditError("replacement_too_wide", f"{new!r} does not fit between its neighbours")
        if left < 2 or right > size[0] - 2:
            raise TextEditError("replacement_too_wide", f"{new!r} runs out of the patch")
        alpha = np.zeros(shape, np.float32)
        ox = round(left - rendered.ink[0] * stretch)
        oy = round(baseline - rendered.origin[1])
        ch, cw = coverage.shape
        y0, x0 = max(0, oy), max(0, ox)
        y1, x1 = min(shape[0], oy + ch), min(shape[1], ox + cw)
        if y1 <= y0 or x1 <= x0:
            raise TextEditError("replacement_too_wide", f"{new!r} falls outside the patch")
        alpha[y0:y1, x0:x1] = coverage[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
        # As soft as the old word, and as dark: the old word's strokes reach its colour (t = 1) in their
        # cores, so the new ones must too, or a blur of thin strokes leaves a grey the old text never had.
        alpha = _full_strength(_blur(alpha, sigma))
        # What a person compares first: whether the new word is as heavy as the words beside it, i.e. its
        # strokes as thick as theirs. Another script's strokes are compared too: a Chinese glyph set beside
        # Latin text of the same weight has strokes of about the same width.
        weight = stroke_width([alpha]) / max(line_stroke, 1e-6)
        if not 1 / self.max_weight_ratio <= weight <= self.max_weight_ratio:
            raise TextEditError(
                "text_weight_unmatched",
                f"{new_font}'s strokes {weight:.2f} times as thick as the line's ({line_stroke:.2f} px)",
            )

        # Erase the faint rim of the strokes too (blurred text spreads by about twice its blur).
        radius = max(2, round(0.12 * h + 2 * sigma))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        erase = cv2.dilate((in_word & (t > 0.15)).astype(np.uint8), kernel) > 0
        # ...but never sideways past the word's box (it reaches halfway into the gaps): the rim of a
        # neighbouring letter one gap away would go with it.
        erase &= in_word.any(axis=0)[None, :]
        clean = self._fill_background(patch, erase, t, h)
        edited = clean.astype(np.float32) * (1 - alpha[..., None]) + colour[None, None, :] * alpha[..., None]
        changed = erase | (cv2.dilate((alpha > 0.02).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
        out, mask = self._paste(image, np.clip(np.round(edited), 0, 255).astype(np.uint8), changed, forward)
        # Sharpness as a person sees it, in the photo: both words taken out through the same warp (a tilted
        # word is resampled twice on its way in and out, and softens).
        size = (patch.shape[1], patch.shape[0])
        back_out = cv2.warpAffine(out, forward, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        new_ink = cv2.dilate((alpha > 0.35).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        old_ink = cv2.dilate((in_word & (t > 0.35)).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        sharpness = _edge_strength(back_out, new_ink) / max(_edge_strength(patch, old_ink), 1e-6)
        if sharpness < self.min_sharpness:
            raise TextEditError("text_style_unmatched", f"new text {sharpness:.2f} times as sharp as the old")
        return Replaced(out, mask, new_font, float(new_size), tuple(int(c) for c in colour), weight)

    def _font_fits(
        self, old: str, t: np.ndarray, old_box: tuple[int, int, int, int], line_stroke: float
    ) -> dict[str, FontFit]:
        """For each font, the size, stretch, blur and stroke offset whose drawing of ``old`` is most like its
        ink, with strokes as thick as the line's (``line_stroke``, pixels).

        Compared on the ink profile ``t`` (0 background .. 1 stroke core) rather than on thresholded masks:
        on small soft text a threshold fattens the strokes, and a bold face then wins over the regular one
        the text is set in. The score is the soft overlap sum(min)/sum(max) of the two profiles, less
        penalties for stretching and for strokes still thicker or thinner than the line's once the face's
        outlines have been moved as far as they may."""
        x0, y0, x1, y1 = old_box
        target = t[y0:y1, x0:x1].astype(np.float32)
        wanted = _softness(target)
        fits: dict[str, FontFit] = {}
        for font in self.renderer.fonts(old):
            probe = self.renderer(old, font, 100.0)
            probe_h = probe.ink[3] - probe.ink[1]
            if probe_h <= 0:
                continue
            size_px = 100.0 * (y1 - y0) / probe_h
            sigma: float | None = None

            def draw(offset: float) -> tuple[np.ndarray, float]:
                """The face's drawing of ``old`` fitted to the old ink's box, blurred as softly and at full
                strength, as it will be drawn (so that its own stroke weight decides, not a gain)."""
                nonlocal sigma
                drawn = self.renderer(old, font, size_px, offset)  # noqa: B023 - called in this iteration only
                dx0, dy0, dx1, dy1 = drawn.ink
                glyphs = cv2.resize(
                    drawn.coverage[dy0:dy1, dx0:dx1], (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA
                )
                if sigma is None:
                    # The blur that makes the drawing as soft as the ink (not the one that overlaps it best:
                    # blurring hides a misfit, and a smudge would win).
                    sigma = min(SOFTNESS, key=lambda s: abs(_softness(_blur(glyphs, s)) - wanted))
                soft = _full_strength(_blur(glyphs, sigma))
                return soft, stroke_width([_crop(soft, (0, 0, soft.shape[1], soft.shape[0]))])

            plain = self.renderer(old, font, size_px)
            stretch = (x1 - x0) / max(plain.ink[2] - plain.ink[0], 1)
            # The face's strokes thickened or thinned towards the line's, within a few hundredths of an em
            # (more changes the face's character): two secant steps on the offset.
            limit = MAX_STROKE_OFFSET_EM * size_px
            tried = [(0.0, *draw(0.0))]
            offset = float(np.clip((line_stroke - tried[0][2]) / 2, -limit, limit))
            for _ in range(2):
                if abs(offset - tried[-1][0]) < 0.02:
                    break
                tried.append((offset, *draw(offset)))
                (a, _, sa), (b, _, sb) = tried[-2], tried[-1]
                slope = (sb - sa) / (b - a) if abs(sb - sa) > 1e-3 else 2.0
                offset = float(np.clip(b + (line_stroke - sb) / max(slope, 0.5), -limit, limit))
            offset, soft, stroke_px = min(tried, key=lambda x: abs(np.log(x[2] / max(line_stroke, 1e-3))))
            overlap = float(np.minimum(soft, target).sum()) / max(float(np.maximum(soft, target).sum()), 1e-3)
            # A font that needs squeezing or stretching to fit is a worse match than one that does not, and
            # one whose strokes stay thicker or thinner is another weight, however well its letters overlap.
            weight = abs(np.log(max(stroke_px, 1e-3) / max(line_stroke, 1e-3)))
            # ...and a face whose outlines had to move far is less like the text than one that fits as drawn.
            moved = abs(offset) / max(limit, 1e-6)
            score = overlap - 0.5 * abs(np.log(stretch)) - WEIGHT_PENALTY * weight - OFFSET_PENALTY * moved
            fits[font] = FontFit(
                font,
                size_px,
                float(np.clip(stretch, 0.75, 1.33)),
                float(sigma or 0.0),
                offset,
                stroke_px,
                score,
            )
        return fits

    @staticmethod
    def _fill_background(patch: np.ndarray, erase: np.ndarray, t: np.ndarray, h: float) -> np.ndarray:
        """The erased pixels filled from nearby background only (normalised convolution): on a page or a
        sign, a diffusion fill such as Telea's would drag the neighbouring letters' ink into the hole."""
        background = ((t < 0.1) & ~erase).astype(np.float32)
        background = cv2.erode(background, np.ones((3, 3), np.uint8))  # off the letters' soft rims
        sigma = max(2.0, 0.5 * h)
        weighted = patch.astype(np.float32) * background[..., None]
        # Large lettering asks for a blur as wide as its letters: that is done at a scale where it is
        # FILL_SIGMA_PX wide (the fill is as smooth as the blur, so nothing is lost scaling it back up).
        scale = min(1.0, FILL_SIGMA_PX / sigma)
        size = (patch.shape[1], patch.shape[0])
        if scale < 1.0:
            small = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
            background = cv2.resize(background, small, interpolation=cv2.INTER_AREA)
            weighted = cv2.resize(weighted, small, interpolation=cv2.INTER_AREA)
        weight = cv2.GaussianBlur(background, (0, 0), sigma * scale)
        total = cv2.GaussianBlur(weighted, (0, 0), sigma * scale)
        if scale < 1.0:
            weight = cv2.resize(weight, size, interpolation=cv2.INTER_LINEAR)
            total = cv2.resize(total, size, interpolation=cv2.INTER_LINEAR)
        fill = total / np.maximum(weight, 1e-4)[..., None]
        out = patch.astype(np.float32)
        out[erase] = fill[erase]
        return np.clip(np.round(out), 0, 255).astype(np.uint8)

    @staticmethod
    def _paste(
        image: np.ndarray, patch: np.ndarray, changed: np.ndarray, forward: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The edited patch put back into the photo where it changed, with a one-pixel feathered rim."""
        height, width = image.shape[:2]
        back = cv2.invertAffineTransform(forward)
        region = cv2.warpAffine(changed.astype(np.float32), back, (width, height), flags=cv2.INTER_LINEAR)
        mask = region > 0.01
        ys, xs = np.nonzero(mask)
        if ys.size == 0:
            return image.copy(), mask
        y0, y1, x0, x1 = (
            max(0, ys.min() - 2),
            min(height, ys.max() + 3),
            max(0, xs.min() - 2),
            min(width, xs.max() + 3),
        )
        shifted = back.copy()
        shifted[:, 2] -= (x0, y0)
        pixels = cv2.warpAffine(
            patch, shifted, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        weight = np.clip(region[y0:y1, x0:x1], 0.0, 1.0)[..., None]
        out = image.copy()
        crop = out[y0:y1, x0:x1].astype(np.float32)
        out[y0:y1, x0:x1] = np.clip(np.round(crop * (1 - weight) + pixels * weight), 0, 255).astype(np.uint8)
        return out, mask
