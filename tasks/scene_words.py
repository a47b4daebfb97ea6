"""Bilingual names for a new background: from the objects labelled in it, from what its pixels plainly
show, and the scene prompts the model backend generates.

An offline background comes from another photo of the run, and its instruction must name what that photo
shows. Two sources of names are trusted:

- the photo's labels (COCO-style, or a detector's): buses and traffic lights make "a city street", a bed
  "a bedroom" (`scene_from_labels`);
- what plain pixel statistics can tell reliably (`scene_from_pixels`): a clear blue sky, green foliage,
  trees under a sky, a plain backdrop of one colour. Anything else is not named, and the task skips it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Scene:
    key: str  # stable name, part of the variant
    en: str  # with its article: "a city street"
    zh: str
    ground: bool = False  # shows ground at the bottom a subject whose feet are in view can stand on


# (COCO or vocabulary categories) -> the scene they place a photo in.
_LABEL_SCENES: tuple[tuple[frozenset[str], Scene], ...] = (
    (
        frozenset(
            {
                "car",
                "bus",
                "truck",
                "motorcycle",
                "bicycle",
                "traffic light",
                "fire hydrant",
                "stop sign",
                "parking meter",
            }
        ),
        Scene("street", "a city street", "城市街道", ground=True),
    ),
    (frozenset({"boat"}), Scene("harbour", "a harbour with boats", "停着船只的港口")),
    (frozenset({"airplane"}), Scene("airfield", "an airfield", "机场跑道", ground=True)),
    (frozenset({"train"}), Scene("railway", "a railway station", "火车站", ground=True)),
    (frozenset({"bench"}), Scene("park", "a park", "公园", ground=True)),
    (frozenset({"horse", "cow", "sheep"}), Scene("pasture", "a farm pasture", "农场草地", ground=True)),
    (
        frozenset({"elephant", "zebra", "giraffe"}),
        Scene("savanna", "the African savanna", "非洲大草原", ground=True),
    ),
    (frozenset({"skis", "snowboard"}), Scene("ski_slope", "a snowy ski slope", "积雪的滑雪场", ground=True)),
    (frozenset({"surfboard"}), Scene("surf_beach", "a beach with surf", "有海浪的海滩", ground=True)),
    (
        frozenset({"oven", "microwave", "sink", "refrigerator", "toaster"}),
        Scene("kitchen", "a kitchen", "厨房", ground=True),
    ),
    (frozenset({"couch", "tv"}), Scene("living_room", "a living room", "客厅", ground=True)),
    (frozenset({"bed"}), Scene("bedroom", "a bedroom", "卧室", ground=True)),
    (frozenset({"toilet"}), Scene("bathroom", "a bathroom", "浴室", ground=True)),
    (frozenset({"laptop", "keyboard", "mouse"}), Scene("office", "an office desk", "办公桌", ground=True)),
    (frozenset({"rocket"}), Scene("launch_site", "a rocket launch site", "火箭发射场", ground=True)),
    (frozenset({"space shuttle"}), Scene("space_centre", "a space centre", "航天中心", ground=True)),
    (frozenset({"pagoda"}), Scene("pagoda", "a classical Chinese pagoda", "一座中式古塔")),
)


def scene_from_labels(visible_area: dict[str, float], min_area: float = 0.04) -> Scene | None:
    """The scene the labelled objects still visible in a background point to (the one whose objects
    cover the most of it, at least ``min_area``: a scene named for a bus must show it), or None.
    ``visible_area``: category -> fraction of the background it covers."""
    best: tuple[float, Scene] | None = None
    for categories, scene in _LABEL_SCENES:
        area = sum(visible_area.get(c, 0.0) for c in categories)
        if area >= min_area and (best is None or area > best[0]):
            best = (area, scene)
    return best[1] if best else None


def scene_categories(scene: Scene) -> frozenset[str]:
    """The categories whose labels name ``scene`` (empty for a scene named otherwise)."""
    return next((categories for categories, named in _LABEL_SCENES if named == scene), frozenset())


# Colour names of a plain backdrop: (en, zh).
_COLOURS = {
    "white": ("white", "白色"),
    "black": ("black", "黑色"),
    "grey": ("grey", "灰色"),
    "red": ("red", "红色"),
    "orange": ("orange", "橙色"),
    "yellow": ("yellow", "黄色"),
    "green": ("green", "绿色"),
    "blue": ("blue", "蓝色"),
    "purple": ("purple", "紫色"),
    "pink": ("pink", "粉色"),
    "brown": ("brown", "棕色"),
}


def colour_name(rgb_mean: np.ndarray) -> str:
    """The everyday name of a mean colour (a key of _COLOURS)."""
    pixel = np.clip(rgb_mean, 0, 255).astype(np.uint8).reshape(1, 1, 3)
    hue, sat, val = (int(v) for v in cv2.cvtColor(pixel, cv2.COLOR_RGB2HSV)[0, 0])
    if val < 50:
        return "black"
    if sat < 35:
        return "white" if val > 200 else "grey"
    if hue < 10 or hue >= 170:
        return "pink" if val > 200 and sat < 120 else "red"
    if hue < 22:
        return "brown" if val < 150 else "orange"
    if hue < 34:
        return "yellow" if val > 150 else "brown"
    if hue < 85:
        return "green"
    if hue < 130:
        return "blue"
    return "purple" if hue < 155 else "pink"


@dataclass(frozen=True)
class PixelClasses:
    """Fractions of a region's pixels by what they plainly are."""

    blue_sky: float  # blue, bright, smooth
    foliage: float  # green, textured
    smooth_green: float  # green, smooth (an out-of-focus garden)
    plain: float  # smooth, and near the region's mean colour


