"""Photographic tone operations on float32 RGB images in [0, 1] (sRGB encoded).

Each operation takes the image, a strength and a seeded generator, and returns the edited image.
Exposure and white balance work in linear light, where they are physically multiplicative; the
grading looks (contrast, dusk, night) work on the encoded values, as a colourist's curves do.
"""

from __future__ import annotations

import cv2
import numpy as np

# The sRGB transfer curves as 16-bit lookup tables: a table lookup costs a fraction of a per-pixel
# power, and 65 536 steps keep the error under 0.1 of an 8-bit level everywhere on the curve.
_LUT_SIZE = 65536
_GRID = np.linspace(0.0, 1.0, _LUT_SIZE, dtype=np.float64)
_TO_LINEAR = np.where(_GRID <= 0.04045, _GRID / 12.92, ((_GRID + 0.055) / 1.055) ** 2.4).astype(np.float32)
_TO_SRGB = np.where(_GRID <= 0.0031308, _GRID * 12.92, 1.055 * _GRID ** (1 / 2.4) - 0.055).astype(np.float32)


def _lookup(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    scaled = np.clip(values, 0.0, 1.0) * np.float32(_LUT_SIZE - 1) + np.float32(0.5)
    return table[scaled.astype(np.uint16)]


def to_linear(srgb: np.ndarray) -> np.ndarray:
    return _lookup(_TO_LINEAR, srgb)


def to_srgb(linear: np.ndarray) -> np.ndarray:
    return _lookup(_TO_SRGB, linear)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] floats to rounded, saturated 8-bit values."""
    return cv2.convertScaleAbs(image, alpha=255.0)


def luminance(rgb: np.ndarray) -> np.ndarray:
    return (0.2126 * rgb[..., 0] + 0.7152 * rgb[..., 1] + 0.0722 * rgb[..., 2]).astype(np.float32)


def exposure(image: np.ndarray, ev: float) -> np.ndarray:
    """Scale scene light by 2**ev stops."""
    return to_srgb(to_linear(image) * (2.0**ev))


def white_balance(image: np.ndarray, warmth: float) -> np.ndarray:
    """Shift colour temperature: warmth > 0 is warmer (more red, less blue), < 0 cooler.

    The gains are normalised so luminance is unchanged: only the colour cast moves.
    """
    gains = np.array([1.0 + 0.35 * warmth, 1.0 + 0.03 * warmth, 1.0 - 0.45 * warmth], np.float32)
    gains /= 0.2126 * gains[0] + 0.7152 * gains[1] + 0.0722 * gains[2]
    return to_srgb(to_linear(image) * gains)


def saturate(image: np.ndarray, factor: float) -> np.ndarray:
    """Scale chroma around each pixel's luminance."""
    lum = luminance(image)[..., None]
    return np.clip(lum + (image - lum) * factor, 0.0, 1.0)


def contrast_saturation(image: np.ndarray, amount: float) -> np.ndarray:
    """A grade that raises (amount > 0) or lowers (< 0) contrast and saturation together."""
    pivot = float(luminance(image).mean())
    contrasted = np.clip(pivot + (image - pivot) * (1.0 + 0.45 * amount), 0.0, 1.0)
    return saturate(contrasted, 1.0 + 0.6 * amount)


def _vertical_ramp(height: int) -> np.ndarray:
    """A column, 1 at the top row and 0 at the bottom (skies are at the top of most photos); it
    broadcasts across the width."""
    return np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None]


def dusk(image: np.ndarray, strength: float) -> np.ndarray:
    """Golden-hour to dusk: less light, a warm-magenta cast strongest in the upper frame."""
    ramp = _vertical_ramp(image.shape[0])[..., None]
    linear = to_linear(image) * (2.0 ** (-1.2 * strength))
    tint_top = np.array([1.35, 0.82, 0.75], np.float32)
    tint_bottom = np.array([1.12, 0.92, 0.80], np.float32)
    tint = 1.0 + (tint_bottom - 1.0 + ramp * (tint_top - tint_bottom)) * strength
    return saturate(to_srgb(linear * tint), 1.0 - 0.15 * strength)


