"""What the edits of one labelled object share: which objects can be edited (every object edit: size and
frame checks, the usable ones in a stable order), and, for the appearance edits (color_alteration,
material_modification), how the instruction names the one edited."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from tasks.colours import BASIC_NAMES, rgb_to_lab
from tasks.masks import bbox_of, border_cut_fraction, dilate
from tasks.records import ObjectLabel, Skip, SourceSample
from tasks.vocabulary import OBJECTS, object_names, position_phrase

# People: repainting or re-texturing a person's skin is not a colour or material edit anyone asks for
# without naming the garment, which the labels do not outline.
NOT_REPAINTABLE = frozenset({"person"})


def object_problem(
    label: ObjectLabel, image_area: int, min_area: float, max_area: float, max_border_cut: float
) -> str | None:
    """Why this labelled object cannot be repainted, or None when it can."""
    if label.category == "object":
        return "unnamed_region"  # an instruction must name what it edits
    if label.category.strip().lower() not in OBJECTS:
        return "name_not_in_vocabulary"  # no Chinese name for it
    if label.category in NOT_REPAINTABLE:
        return "not_repaintable"
    return size_problem(label, image_area, min_area, max_area, max_border_cut)


def size_problem(
    label: ObjectLabel, image_area: int, min_area: float, max_area: float, max_border_cut: float
) -> str | None:
    """Why this object's mask is no object to edit (empty, too small to see, the whole photo, cut by the
    frame: tasks.masks.border_cut_fraction), or None."""
    if label.mask is None or not label.mask.any():
        return "mask_empty"
    area = float(label.mask.sum()) / image_area
    if area < min_area:
        return "mask_too_small"
    if area > max_area:
        return "mask_too_large"  # the whole photo, not an object in it
    if border_cut_fraction(label.mask) > max_border_cut:
        return "mask_cut_by_border"
    return None


def usable_objects(
    labels: list[ObjectLabel], problem_of: Callable[[ObjectLabel], str | None]
) -> tuple[list[ObjectLabel], Counter[str]]:
    """The labels `problem_of` finds nothing wrong with, largest first (the clearest edits, and a stable
    order for the variant names), and how many of the others had each problem."""
    problems: Counter[str] = Counter()
    usable: list[ObjectLabel] = []
    for label in labels:
        problem = problem_of(label)
        if problem is None:
            usable.append(label)
        else:
            problems[problem] += 1
    usable.sort(key=lambda lab: (-int(lab.mask.sum()), lab.bbox))
    return usable, problems


def repaintable_objects(
    source: SourceSample,
    limits: tuple[float, float, float],
    greyscale_why: str,
    more_checks: Callable[[ObjectLabel], str | None] = lambda _label: None,
) -> tuple[list[ObjectLabel], Counter[str]] | Skip:
    """The labelled objects a colour or material edit may repaint (usable_objects), or a Skip when the
    photo offers none: no labels, or black and white (``greyscale_why`` says what that would do to the
    edit). ``limits``: min_area, max_area, max_border_cut; ``more_checks``: the task's own reasons."""
    if not source.labels:  # the offline annotator names only people; other objects need labels
        return Skip("unnamed_region", "no labelled object, and the annotator named none in the photo")
    if is_greyscale(source.image):
        return Skip("greyscale_photo", f"a black-and-white photo: {greyscale_why}")
    image_area = source.width * source.height
    return usable_objects(
        source.labels, lambda label: object_problem(label, image_area, *limits) or more_checks(label)
    )


def is_greyscale(image: np.ndarray) -> bool:
    """A black-and-white photo (stored as RGB): a colour or a coloured material on one object would be
    the only colour in it."""
    sample = image[::4, ::4].astype(np.int16)
    spread = np.maximum(np.abs(sample[..., 0] - sample[..., 1]), np.abs(sample[..., 1] - sample[..., 2]))
    return float(np.percentile(spread, 99)) <= 6


@dataclass(frozen=True)
class Reference:
    """How an instruction picks out one object: by its category alone, or with its colour and/or its
    position when other objects of the category are in the photo."""

    colour: str | None  # a basic colour term (tasks.colours.BASIC_NAMES)
    positioned: bool