def pixel_classes(image: np.ndarray, where: np.ndarray) -> PixelClasses:
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    hue, sat, val = hsv[..., 0].astype(np.int16), hsv[..., 1], hsv[..., 2]
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    # Local contrast: standard deviation over a 7x7 window, in grey levels.
    mean = cv2.blur(grey, (7, 7))
    texture = np.sqrt(np.maximum(cv2.blur(grey * grey, (7, 7)) - mean * mean, 0.0))
    smooth = texture < 4.0
    blue = (hue >= 95) & (hue <= 130) & (sat > 40) & (val > 110)
    green = (hue >= 30) & (hue <= 90) & (sat > 50) & (val > 35)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab).astype(np.float32)
    centre = lab[where].mean(axis=0) if where.any() else lab.reshape(-1, 3).mean(axis=0)
    near_mean = np.linalg.norm(lab - centre, axis=-1) < 18.0
    total = max(int(where.sum()), 1)

    def share(mask: np.ndarray) -> float:
        return float((mask & where).sum()) / total

    return PixelClasses(
        blue_sky=share(blue & (texture < 6.0)),
        foliage=share(green & ~smooth),
        smooth_green=share(green & smooth),
        plain=share(smooth & near_mean),
    )


def scene_from_pixels(image: np.ndarray, where: np.ndarray) -> Scene | None:
    """A name for what the ``where`` pixels of ``image`` show, when plain statistics can tell; else None."""
    classes = pixel_classes(image, where)
    # Most of the scene must be what its name says: a "clear blue sky" with a tower in a quarter of it is
    # not one.
    if classes.blue_sky >= 0.85:
        return Scene("blue_sky", "a clear blue sky", "晴朗的蓝天")
    if classes.blue_sky >= 0.3 and classes.foliage >= 0.3 and classes.blue_sky + classes.foliage >= 0.8:
        return Scene("trees_and_sky", "green trees under a blue sky", "蓝天下的绿树")
    if classes.foliage >= 0.75:
        return Scene("foliage", "dense green foliage", "茂密的绿叶")
    if classes.smooth_green >= 0.75:
        return Scene("blurred_green", "a softly blurred green garden", "虚化的绿色花园")
    if classes.plain >= 0.85:
        name = colour_name(image[where].mean(axis=0) if where.any() else image.reshape(-1, 3).mean(axis=0))
        en, zh = _COLOURS[name]
        return Scene(f"plain_{name}", f"a plain {en} backdrop", f"纯{zh}的背景", ground=True)
    return None


# What the model backend paints behind the subject (FLUX-Fill on the inverse matte).
GENERATED_SCENES: tuple[Scene, ...] = (
    Scene("beach_sunset", "a beach at sunset", "日落时的海滩"),
    Scene("snowy_street", "a snowy street", "积雪的街道"),
    Scene("forest_path", "a forest path", "森林小径"),
    Scene("city_night", "a city street at night", "夜晚的城市街道"),
    Scene("mountain_lake", "a mountain lake", "山间湖泊"),
    Scene("desert", "a sandy desert", "沙漠"),
    Scene("library", "a library with bookshelves", "摆满书架的图书馆"),
    Scene("kitchen", "a modern kitchen", "现代厨房"),
    Scene("flower_field", "a field of flowers", "花田"),
    Scene("rainy_street", "a rainy street", "下雨的街道"),
    Scene("office", "a bright office", "明亮的办公室"),
    Scene("garden", "a green garden", "绿色的花园"),
    Scene("space", "outer space with stars", "繁星点点的太空"),
    Scene("underwater", "an underwater coral reef", "水下珊瑚礁"),
    Scene("autumn_park", "a park in autumn", "秋天的公园"),
    Scene("studio_grey", "a plain grey studio backdrop", "纯灰色的摄影棚背景"),
)
