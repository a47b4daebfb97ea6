"""Bilingual material vocabulary and procedural swatches: the surface each material lends an object.

A swatch is what the material looks like flat and evenly lit: an albedo (RGB in [0, 1]) and how glossy it
is. The retexture tool (annotators/retexture.py) lays it over the object along the object's shape and
lights it with the object's own shading. Sizes are relative to the object (``scale`` = its equivalent
radius in pixels), so a cup and a car both show a handful of wood rings, not one or a thousand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Material:
    key: str
    en: str  # "made of {en}"
    adjective: str  # "a {adjective} {object}"
    zh: str  # "把杯子变成{zh}的"
    gloss: float  # 0 matte .. 1 mirror-like: how much of the photo's highlights and surroundings it reflects
    transparent: bool = False
    metal: bool = False


MATERIALS: tuple[Material, ...] = (
    Material("wood", "wood", "wooden", "木头", 0.1),
    Material("marble", "marble", "marble", "大理石", 0.45),
    Material("brushed_metal", "brushed metal", "brushed-metal", "拉丝金属", 0.6, metal=True),
    Material("glass", "glass", "glass", "玻璃", 0.8, transparent=True),
    Material("fabric", "fabric", "fabric", "布料", 0.0),
    Material("stone", "stone", "stone", "石头", 0.05),
    Material("gold", "gold", "gold", "黄金", 0.75, metal=True),
    Material("ceramic", "glazed ceramic", "ceramic", "陶瓷", 0.55),
)
MATERIALS_BY_KEY = {material.key: material for material in MATERIALS}


def fbm(height: int, width: int, scale: float, octaves: int, rng: np.random.Generator) -> np.ndarray:
    """Fractal value noise in about [-1, 1]: ``octaves`` layers of smooth random grids, the coarsest with
    features of about ``scale`` pixels, each next one twice as fine and half as strong."""
    total = np.zeros((height, width), np.float32)
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        cell = max(1.0, scale / 2**octave)
        grid = rng.standard_normal((int(height / cell) + 3, int(width / cell) + 3)).astype(np.float32)
        layer = cv2.resize(
            grid, (int(grid.shape[1] * cell), int(grid.shape[0] * cell)), interpolation=cv2.INTER_CUBIC
        )
        total += amplitude * layer[:height, :width]
        norm += amplitude
        amplitude *= 0.5
    return total / (norm * 1.5)


def _streaks(height: int, width: int, length: float, angle: float, rng: np.random.Generator) -> np.ndarray:
    """White noise smeared along one direction: brushed metal's scratches, wood's fibres."""
    noise = rng.standard_normal((height, width)).astype(np.float32)
    size = max(3, int(length) | 1)
    kernel = np.zeros((size, size), np.float32)
    kernel[size // 2, :] = 1.0 / size
    rotation = cv2.getRotationMatrix2D((size / 2 - 0.5, size / 2 - 0.5), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (size, size))
    kernel /= max(float(kernel.sum()), 1e-6)
    streaks = cv2.filter2D(noise, -1, kernel, borderType=cv2.BORDER_REFLECT)
    return streaks / max(float(streaks.std()), 1e-6)


def _mix(low: tuple[float, float, float], high: tuple[float, float, float], t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)[..., None]
    return np.asarray(low, np.float32) * (1.0 - t) + np.asarray(high, np.float32) * t


def wood(height: int, width: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    # Rings around a centre off the object, stretched along the grain and bent by low-frequency noise:
    # on a plank they show as long stripes. Each ring darkens gradually to its latewood edge, then resets.
    angle = rng.uniform(0, np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    along = (xs - width / 2) * np.cos(angle) + (ys - height / 2) * np.sin(angle)
    across = (
        -(xs - width / 2) * np.sin(angle) + (ys - height / 2) * np.cos(angle) + rng.uniform(1.5, 3) * scale
    )
    rings = np.hypot(across, along * 0.08) + 0.2 * scale * fbm(height, width, scale * 0.8, 3, rng)
    phase = (rings / (scale / rng.uniform(3.0, 5.0))) % 1.0
    late = np.clip((phase - 0.45) / 0.55, 0, 1) ** 2
    fibres = 0.08 * _streaks(height, width, scale * 0.8, np.degrees(angle), rng)
    figure = 0.08 * fbm(height, width, scale * 0.4, 3, rng)
    light = np.asarray(rng.choice([(0.80, 0.60, 0.40), (0.72, 0.52, 0.32), (0.86, 0.70, 0.50)]), np.float32)
    albedo = _mix(tuple(light), tuple(0.6 * light), late) * (1 + fibres + figure)[..., None]
    return np.clip(albedo, 0, 1)


def marble(height: int, width: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    # Veins where a turbulent sine crosses zero, a main set and a fainter, finer one, on a cloudy white.
    angle = rng.uniform(0, np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    coordinate = xs * np.cos(angle) + ys * np.sin(angle)
    veins = np.zeros((height, width), np.float32)
    for strength, period, sharpness in ((0.55, 0.5, 8), (0.25, 0.2, 14)):
        turbulence = 2.0 * scale * fbm(height, width, scale * 0.9, 5, rng)
        wave = np.abs(np.sin((coordinate + turbulence) / (scale * period * rng.uniform(0.8, 1.2))))
        veins += strength * (1.0 - wave) ** sharpness
    veins = cv2.GaussianBlur(veins, (0, 0), max(0.8, scale / 150))
    cloud = 0.5 + 0.5 * fbm(height, width, scale * 0.5, 4, rng)
    base = _mix((0.83, 0.83, 0.81), (0.95, 0.95, 0.93), cloud)
    return np.clip(base * (1 - veins[..., None]) + veins[..., None] * np.array([0.30, 0.30, 0.33]), 0, 1)


def brushed_metal(height: int, width: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    streaks = _streaks(height, width, scale * 0.8, rng.uniform(-10, 10), rng)
    fine = _streaks(height, width, scale * 0.2, 0, rng)
    tone = 0.66 + 0.035 * streaks + 0.02 * fine
    return np.clip(np.stack([tone * 0.97, tone * 0.99, tone * 1.03], axis=-1), 0, 1)


def gold(height: int, width: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    tone = 1.0 + 0.04 * fbm(height, width, scale * 0.3, 3, rng)
    return np.clip(np.asarray((1.0, 0.72, 0.22), np.float32) * tone[..., None], 0, 1)


def glass(height: int, width: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    # Glass lends a faint tint; the tool shows what is behind it through the tint.
    tint = rng.choice([(0.90, 0.97, 0.97), (0.88, 0.95, 0.92), (0.95, 0.96, 0.98)])
    return np.broadcast_to(np.asarray(tint, np.float32), (height, width, 3)).copy()


def fabric(height: int, width: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    # Plain weave: threads running both ways, each a rounded ridge, crossing over and under in a
    # checkerboard; uneven threads (slubs) and a little fuzz.
    period = max(3.0, scale / rng.uniform(14, 22))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    warp = np.sin(np.pi * (xs / period % 1.0)) ** 0.7
    weft = np.sin(np.pi * (ys / period % 1.0)) ** 0.7
    over = (np.floor(xs / period) + np.floor(ys / period)) % 2 > 0
    thread = np.where(over, warp, weft)
    slub = 0.08 * fbm(height, width, period * 4, 2, rng)
    fuzz = 0.05 * rng.standard_normal((height, width)).astype(np.float32)
    colour = rng.choice([(0.25, 0.33, 0.55), (0.62, 0.18, 0.16), (0.78, 0.70, 0.56), (0.30, 0.42, 0.30)])
    return np.clip(np.asarray(colour, np.float32) * (0.7 + 0.3 * thread + slub + fuzz)[..., None], 0, 1)


def stone(height: int, width: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    # Granite-like: blotches of two tones, and irregular crystals, darker and lighter, at two sizes.
    base = np.asarray(rng.choice([(0.58, 0.56, 0.53), (0.64, 0.58, 0.50), (0.50, 0.50, 0.51)]), np.float32)
    blotch = fbm(height, width, scale * 0.5, 4, rng)
    albedo = _mix(tuple(0.88 * base), tuple(1.08 * base), 0.5 + blotch)
    for size in (max(2.0, scale / 30), max(1.5, scale / 70)):
        grains = fbm(height, width, size, 1, rng)
        dark, light = grains < np.quantile(grains, 0.18), grains > np.quantile(grains, 0.9)
        albedo = np.where(dark[..., None], albedo * 0.72, albedo)
        albedo = np.where(light[..., None], np.minimum(albedo * 1.18 + 0.04, 1.0), albedo)
    albedo = cv2.GaussianBlur(albedo, (0, 0), 0.5)
    return np.clip(albedo, 0, 1)


def ceramic(height: int, width: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    glaze = rng.choice([(0.93, 0.93, 0.90), (0.20, 0.36, 0.62), (0.55, 0.72, 0.62), (0.86, 0.82, 0.72)])
    tone = 1.0 + 0.02 * fbm(height, width, scale * 0.4, 2, rng)
    return np.clip(np.asarray(glaze, np.float32) * tone[..., None], 0, 1)


SWATCHES: dict[str, Callable[[int, int, float, np.random.Generator], np.ndarray]] = {
    "wood": wood,
    "marble": marble,
    "brushed_metal": brushed_metal,
    "glass": glass,
    "fabric": fabric,
    "stone": stone,
    "gold": gold,
    "ceramic": ceramic,
}


def swatch(material: Material, height: int, width: int, scale: float, seed: int) -> np.ndarray:
    """The material's albedo over a height x width canvas, float32 RGB in [0, 1]."""
    return SWATCHES[material.key](height, width, max(scale, 4.0), np.random.default_rng(seed)).astype(
        np.float32
    )