def refer(
    label: ObjectLabel,
    labels: list[ObjectLabel],
    colour_names: dict[int, str | None],
    width: int,
    height: int,
    with_colour: bool,
) -> Reference | None:
    """The shortest reference that picks ``label`` out of ``labels`` (None when nothing does: two red
    candies at the top left). ``colour_names`` maps id(label) to its colour's name where known;
    ``with_colour`` names the colour even when the category alone would do (a colour edit says what it
    changes from)."""
    own = colour_names.get(id(label))
    siblings = [other for other in labels if other is not label and other.category == label.category]
    colour = own if with_colour else None
    if not siblings:
        return Reference(colour, False)
    if own is not None and all(colour_names.get(id(other)) != own for other in siblings):
        return Reference(own, False)
    where = position_key(label.bbox, width, height)
    # Siblings that the words so far would also fit: of the same colour, or of any colour when unnamed.
    alike = [other for other in siblings if own is None or colour_names.get(id(other)) in (own, None)]
    if all(position_key(other.bbox, width, height) != where for other in alike):
        return Reference(own, True)
    return None


def object_phrase(label: ObjectLabel, width: int, height: int, reference: Reference) -> dict[str, str]:
    """How an instruction names the object, "the red candy at the top left" / "左上角的红色糖果": its name,
    with its colour and position as the reference asks."""
    names = object_names(label.category)
    colour = BASIC_NAMES[reference.colour] if reference.colour else None
    en = f"{colour[0]} {names['en']}" if colour else names["en"]
    if reference.positioned:
        position = position_phrase(label.bbox, width, height)
        zh = f"{position['zh']}的{colour[1]}{names['zh']}" if colour else f"{position['zh']}的{names['zh']}"
        return {"en": f"the {en} {position['en']}", "zh": zh}
    return {"en": f"the {en}", "zh": f"{colour[1]}的{names['zh']}" if colour else names["zh"]}


def position_key(bbox: tuple[int, int, int, int], width: int, height: int) -> str:
    """The position phrase an instruction would use for this box."""
    return position_phrase(bbox, width, height)["en"]


def on_edges(image: np.ndarray, line: np.ndarray, tolerance: int = 3) -> float:
    """Share of the pixels of ``line`` (HxW bool: an outline, a seam) that lie on an edge of the photo,
    within ``tolerance`` pixels. An edge: a gradient well above the neighbourhood's typical one (at least
    a sixth of a full 0-255 step per pixel)."""
    box = bbox_of(dilate(line, 4 * tolerance))
    if box is None:
        return 0.0
    x0, y0, x1, y1 = box
    grey = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey = cv2.GaussianBlur(grey, (0, 0), 1.0)
    magnitude = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    strong = (magnitude > max(40.0, 2.0 * float(np.median(magnitude)))).astype(np.uint8)
    near = cv2.dilate(strong, np.ones((2 * tolerance + 1, 2 * tolerance + 1), np.uint8)) > 0
    return float(near[line[y0:y1, x0:x1]].mean())


def outline(mask: np.ndarray) -> np.ndarray:
    """The mask's own boundary pixels."""
    return mask & ~(cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)


def outline_support(image: np.ndarray, mask: np.ndarray, tolerance: int = 3) -> float:
    """Share of the mask's outline that lies on an edge of the photo (on_edges).

    An edit that replaces the whole look of an object shows exactly where its mask ends; when the outline
    runs through plain surroundings instead of along the object's edge (a polygon cutting across a table),
    the new surface ends in a visible, wrong line.
    """
    return on_edges(image, outline(mask), tolerance)


def masked_blur(values: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of ``values`` (HxW float) over the pixels of ``mask`` only (normalised convolution):
    what lies outside the mask does not bleed in."""
    weight = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma)
    blurred = cv2.GaussianBlur((values * mask).astype(np.float32), (0, 0), sigma)
    return blurred / np.maximum(weight, 1e-4)


def surface_pattern(image: np.ndarray, mask: np.ndarray) -> float:
    """How much of the object's lightness is pattern rather than shading: the spread of its lightness
    between a fine blur (a twentieth of its size) and a coarse one (a third), relative to its mean.

    The retexture tool takes the object's shading from its lightness and takes paint out of it where paint
    changes in steps (annotators.retexture.retinex_shading); white spots and prints still pass for glints
    and patches of light. Smooth objects (fruit, pots, candies) measure 0.05-0.15, printed or two-tone ones
    0.25 and more, a black-and-white butterfly 0.5.
    """
    radius = float(np.sqrt(mask.sum() / np.pi))
    lightness = rgb_to_lab(image)[..., 0] / 100.0
    fine = masked_blur(lightness, mask, max(1.5, 0.05 * radius))
    coarse = masked_blur(lightness, mask, max(2.0, 0.3 * radius))
    return float(np.std((fine - coarse)[mask]) / max(float(lightness[mask].mean()), 0.05))
