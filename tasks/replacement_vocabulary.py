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
    "cutlery": ("spoon", "fork", "knife", "toothbrush"),
    "fruit": ("apple", "orange", "banana"),
    "dish": ("sandwich", "pizza", "donut", "cake", "hot dog", "broccoli", "carrot"),
    "gadget": ("cell phone", "remote", "camera", "mouse", "clock", "book", "scissors"),
    "seat": ("chair", "couch", "bench"),
    "bag": ("backpack", "handbag", "suitcase"),
    "ball": ("sports ball", "frisbee"),
    "headwear": ("helmet", "hat"),
}

# size class -> kinds: things of one class fit the same holes.
SIZE_CLASSES: dict[str, tuple[str, ...]] = {
    "handheld": ("vessel", "cutlery", "fruit", "dish", "gadget", "ball", "headwear"),
    "animal": ("pet", "farm animal", "wild animal"),
    "large": ("road vehicle", "aircraft", "seat", "bag"),
}

_KIND_OF = {category: kind for kind, members in KINDS.items() for category in members}
_CLASS_OF = {kind: size for size, kinds in SIZE_CLASSES.items() for kind in kinds}


def kind_of(category: str) -> str | None:
    return _KIND_OF.get(category)


def plausibility(old: str, new: str) -> int:
    """2: the same kind (dog -> cat), 1: the same size class (cup -> apple), 0: not a replacement a person
    would ask for (a different size class, an unknown or unnamed category, or the same category)."""
    if old == new or old not in _KIND_OF or new not in _KIND_OF:
        return 0
    if _KIND_OF[old] == _KIND_OF[new]:
        return 2
    return 1 if _CLASS_OF[_KIND_OF[old]] == _CLASS_OF[_KIND_OF[new]] else 0


def replacements(old: str) -> list[str]:
    """What the model backend may paint instead of ``old``: the other members of its kind."""
    kind = _KIND_OF.get(old)
    if kind is None:
        return []
    return [c for c in KINDS[kind] if c != old and c in OBJECTS]
