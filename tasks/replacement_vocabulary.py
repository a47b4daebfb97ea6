"""Which object may replace which: kinds of objects that stand in for one another in a photo.

A replacement reads as an edit a person asks for when the new object could plausibly be where the old one
was: a cat for a dog, a glass for a cup, a bus for a car. Objects are grouped by kind; a replacement is
chosen from the old object's kind first, then from its size class (things held in a hand, things on the
floor, large vehicles), and never across size classes: a cup is not replaced by a bus.
"""

from __future__ import annotations

from tasks.vocabulary import OBJECTS

# kind -> categories (names of tasks.vocabulary.OBJECTS)
KINDS: dict[str, tuple[str, ...]] = {
    "pet": ("cat", "dog", "teddy bear"),
    "farm animal": ("horse", "sheep", "cow"),
    "wild animal": ("elephant", "bear", "zebra", "giraffe"),
    "road vehicle": ("car", "bus", "truck", "motorcycle", "bicycle"),
    "aircraft": ("airplane", "rocket", "space shuttle"),
    "vessel": ("cup", "wine glass", "bottle", "bowl", "vase"),
    "utensil": ("spoon", "fork", "knife", "toothbrush", "pen"),
    "fruit": ("apple", "orange", "banana", "lemon", "lime", "kiwi"),
    "trinket": ("coin", "candy", "lid"),
    "dish": ("sandwich", "pizza", "donut", "cake", "hot dog", "broccoli", "carrot"),
    "gadget": ("cell phone", "remote", "camera", "mouse", "clock", "book", "scissors", "lighter"),
    "seat": ("chair", "couch", "bench"),
    "bag": ("backpack", "handbag", "suitcase"),
    "ball": ("sports ball", "frisbee"),
    "headwear": ("helmet", "hat"),
}

# Typical size (the longest side, cm): a replacement is at most MAX_SIZE_RATIO larger or smaller than the
# old object, so that scaled to its place it is a plausible size (a candy for a coin, not for a football).
SIZE_CM: dict[str, float] = {
    "cat": 45,
    "dog": 60,
    "teddy bear": 35,
    "horse": 220,
    "sheep": 120,
    "cow": 220,
    "elephant": 500,
    "bear": 200,
    "zebra": 220,
    "giraffe": 450,
    "car": 450,
    "bus": 1200,
    "truck": 800,
    "motorcycle": 200,
    "bicycle": 170,
    "airplane": 4000,
    "rocket": 5000,
    "space shuttle": 3700,
    "cup": 9,
    "wine glass": 20,
    "bottle": 25,
    "bowl": 15,
    "vase": 25,
    "spoon": 17,
    "fork": 19,
    "knife": 22,
    "toothbrush": 19,
    "pen": 14,
    "apple": 8,
    "orange": 8,
    "banana": 19,
    "lemon": 7,
    "lime": 5,
    "kiwi": 6,
    "sandwich": 12,
    "pizza": 30,
    "donut": 9,
    "cake": 20,
    "hot dog": 18,
    "broccoli": 15,
    "carrot": 18,
    "cell phone": 15,
    "remote": 18,
    "camera": 12,
    "mouse": 11,
    "clock": 25,
    "book": 22,
    "scissors": 18,
    "lighter": 7,
    "chair": 90,
    "couch": 200,
    "bench": 150,
    "backpack": 45,
    "handbag": 30,
    "suitcase": 65,
    "sports ball": 22,
    "frisbee": 25,
    "helmet": 28,
    "hat": 30,
    "coin": 2.4,
    "candy": 1.5,
    "lid": 4,
}
MAX_SIZE_RATIO = 2.5

# size class -> kinds: things of one class fit the same holes.
SIZE_CLASSES: dict[str, tuple[str, ...]] = {
    "handheld": ("vessel", "utensil", "fruit", "dish", "gadget", "ball", "headwear", "trinket"),
    "animal": ("pet", "farm animal", "wild animal"),
    "large": ("road vehicle", "aircraft", "seat", "bag"),
}

_KIND_OF = {category: kind for kind, members in KINDS.items() for category in members}
_CLASS_OF = {kind: size for size, kinds in SIZE_CLASSES.items() for kind in kinds}


def kind_of(category: str) -> str | None:
    return _KIND_OF.get(category)


def similar_size(old: str, new: str) -> bool:
    ratio = SIZE_CM[old] / SIZE_CM[new]
    return 1.0 / MAX_SIZE_RATIO <= ratio <= MAX_SIZE_RATIO


def plausibility(old: str, new: str) -> int:
    """2: the same kind (dog -> cat), 1: the same size class (cup -> apple), 0: not a replacement a person
    would ask for (a different size class or a size far off, an unknown or unnamed category, or the same
    category)."""
    if old == new or old not in _KIND_OF or new not in _KIND_OF or not similar_size(old, new):
        return 0
    if _KIND_OF[old] == _KIND_OF[new]:
        return 2
    return 1 if _CLASS_OF[_KIND_OF[old]] == _CLASS_OF[_KIND_OF[new]] else 0


def replacements(old: str) -> list[str]:
    """What the model backend may paint instead of ``old``: the members of its kind of a similar size."""
    kind = _KIND_OF.get(old)
    if kind is None:
        return []
    return [c for c in KINDS[kind] if c != old and c in OBJECTS and similar_size(old, c)]
