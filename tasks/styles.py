"""Bilingual style vocabulary and classical non-photorealistic renderings of a photo.

Each filter takes an RGB uint8 photo and returns the same photo drawn in its style, RGB uint8 of the same
size. They are built from OpenCV's edge-preserving filters (stylization, pencilSketch, oilPainting,
edgePreservingFilter), k-means colour quantisation and a few lines of numpy each; their sizes (brush,
pixel, line spacing) are relative to the photo's shorter side, so a 400 px and a 2000 px photo look alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Style:
    key: str
    name: str  # "pencil sketch": the style's name in English
    en: str  # "a pencil sketch": one picture in it
    zh: str  # "铅笔素描"
    measure: str  # the Chinese measure word for one picture: "一幅铅笔素描"
    monochrome: bool = False  # drawn in black and white or grey


STYLES: tuple[Style, ...] = (
    Style("pencil_sketch", "pencil sketch", "a pencil sketch", "铅笔素描", "幅", monochrome=True),
    Style("colour_pencil", "colored pencil drawing", "a colored pencil drawing", "彩色铅笔画", "幅"),
    Style("oil_painting", "oil painting", "an oil painting", "油画", "幅"),
    Style("watercolour", "watercolor painting", "a watercolor painting", "水彩画", "幅"),
    Style("cartoon", "cartoon", "a cartoon", "卡通画", "幅"),
    Style("pixel_art", "pixel art", "a piece of pixel art", "像素画", "幅"),
    Style(
        "ink_wash",
        "Chinese ink wash painting",
        "a Chinese ink wash painting",
        "水墨画",
        "幅",
        monochrome=True,
    ),
    Style("engraving", "engraving", "an engraving", "版画", "幅", monochrome=True),
)
STYLES_BY_KEY = {style.key: style for style in STYLES}


def _odd(value: float) -> int:
    return max(3, int(value) | 1)


def _paper(height: int, width: int, seed: int, strength: float) -> np.ndarray:
    """A paper grain to multiply with: fine noise and a faint larger mottling, around 1."""
    rng = np.random.default_rng(seed)
    fine = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), 0.8)
    coarse = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), 12)
    coarse /= max(float(coarse.std()), 1e-6)
    return 1.0 + strength * (0.6 * fine / max(float(fine.std()), 1e-6) + 0.4 * coarse)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def brush_strokes(image: np.ndarray, length: float, seed: int) -> np.ndarray:
    """Noise smeared along the image's own contours: streaks like brush strokes that follow the forms
    (a cheap line-integral convolution: eight directional smears, each pixel taking the one closest to
    its local edge direction). Zero-mean, unit spread, HxW float32."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    sigma = max(2.0, length / 2)
    # Structure tensor, smoothed: its main direction is across the edges; strokes run along them.
    jxx = cv2.GaussianBlur(gx * gx, (0, 0), sigma)
    jyy = cv2.GaussianBlur(gy * gy, (0, 0), sigma)
    jxy = cv2.GaussianBlur(gx * gy, (0, 0), sigma)
    along = 0.5 * np.arctan2(2 * jxy, jxx - jyy) + np.pi / 2
    noise = np.random.default_rng(seed).standard_normal(grey.shape).astype(np.float32)
    size = _odd(length)
    best = np.zeros_like(grey)
    bins = 8
    which = np.round((along % np.pi) / np.pi * bins).astype(int) % bins
    for b in range(bins):
        angle = b * np.pi / bins
        kernel = np.zeros((size, size), np.float32)
        c = size // 2
        dx, dy = np.cos(angle) * c, np.sin(angle) * c
        cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
        kernel /= max(float(kernel.sum()), 1e-6)
        smeared = cv2.filter2D(noise, -1, kernel, borderType=cv2.BORDER_REFLECT)
        best = np.where(which == b, smeared, best)
    return best / max(float(best.std()), 1e-6)