def night(image: np.ndarray, strength: float) -> np.ndarray:
    """Day for night: about three stops darker, desaturated, blue cast, darkened corners."""
    height, width = image.shape[:2]
    linear = to_linear(saturate(image, 1.0 - 0.55 * strength)) * (2.0 ** (-3.0 * strength))
    linear *= 1.0 + (np.array([0.75, 0.9, 1.35], np.float32) - 1.0) * strength
    # radius² / 2 is separable: (x² + y²) / 2 over the normalised coordinates, an outer sum of two rows.
    xs = np.linspace(-1.0, 1.0, width, dtype=np.float32) ** 2
    ys = np.linspace(-1.0, 1.0, height, dtype=np.float32) ** 2
    vignette = 1.0 - 0.45 * strength * (ys[:, None] + xs[None, :]) / 2
    return to_srgb(linear * vignette[..., None])


def haze(image: np.ndarray, density: float, rng: np.random.Generator) -> np.ndarray:
    """Atmospheric scattering I = J·t + A·(1−t), t = exp(−β·d).

    With no depth model offline, depth d grows towards the top of the frame (the usual layout of
    outdoor photos) with a smooth random undulation so the haze is not a perfect gradient.
    """
    height, width = image.shape[:2]
    small = rng.random((8, 8)).astype(np.float32)
    undulation = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    depth = np.clip(0.35 + 0.55 * _vertical_ramp(height) + 0.2 * (undulation - 0.5), 0.0, 1.0)
    transmission = np.exp(-2.2 * density * depth)[..., None]
    airlight = np.array([0.86, 0.88, 0.90], np.float32)
    return np.clip(image * transmission + airlight * (1.0 - transmission), 0.0, 1.0)


def _streak_layer(
    height: int, width: int, density: float, length: int, angle: float, rng: np.random.Generator
) -> np.ndarray:
    """Sparse random drops smeared along a direction: a layer of rain streaks in [0, 1]."""
    drops = (rng.random((height, width), dtype=np.float32) < density).astype(np.float32)
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (length, length))
    kernel /= max(float(kernel.sum()), 1e-6)
    streaks = cv2.filter2D(drops, -1, kernel)
    return np.clip(streaks / max(float(streaks.max()), 1e-6), 0.0, 1.0)


def rain(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Falling rain: two layers of slanted streaks, screen-blended, over a slightly dimmed scene."""
    height, width = image.shape[:2]
    scale = min(height, width) / 512
    angle = float(rng.uniform(-100, -80))  # near vertical, in degrees for cv2's rotation
    base = saturate(image, 0.85) * (1.0 - 0.12 * strength) + 0.05 * strength
    layer = np.zeros((height, width), np.float32)
    for density, length in ((0.004, 25), (0.008, 13)):
        layer = np.maximum(
            layer,
            _streak_layer(height, width, density * strength, max(5, int(length * scale)) | 1, angle, rng),
        )
    layer = (0.75 * layer)[..., None]
    return 1.0 - (1.0 - base) * (1.0 - layer)


def snow(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Falling snow: flakes of three sizes (near flakes larger and softer), over a paler scene."""
    height, width = image.shape[:2]
    scale = min(height, width) / 512
    base = image * (1.0 - 0.15 * strength) + 0.12 * strength
    layer = np.zeros((height, width), np.float32)
    for density, radius in ((0.0012, 1.0), (0.0005, 2.0), (0.00015, 3.5)):
        flakes = (rng.random((height, width), dtype=np.float32) < density * strength).astype(np.float32)
        sigma = max(0.6, radius * scale)
        blurred = cv2.GaussianBlur(flakes, (0, 0), sigma)
        layer = np.maximum(layer, np.clip(blurred / max(float(blurred.max()), 1e-6), 0, 1))
    layer = (0.9 * layer)[..., None]
    return np.clip(1.0 - (1.0 - base) * (1.0 - layer), 0.0, 1.0)
