"""Bilingual colour vocabulary, and naming the colour of an object from its pixels, in CIE L*a*b* / LCh.

A source object's colour is only ever named with one of the eleven basic colour terms (``BASIC_NAMES``:
red, orange, yellow, green, blue, purple, pink, brown, black, white, grey), the words a person would agree
on, and only when one of them clearly fits (``basic_term``). ``TARGETS`` is the richer palette an edit may
ask for (navy blue, turquoise, burgundy...), each colour with the sRGB value the edit aims at and the basic
term it belongs to. ``main_colour`` finds which part of an object has its colour.

Lab here is OpenCV's for float RGB in [0, 1]: L in [0, 100], a and b roughly in [-128, 127] (D65).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tasks.masks import bbox_of, dilate


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 or [0, 1] float RGB (..., 3) -> float32 Lab (..., 3)."""
    values = rgb.astype(np.float32)
    if rgb.dtype == np.uint8:
        values /= 255.0
    shape = values.shape
    return cv2.cvtColor(values.reshape(-1, 1, 3), cv2.COLOR_RGB2Lab).reshape(shape)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """float Lab (..., 3) -> float32 RGB (..., 3), not clipped: values outside [0, 1] are out of gamut."""
    shape = lab.shape
    return cv2.cvtColor(lab.astype(np.float32).reshape(-1, 1, 3), cv2.COLOR_Lab2RGB).reshape(shape)


def _hex_lab(value: str) -> np.ndarray:
    rgb = np.array([[int(value[i : i + 2], 16) for i in (1, 3, 5)]], np.uint8)
    return rgb_to_lab(rgb)[0]


@dataclass(frozen=True)
class NamedColour:
    key: str  # stable name used in variants and records
    en: str
    zh: str  # ends with 色 where Chinese says so ("蓝色"), so "把...变成{zh}" reads naturally
    hex: str  # the sRGB colour an edit towards it aims at
    basic: str  # the basic colour term it falls under

    @property
    def lab(self) -> np.ndarray:
        return _hex_lab(self.hex)

    @property
    def chromatic(self) -> bool:
        return self.basic not in ACHROMATIC


ACHROMATIC = ("black", "white", "grey")
GREY_CHROMA = 14.0  # below this chroma a surface reads as black, white or grey

BASIC_NAMES: dict[str, tuple[str, str]] = {
    "red": ("red", "红色"),
    "orange": ("orange", "橙色"),
    "yellow": ("yellow", "黄色"),
    "green": ("green", "绿色"),
    "blue": ("blue", "蓝色"),
    "purple": ("purple", "紫色"),
    "pink": ("pink", "粉色"),
    "brown": ("brown", "棕色"),
    "black": ("black", "黑色"),
    "white": ("white", "白色"),
    "grey": ("gray", "灰色"),
}

# Prototypes (sRGB) of the chromatic basic terms: light, mid and dark shades, chosen so that the nearest
# prototype of an object's median colour is the word a person would use for it. Teal and cyan are left
# out on purpose: people split them between green and blue, so such an object's colour stays unnamed.
# Black, white and grey are named by lightness (see basic_term).
_BASIC_PROTOTYPES: dict[str, tuple[str, ...]] = {
    "red": ("#C62828", "#E53935", "#8E1B1B", "#B71C3C"),
    "orange": ("#F57C00", "#FB8C00", "#E0601A", "#FFA040"),
    "yellow": ("#FBC02D", "#FFE45C", "#E6C200", "#D4B03A"),
    "green": ("#2E9A3E", "#66BB6A", "#1B5E20", "#8BC34A", "#558B2F"),
    "blue": ("#1E5BD8", "#42A5F5", "#0D2C6C", "#1976D2", "#80C8F0"),
    "purple": ("#7B3FA0", "#5E2A84", "#9575CD", "#AB47BC"),
    "pink": ("#F06292", "#F8BBD0", "#EC407A", "#E89AB0"),
    "brown": ("#6D4C33", "#8D6E4B", "#4E342E", "#A1784F", "#5D4A2A"),
}