def _quantise(image: np.ndarray, colours: int, seed: int) -> np.ndarray:
    """The photo in ``colours`` colours (k-means in RGB on a sample of its pixels)."""
    pixels = image.reshape(-1, 3).astype(np.float32)
    sample = pixels[:: max(1, len(pixels) // 20000)]
    cv2.setRNGSeed(seed)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    _, _, centres = cv2.kmeans(sample, colours, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    distances = ((pixels[:, None, :] - centres[None]) ** 2).sum(axis=-1)
    return centres[distances.argmin(axis=1)].reshape(image.shape).astype(np.uint8)


def pencil_sketch(image: np.ndarray, seed: int) -> np.ndarray:
    # The colour-dodge sketch: grey divided by its blurred negative leaves dark lines where it changes,
    # with soft graphite shading kept from the tones, on grainy paper.
    side = min(image.shape[:2])
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    blurred = cv2.GaussianBlur(255.0 - grey, (0, 0), max(2.0, side / 60))
    dodge = np.minimum(255.0, grey * 255.0 / np.maximum(255.0 - blurred, 1.0))
    shading = cv2.GaussianBlur(grey, (0, 0), max(2.0, side / 80))
    tone = dodge * (0.75 + 0.25 * shading / 255.0)
    tone = 255.0 - (255.0 - tone) * 1.3  # darker strokes
    paper = _paper(*grey.shape, seed, 0.025)
    return cv2.cvtColor(_to_uint8(tone * paper), cv2.COLOR_GRAY2RGB)


def colour_pencil(image: np.ndarray, seed: int) -> np.ndarray:
    # Graphite-dark outlines over light colour laid in diagonal strokes, with paper left between them.
    side = min(image.shape[:2])
    lines = pencil_sketch(image, seed).astype(np.float32) / 255.0
    washed = cv2.edgePreservingFilter(
        image, flags=cv2.RECURS_FILTER, sigma_s=max(10.0, side / 15), sigma_r=0.3
    )
    hsv = cv2.cvtColor(washed, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.minimum(255, hsv[..., 1] * 1.1)
    colour = cv2.cvtColor(_to_uint8(hsv), cv2.COLOR_HSV2RGB).astype(np.float32)
    rng = np.random.default_rng(seed + 1)
    noise = rng.random(image.shape[:2]).astype(np.float32)
    size = _odd(side / 40)
    kernel = np.eye(size, dtype=np.float32)[::-1] / size
    strokes = cv2.filter2D(noise, -1, kernel)
    strokes = np.clip((strokes - strokes.mean()) / max(float(strokes.std()), 1e-6) * 0.5 + 0.5, 0, 1)
    # Where a stroke lies the pencil's colour shows, between strokes mostly paper; darker tones get
    # pressed harder and cover more.
    darkness = 1.0 - cv2.cvtColor(_to_uint8(colour), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    cover = np.clip(0.1 + 0.6 * strokes + 0.45 * darkness, 0, 1)[..., None]
    drawn = 255 - (255 - colour) * cover * 0.8
    return _to_uint8(drawn * (0.2 + 0.8 * lines))


def kuwahara(image: np.ndarray, radius: int) -> np.ndarray:
    """Kuwahara filter: each pixel takes the mean of whichever of the four (radius+1)-square windows
    touching it has the least variance. Flat areas become dabs of paint with crisp edges between them."""
    values = image.astype(np.float32)
    size = (radius + 1, radius + 1)
    mean = cv2.blur(values, size, borderType=cv2.BORDER_REFLECT)
    variance = cv2.blur(values * values, size, borderType=cv2.BORDER_REFLECT) - mean * mean
    variance = variance.sum(axis=-1)
    best = np.full(variance.shape, np.inf, np.float32)
    out = np.zeros_like(values)
    for dy in (0, radius):
        for dx in (0, radius):
            # The window with its top-left corner at (y - dy, x - dx); blur's box is centred, so shift it.
            shift = np.float32([[1, 0, radius / 2 - dx], [0, 1, radius / 2 - dy]])
            m = cv2.warpAffine(mean, shift, mean.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
            v = cv2.warpAffine(variance, shift, variance.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
            better = v < best
            best = np.where(better, v, best)
            out = np.where(better[..., None], m, out)
    return _to_uint8(out)


def oil_painting(image: np.ndarray, seed: int) -> np.ndarray:
    # Dabs of paint (Kuwahara), richer colour, brush strokes along the forms, and light catching the
    # paint's relief.
    side = min(image.shape[:2])
    painted = kuwahara(image, max(4, round(side / 60)))
    hsv = cv2.cvtColor(painted, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.minimum(255, hsv[..., 1] * 1.3)
    painted = cv2.cvtColor(_to_uint8(hsv), cv2.COLOR_HSV2RGB).astype(np.float32)
    strokes = brush_strokes(painted.astype(np.uint8), side / 25, seed)
    height_field = (
        cv2.GaussianBlur(strokes, (0, 0), 1.0) * 6.0
        + cv2.GaussianBlur(
            cv2.cvtColor(_to_uint8(painted), cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.5
        )
        * 0.15
    )
    relief = cv2.Sobel(height_field, cv2.CV_32F, 1, 0, ksize=3) - cv2.Sobel(
        height_field, cv2.CV_32F, 0, 1, ksize=3
    )
    canvas = _paper(*painted.shape[:2], seed + 1, 0.02)
    return _to_uint8(
        (painted * (1 + 0.06 * strokes)[..., None] + 1.5 * relief[..., None]) * canvas[..., None]
    )


def watercolour(image: np.ndarray, seed: int) -> np.ndarray:
    # Flat, soft washes (a strong edge-preserving smoothing, then mean-shift segments) in lighter, brighter
    # colour; pigment gathered along each wash's edge; a faint pencil underdrawing; the paper's grain.
    side = min(image.shape[:2])
    scale = min(1.0, 384 / max(image.shape[:2]))  # mean shift's cost grows with the pixels
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
    small_side = min(small.shape[:2])
    smooth = cv2.edgePreservingFilter(small, flags=cv2.RECURS_FILTER, sigma_s=small_side / 4, sigma_r=0.5)
    washes = cv2.pyrMeanShiftFiltering(
        cv2.cvtColor(smooth, cv2.COLOR_RGB2BGR), max(6, round(small_side / 30)), 35
    )
    washes = cv2.cvtColor(washes, cv2.COLOR_BGR2RGB)
    if scale < 1:
        washes = cv2.resize(washes, image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    hsv = cv2.cvtColor(washes, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.minimum(255, hsv[..., 1] * 1.25)
    washes = cv2.cvtColor(_to_uint8(hsv), cv2.COLOR_HSV2RGB).astype(np.float32)
    washes = 255 - (255 - washes) * 0.78
    grey = cv2.cvtColor(_to_uint8(washes), cv2.COLOR_RGB2GRAY).astype(np.float32)
    edges = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    wet_edges = 1.0 - np.clip(cv2.GaussianBlur(edges, (0, 0), 1.0) / 200.0, 0, 0.35)
    underdrawing = pencil_sketch(image, seed).astype(np.float32) / 255.0
    paper = _paper(*image.shape[:2], seed + 1, 0.03 * max(1.0, side / 400))
    return _to_uint8(washes * wet_edges[..., None] * (0.75 + 0.25 * underdrawing) * paper[..., None])


def cartoon(image: np.ndarray, seed: int) -> np.ndarray:
    side = min(image.shape[:2])
    smooth = cv2.edgePreservingFilter(
        image, flags=cv2.RECURS_FILTER, sigma_s=max(10.0, side / 20), sigma_r=0.4
    )
    for _ in range(2):
        smooth = cv2.bilateralFilter(smooth, 7, 40, 7)
    flat = _quantise(smooth, 8, seed)
    flat = cv2.medianBlur(flat, _odd(side / 150))
    hsv = cv2.cvtColor(flat, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.minimum(255, hsv[..., 1] * 1.3)
    flat = cv2.cvtColor(_to_uint8(hsv), cv2.COLOR_HSV2RGB)
    # Ink outlines: adaptive threshold of the median-smoothed grey keeps the strong edges only.
    # Ink outlines where the median-smoothed grey is darker than its surroundings; at most the darkest 7 %
    # of such differences, so a busy photo (a city from the air) keeps its main lines only.
    grey = cv2.medianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), _odd(side / 80)).astype(np.float32)
    difference = grey - cv2.blur(grey, (_odd(side / 40),) * 2)
    lines = difference < min(-6.0, float(np.percentile(difference, 7)))
    lines = cv2.morphologyEx(lines.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8)) > 0
    return np.where(lines[..., None], (flat * 0.15).astype(np.uint8), flat)


def pixel_art(image: np.ndarray, seed: int) -> np.ndarray:
    height, width = image.shape[:2]
    block = max(4, round(min(height, width) / 64))  # about 64 pixel-art pixels across the shorter side
    small = cv2.resize(image, (max(1, width // block), max(1, height // block)), interpolation=cv2.INTER_AREA)
    small = cv2.edgePreservingFilter(small, flags=cv2.RECURS_FILTER, sigma_s=4, sigma_r=0.3)
    small = _quantise(small, 16, seed)
    big = cv2.resize(small, (small.shape[1] * block, small.shape[0] * block), interpolation=cv2.INTER_NEAREST)
    out = np.zeros_like(image)
    h, w = min(height, big.shape[0]), min(width, big.shape[1])
    out[:h, :w] = big[:h, :w]
    if h < height:  # the last partial row and column of blocks repeat their neighbour
        out[h:, :w] = big[h - 1 : h, :w]
    if w < width:
        out[:, w:] = out[:, w - 1 : w]
    return out


def ink_wash(image: np.ndarray, seed: int) -> np.ndarray:
    # Diluted ink in a few soft washes on warm paper, most of it left light; dark brush lines on the
    # strongest edges, bled a little into the paper.
    side = min(image.shape[:2])
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    smooth = cv2.edgePreservingFilter(
        cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB),
        flags=cv2.RECURS_FILTER,
        sigma_s=max(15.0, side / 10),
        sigma_r=0.35,
    )
    tone = cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    scaled = tone * 3
    step = np.floor(scaled)
    fraction = scaled - step
    soft_levels = (
        step + fraction**3 * (fraction * (6 * fraction - 15) + 10)
    ) / 3  # smootherstep between levels
    ink_density = (1.0 - np.clip(soft_levels, 0, 1)) ** 1.4 * 0.65
    edges = cv2.Canny(_to_uint8(tone * 255), 40, 110)
    strokes = cv2.GaussianBlur(
        cv2.dilate(edges, np.ones((2, 2), np.uint8)).astype(np.float32) / 255, (0, 0), 1.0
    )
    ink_density = np.maximum(ink_density, 0.75 * np.clip(strokes * 1.4, 0, 1))
    rng = np.random.default_rng(seed)
    bleed = cv2.GaussianBlur(rng.standard_normal(grey.shape).astype(np.float32), (0, 0), side / 50)
    ink_density *= 1.0 + 0.08 * bleed / max(float(bleed.std()), 1e-6)
    paper = np.asarray((0.96, 0.93, 0.86), np.float32) * _paper(*grey.shape, seed + 1, 0.02)[..., None]
    return _to_uint8(255 * paper * (1.0 - np.clip(ink_density, 0, 0.95))[..., None])


def engraving(image: np.ndarray, seed: int) -> np.ndarray:
    # Parallel lines whose thickness follows the darkness, bent a little by the tones so they seem to
    # follow the forms, with the outlines cut in: a line engraving, black on off-white.
    side = min(image.shape[:2])
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    grey = cv2.GaussianBlur(grey, (0, 0), max(1.0, side / 400))
    spacing = max(3.0, side / 110)
    ys, xs = np.mgrid[0 : grey.shape[0], 0 : grey.shape[1]].astype(np.float32)
    bend = cv2.GaussianBlur(grey, (0, 0), side / 40) * spacing * 3
    phase = ((ys + 0.25 * xs + bend) / spacing) % 1.0
    darkness = 1.0 - grey
    line = np.abs(phase - 0.5) * 2  # 0 on a line's centre, 1 between lines
    ink = line < darkness * 0.95
    # Cross-hatching in the darkest tones.
    phase2 = ((ys - 0.9 * xs + bend) / spacing) % 1.0
    ink |= (np.abs(phase2 - 0.5) * 2 < (darkness - 0.55) * 1.6) & (darkness > 0.55)
    edges = cv2.Canny(_to_uint8(grey * 255), 50, 130) > 0
    ink |= edges
    paper = np.asarray((0.97, 0.95, 0.90), np.float32)
    out = np.where(ink[..., None], np.asarray((0.08, 0.07, 0.07), np.float32), paper)
    return _to_uint8(255 * cv2.GaussianBlur(out, (0, 0), 0.5))


FILTERS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "pencil_sketch": pencil_sketch,
    "colour_pencil": colour_pencil,
    "oil_painting": oil_painting,
    "watercolour": watercolour,
    "cartoon": cartoon,
    "pixel_art": pixel_art,
    "ink_wash": ink_wash,
    "engraving": engraving,
}


def stylise(image: np.ndarray, style: Style, seed: int) -> np.ndarray:
    """The photo drawn in ``style``; RGB uint8 of the same size."""
    return FILTERS[style.key](image, seed)
