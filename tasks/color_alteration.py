"""color_alteration (GEdit-Bench `color_alter`): a named object takes a new named colour.

Input: a photo with named object masks (COCO-style labels, or a model that names what it finds). For each
usable object the task finds its main colour (tasks.colours.main_colour: the part a person would call
"the red cup", not the coffee in it), draws a target colour that is clearly another one, and hands the
region to the `recolour` tool with the object's shape from the `depth` tool. The result is measured before
it is kept: the region must now have the target colour.

Objects are skipped, each with its reason, when no edit a person accepts can come of them: unnamed or
people; too small to see or filling the photo; no main colour (a flag's stripes); a colour the
surroundings share (a red cup on a red saucer: only the mask's outline would say where the new colour
stops); a target colour the recolouring did not reach. Black-and-white photos are skipped whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tasks.colours import (
    BASIC_NAMES,
    TARGETS_BY_KEY,
    NamedColour,
    ObjectColour,
    basic_term,
    chroma_hue,
    delta_e94,
    hue_distance,
    main_colour,
    rgb_to_lab,
)
from tasks.masks import bbox_of
from tasks.object_edits import (
    Reference,
    object_phrase,
    on_edges,
    outline,
    refer,
    repaintable_objects,
)
from tasks.records import Candidate, ObjectLabel, Skip, SourceSample, TaskResult, skip_for
from tasks.tools import Tools

NAME = "color_alteration"
GEDIT_KEY = "color_alter"
ANNOTATORS = ("objects",)
TOOLS = ("depth", "recolour")
INPUTS = "image"
LOCAL = True


@dataclass(frozen=True)
class Params:
    min_area: float = 0.004  # of the photo: smaller objects make edits nobody sees
    max_area: float = 0.85  # larger "objects" are the whole photo
    max_border_cut: float = 1.0  # a car cut by the frame can change colour all the same
    reach: float = 0.01  # how far past the mask the new colour may go, of the shorter side (see main_colour)
    min_share: float = 0.5  # of the object that must have its main colour
    min_seam_support: float = 0.6  # see seam_support
    max_surround: float = 0.3  # of the ring around the object that may share its colour
    min_hue_change: float = 60.0  # degrees between a chromatic source and a chromatic target
    max_target_error: float = 15.0  # CIE94 between the recoloured region and the target colour
    targets: tuple[str, ...] = tuple(TARGETS_BY_KEY)
    colours_per_object: int = 1
    max_objects: int = 3


_NAMED = (
    ("Make {obj_en} {tgt_en}.", "把{obj_zh}变成{tgt_zh}。"),
    ("Change the color of {obj_en} to {tgt_en}.", "把{obj_zh}的颜色改成{tgt_zh}。"),
    ("Turn {obj_en} {tgt_en}.", "将{obj_zh}改为{tgt_zh}。"),
    ("Recolor {obj_en} {tgt_en}.", "把{obj_zh}重新涂成{tgt_zh}。"),
)
_FROM_TO = (
    ("Change the color of {obj_en} from {src_en} to {tgt_en}.", "把{obj_zh}的颜色从{src_zh}改成{tgt_zh}。"),
)


def colour_instruction(
    label: ObjectLabel,
    width: int,
    height: int,
    reference: Reference,
    target: NamedColour,
    rng: np.random.Generator,
) -> dict[str, str]:
    """The instruction, "Make the red car blue" / "把红色的汽车变成蓝色"; the source colour is named when
    it is clear."""
    phrase = object_phrase(label, width, height, reference)
    templates = _NAMED
    source_words = BASIC_NAMES[reference.colour] if reference.colour else ("", "")
    if reference.colour and rng.random() < 0.25:  # now and then "from red to blue", with a plain noun
        phrase = object_phrase(label, width, height, Reference(None, reference.positioned))
        templates = _FROM_TO
    en, zh = templates[rng.integers(len(templates))]
    values = {
        "obj_en": phrase["en"],
        "obj_zh": phrase["zh"],
        "tgt_en": target.en,
        "tgt_zh": target.zh,
        "src_en": source_words[0],
        "src_zh": source_words[1],
    }
    return {"en": en.format(**values), "zh": zh.format(**values)}


def target_choices(
    colour: ObjectColour, targets: tuple[str, ...], min_hue_change: float
) -> list[NamedColour]:
    """Target colours a person would see as a change of colour, not a shade of the same one."""
    chosen = []
    for key in targets:
        target = TARGETS_BY_KEY[key]
        if colour.name is not None and target.basic == colour.name:
            continue
        if colour.chromatic and target.chromatic:
            _, target_hue = chroma_hue(target.lab)
            if hue_distance(colour.hue, float(target_hue)) < min_hue_change:
                continue
        elif not (colour.chromatic or target.chromatic) and abs(float(colour.lab[0] - target.lab[0])) < 40:
            continue  # grey to grey: only black <-> white
        if float(delta_e94(colour.lab, target.lab[None])[0]) < 20:
            continue
        chosen.append(target)
    return chosen


def seam_support(image: np.ndarray, mask: np.ndarray, weights: np.ndarray) -> float:
    """Where the recoloured part of an object meets its other parts (the seam, away from the object's
    outline), the share of the seam that lies on an edge of the photo. A cup's red side meets its white rim
    along an edge; a shadow that k-means put in another group is met in the middle of a smooth gradient,
    and recolouring up to it would draw a line across the object. 1 when there is no seam."""
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=3) > 0
    seam = outline(weights > 0.5) & inner
    if seam.sum() < 0.05 * outline(mask).sum():
        return 1.0
    return on_edges(image, seam)


def reached(
    result: np.ndarray, weights: np.ndarray, target: NamedColour, max_error: float
) -> tuple[bool, float]:
    """Whether the recoloured region now has the target colour: near it (CIE94), and not named another
    (for black, white and grey: named it)."""
    core = weights > 0.5
    measured = np.median(rgb_to_lab(result[core]), axis=0)
    error = float(delta_e94(target.lab, measured[None])[0])
    term = basic_term(measured)
    # Black, white and grey are told apart by lightness alone: a white that came out grey is not white.
    named = term == target.basic if not target.chromatic else term in (None, target.basic)
    return error <= max_error and named, error


def make_pairs(source: SourceSample, params: Params, tools: Tools, seed: int) -> TaskResult:
    unknown = set(params.targets) - set(TARGETS_BY_KEY)
    if unknown:
        raise ValueError(f"unknown target colours {sorted(unknown)}; known: {sorted(TARGETS_BY_KEY)}")
    found = repaintable_objects(
        source,
        (params.min_area, params.max_area, params.max_border_cut),
        "one coloured object would be the only colour",
    )
    if isinstance(found, Skip):
        return found
    usable, problems = found
    reach = max(2, round(params.reach * min(source.width, source.height)))
    colours = {id(label): main_colour(source.image, label.mask, reach) for label in usable}
    rng = np.random.default_rng(seed)
    recolour, depth_of = tools["recolour"], tools["depth"]
    names = {key: colour.name for key, colour in colours.items()}
    candidates: list[Candidate] = []
    edited = 0
    for index, label in enumerate(usable):
        if edited >= params.max_objects:
            break
        colour = colours[id(label)]
        reference = refer(label, source.labels, names, source.width, source.height, with_colour=True)
        if reference is None:
            problems["ambiguous_reference"] += 1  # two red candies at the top left: which one?
            continue
        if colour.share < params.min_share:
            problems["no_main_colour"] += 1
            continue
        if colour.surround > params.max_surround:
            problems["surroundings_same_colour"] += 1
            continue
        seam = seam_support(source.image, label.mask, colour.weights)
        if seam < params.min_seam_support:
            problems["colour_seam_off_edges"] += 1
            continue
        choices = target_choices(colour, params.targets, params.min_hue_change)
        if not choices:
            problems["no_target_colour"] += 1
            continue
        picks = rng.choice(len(choices), size=min(params.colours_per_object, len(choices)), replace=False)
        depth = depth_of(source.image, label.mask)
        edited += 1
        for pick in sorted(int(p) for p in picks):
            target = choices[pick]
            result = recolour(source.image, colour.weights, target, label.category, depth)
            ok, error = reached(result, colour.weights, target, params.max_target_error)
            if not ok:
                problems["target_colour_not_reached"] += 1
                continue
            region = colour.weights > 0.02
            candidates.append(
                Candidate(
                    variant=f"obj{index}:{label.category}:{label.bbox[0]},{label.bbox[1]}:{target.key}",
                    source=source.image,
                    target=result,
                    instruction=colour_instruction(
                        label, source.width, source.height, reference, target, rng
                    ),
                    mask=region,
                    bbox=bbox_of(region),
                    params={
                        "category": label.category,
                        "label_source": label.source,
                        "method": recolour.name,
                        "source_colour": colour.name,
                        "source_lab": [round(float(v), 1) for v in colour.lab],
                        "target": {"colour": target.key, "en": target.en, "zh": target.zh, "hex": target.hex},
                        "target_error_cie94": round(error, 2),
                        "main_colour_share": round(colour.share, 3),
                        "surround_share": round(colour.surround, 3),
                        "seam_support": round(seam, 3),
                    },
                )
            )
    if not candidates:
        if not problems:
            return Skip("no_objects", "no object was labelled or detected")
        return skip_for(problems, f"{len(source.labels)} objects, none recoloured")
    return candidates