TARGETS: tuple[NamedColour, ...] = (
    NamedColour("red", "red", "红色", "#C62828", "red"),
    NamedColour("orange", "orange", "橙色", "#F57C00", "orange"),
    NamedColour("yellow", "yellow", "黄色", "#FBC02D", "yellow"),
    NamedColour("green", "green", "绿色", "#2E9A3E", "green"),
    NamedColour("blue", "blue", "蓝色", "#1E5BD8", "blue"),
    NamedColour("purple", "purple", "紫色", "#7B3FA0", "purple"),
    NamedColour("pink", "pink", "粉色", "#F06292", "pink"),
    NamedColour("brown", "brown", "棕色", "#6D4C33", "brown"),
    NamedColour("black", "black", "黑色", "#1E1E1E", "black"),
    NamedColour("white", "white", "白色", "#F0F0F0", "white"),
    NamedColour("grey", "gray", "灰色", "#8A8A8A", "grey"),
    NamedColour("navy_blue", "navy blue", "藏青色", "#1B2A5C", "blue"),
    NamedColour("sky_blue", "sky blue", "天蓝色", "#5DADEC", "blue"),
    NamedColour("turquoise", "turquoise", "绿松石色", "#1AAFA5", "blue"),
    NamedColour("lime_green", "lime green", "黄绿色", "#8BC34A", "green"),
    NamedColour("dark_green", "dark green", "深绿色", "#1F5130", "green"),
    NamedColour("olive_green", "olive green", "橄榄绿色", "#6B7A2A", "green"),
    NamedColour("burgundy", "burgundy", "酒红色", "#7B1E32", "red"),
    NamedColour("magenta", "magenta", "洋红色", "#D81B8C", "pink"),
    NamedColour("lavender", "lavender", "淡紫色", "#B39DDB", "purple"),
    NamedColour("coral", "coral", "珊瑚色", "#F2735A", "orange"),
    NamedColour("beige", "beige", "米色", "#D8C6A0", "brown"),
    NamedColour("mint_green", "mint green", "薄荷绿色", "#8FD9B6", "green"),
    NamedColour("golden_yellow", "golden yellow", "金黄色", "#E8B020", "yellow"),
)
TARGETS_BY_KEY = {colour.key: colour for colour in TARGETS}

_PROTO_NAMES = [name for name, protos in _BASIC_PROTOTYPES.items() for _ in protos]
_PROTO_LAB = rgb_to_lab(
    np.array(
        [[int(h[i : i + 2], 16) for i in (1, 3, 5)] for protos in _BASIC_PROTOTYPES.values() for h in protos],
        np.uint8,
    )
)


def chroma_hue(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chroma C* and hue angle h (degrees, [0, 360)) of Lab values (..., 3)."""
    a, b = lab[..., 1], lab[..., 2]
    return np.hypot(a, b), np.degrees(np.arctan2(b, a)) % 360.0


def hue_distance(h1: float | np.ndarray, h2: float | np.ndarray) -> float | np.ndarray:
    """Angle between hues in degrees, in [0, 180]."""
    d = np.abs(np.asarray(h1) - np.asarray(h2)) % 360.0
    return np.minimum(d, 360.0 - d)


def delta_e94(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIE94 colour difference of lab1 (3,) from each row of lab2 (..., 3), with the textile weighting
    (lightness counts half): the shading of a surface moves its lightness more than its colour."""
    l1, a1, b1 = (float(v) for v in lab1)
    c1 = np.hypot(a1, b1)
    c2 = np.hypot(lab2[..., 1], lab2[..., 2])
    dl, dc = l1 - lab2[..., 0], c1 - c2
    dh2 = np.maximum(0.0, (a1 - lab2[..., 1]) ** 2 + (b1 - lab2[..., 2]) ** 2 - dc**2)
    return np.sqrt((dl / 2) ** 2 + (dc / (1 + 0.045 * c1)) ** 2 + dh2 / (1 + 0.015 * c1) ** 2)


def basic_term(lab: np.ndarray) -> str | None:
    """The basic colour term of one Lab colour, or None when a person could as well say another one.

    Greys by lightness, with gaps between the bands where white and grey, or grey and black, are both
    fair names. Chromatic colours by the nearest prototype (CIE94), named only when the nearest other
    term's prototype is at least 25 % farther, the hue is within 30 degrees of that prototype's (CIE94
    forgives hue at low chroma), and a brown is neither light nor saturated.
    """
    lightness, chroma = float(lab[0]), float(np.hypot(lab[1], lab[2]))
    if chroma < GREY_CHROMA:
        if lightness >= 68:
            return "white"
        if lightness <= 28:
            return "black"
        return "grey" if 36 <= lightness <= 60 else None
    distances = delta_e94(lab, _PROTO_LAB)
    order = np.argsort(distances)
    best = _PROTO_NAMES[order[0]]
    other = next(distances[i] for i in order if _PROTO_NAMES[i] != best)
    _, prototype_hue = chroma_hue(_PROTO_LAB[order[0]])
    clear = distances[order[0]] <= 0.8 * other
    if not clear or hue_distance(chroma_hue(np.asarray(lab))[1], prototype_hue) > 30:
        return None
    if best == "brown" and (lightness > 58 or chroma > 40):
        return None  # a light brown is beige or tan; a saturated one is orange or red to most people
    return best


@dataclass(frozen=True)
class ObjectColour:
    """An object's main colour: the largest group of its pixels that share a hue (or are all grey), which
    is the colour a person names ("the red cup", not the coffee in it or its white rim)."""

    lab: np.ndarray  # median Lab of the group's well-lit pixels
    weights: np.ndarray  # float32 HxW in [0, 1]: how much each pixel belongs to the group (0 off the mask)
    share: float  # mean weight over the object's mask: how much of the object is that colour
    # Share of a ring around the object that has its colour too: a red cup on a red saucer. Recolouring
    # such an object follows the mask's outline, not a colour edge, and shows every error of the mask.
    surround: float
    name: str | None  # a basic term, when the colour is clear and covers most of the object

    @property
    def chroma(self) -> float:
        return float(np.hypot(self.lab[1], self.lab[2]))

    @property
    def hue(self) -> float:
        return float(np.degrees(np.arctan2(self.lab[2], self.lab[1])) % 360.0)

    @property
    def chromatic(self) -> bool:
        return self.chroma >= GREY_CHROMA


def saturation(lightness: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """Chroma relative to lightness: shading darkens a surface's lightness and chroma together, so one
    paint in light and in shadow keeps about the same saturation, while a white rim next to a red one
    does not."""
    return chroma / np.maximum(lightness, 8.0)


def _is_grey(lightness: float, chroma: float) -> bool:
    return chroma < 8.0 or saturation(lightness, chroma) < 0.22


def _groups(centres: np.ndarray) -> list[int]:
    """Cluster centres (L, C, h) merged into colour groups, so one paint in light and in shadow is one
    group: chromatic clusters of near hue and near saturation, grey clusters of near lightness."""
    group = list(range(len(centres)))
    for i in range(len(centres)):
        for j in range(i):
            (li, ci, hi), (lj, cj, hj) = centres[i], centres[j]
            grey_i, grey_j = _is_grey(li, ci), _is_grey(lj, cj)
            if grey_i or grey_j:
                same = grey_i and grey_j and abs(li - lj) < 30
            else:
                ratio = max(saturation(li, ci), saturation(lj, cj)) / min(
                    saturation(li, ci), saturation(lj, cj)
                )
                hue = hue_distance(hi, hj)
                same = (hue < 22 and ratio < 1.7) or (hue < 10 and ratio < 2.5)
            if same:
                old, new = group[i], group[j]
                group = [new if g == old else g for g in group]
    return group


def _band_width(mask: np.ndarray) -> int:
    """Width of an object's outline band: 6 % of its equivalent radius, at least 2 pixels."""
    return max(2, round(0.06 * np.sqrt(mask.sum() / np.pi)))


def _features(lab: np.ndarray) -> np.ndarray:
    """k-means features: a and b, and lightness at 0.4 (shading moves lightness most)."""
    return np.stack([lab[..., 1], lab[..., 2], 0.4 * lab[..., 0]], axis=-1).astype(np.float32)


def main_colour(
    image: np.ndarray, mask: np.ndarray, reach: int = 0, clusters: int = 5, min_share: float = 0.55
) -> ObjectColour:
    """The main colour of the object under ``mask`` (HxW bool) in ``image`` (HxWx3 uint8).

    Its pixels are clustered with k-means (``_features``) and the clusters merged into colour groups
    (``_groups``). The main group is chosen half by its share of the object and half by its share of the
    object's outline band, so that what is seen from outside wins over contents the mask also holds (the
    coffee in a cup). Every pixel gets a soft weight of belonging to it: the share of its nearness to the
    group's cluster centres among its nearness to all of them. The weights reach ``reach`` pixels past the
    mask where the colour goes on (a mask drawn a little inside the outline would leave a rim of the old
    colour). The colour is named only when it covers ``min_share`` of the object and one basic term fits it
    clearly (basic_term).
    """
    band_width = _band_width(mask)
    ring_width = 2 * band_width
    region_full = dilate(mask, reach)
    box = bbox_of(dilate(mask, reach + ring_width))
    if box is None:
        raise ValueError("main_colour needs a non-empty mask")
    x0, y0, x1, y1 = box
    mask, region = mask[y0:y1, x0:x1], region_full[y0:y1, x0:x1]
    lab_all = rgb_to_lab(image[y0:y1, x0:x1])
    lab = lab_all[mask]
    sample = lab[:: max(1, len(lab) // 20000)]
    features = _features(sample)
    k = int(min(clusters, len(features)))
    cv2.setRNGSeed(0)  # OpenCV's k-means draws its seeds from this: the same photo gives the same colour
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.5)
    _, assignment, centres = cv2.kmeans(features, k, None, criteria, 3, cv2.KMEANS_PP_CENTERS)
    chroma = np.hypot(centres[:, 0], centres[:, 1])
    hue = np.degrees(np.arctan2(centres[:, 1], centres[:, 0])) % 360.0
    groups = np.array(_groups(np.stack([centres[:, 2] / 0.4, chroma, hue], axis=1)))

    # Soft assignment of every pixel of the crop to the clusters.
    distances = np.linalg.norm(_features(lab_all)[..., None, :] - centres, axis=-1)
    nearest = groups[distances.argmin(axis=-1)]
    band = mask & ~(cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=band_width) > 0)
    score = np.bincount(groups[assignment.ravel()], minlength=k) / len(features)
    score = score + np.bincount(nearest[band], minlength=k) / max(int(band.sum()), 1)
    main = int(score.argmax())
    nearness = np.exp(-0.5 * ((distances - distances.min(axis=-1, keepdims=True)) / 6.0) ** 2)
    weights = nearness[..., groups == main].sum(axis=-1) / nearness.sum(axis=-1)
    # That share is relative to the object's own colours; a pixel far from all of them (the background)
    # must also be near the main group in absolute terms: within the spread of the group's own members.
    own = np.linalg.norm(features - centres[assignment.ravel()], axis=-1)[groups[assignment.ravel()] == main]
    spread = max(6.0, float(np.percentile(own, 95)))
    to_main = distances[..., groups == main].min(axis=-1)
    weights = weights * np.exp(-0.5 * (np.maximum(to_main - spread, 0.0) / 6.0) ** 2)

    # The surroundings: a ring just past the reach. When it has the object's colour, no colour edge marks
    # where the object ends and only the mask's outline would (see ObjectColour.surround).
    ring = dilate(region, ring_width) & ~region
    surround = float((weights[ring] > 0.5).mean()) if ring.any() else 0.0

    # Pieces of that colour cut off from the object's outline and small (a dark ring of coffee that
    # matches a cup's shaded side) are not the object's paint.
    core = (weights > 0.5) & mask
    count, pieces, stats, _ = cv2.connectedComponentsWithStats(core.astype(np.uint8), connectivity=8)
    outer = set(np.unique(pieces[band & core]).tolist()) - {0}
    large = {i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= 0.15 * core.sum()}
    weights = weights * cv2.dilate(np.isin(pieces, sorted(outer | large)).astype(np.uint8), np.ones((5, 5)))
    # Specular highlights: small bright spots enclosed by the main colour are the same paint catching the
    # light (a white spot left on a blue apple is a mistake a person sees at once).
    core = (weights > 0.5) & mask
    if core.any():
        bright = float(np.percentile(lab_all[..., 0][core], 75))
        count, holes, stats, _ = cv2.connectedComponentsWithStats(
            (mask & ~core).astype(np.uint8), connectivity=4
        )
        brightest = float(np.percentile(lab_all[..., 0][core], 95))
        open_holes = set(np.unique(holes[band]).tolist())
        for i in range(1, count):
            spot = holes == i
            if stats[i, cv2.CC_STAT_AREA] >= 0.05 * mask.sum():
                continue
            lightness = float(lab_all[..., 0][spot].mean())
            # A spot on the outline may be background seen past the object; only a glint brighter than
            # nearly all of the paint is taken there.
            if lightness > (brightest if i in open_holes else bright):
                weights[spot] = 1.0
    # Anti-aliased pixels on the object's outline mix its colour with the background's: a 3x3 maximum
    # lets the new colour cover them, then a light blur softens the region's edge.
    weights = cv2.dilate(weights.astype(np.float32) * region, np.ones((3, 3), np.uint8))
    weights = cv2.GaussianBlur(weights, (0, 0), 1.0) * region
    share = float(weights[mask].mean())

    core_lab = lab_all[mask & (weights > 0.5)]
    if len(core_lab) < 16:
        core_lab = lab
    low, high = np.percentile(core_lab[:, 0], (20, 90))
    lit = core_lab[(core_lab[:, 0] >= low) & (core_lab[:, 0] <= high)]
    median = np.median(lit if len(lit) >= 16 else core_lab, axis=0)
    name = basic_term(median) if share >= min_share else None
    full = np.zeros(region_full.shape, np.float32)
    full[y0:y1, x0:x1] = weights
    return ObjectColour(
        lab=median.astype(np.float32), weights=full, share=share, surround=surround, name=name
    )
