"""subject_removal (GEdit-Bench `subject-remove`): an object's mask is filled in so the object is gone.

Input: a source photo with named object labels (COCO-style annotations, or an annotator that names what it
finds), each with a mask. For each usable object the mask is dilated past the object's soft edge and handed
to the inpainting tool; the inpainted photo is the target. What a person would reject is skipped with a
reason: objects too small, too large or cut by the frame, holes the inpainter cannot fill credibly (its
`can_fill`), and fills that do not look like their surroundings (tasks.fill_quality: a texture hole, a smear,
a colour patch, leftovers of the object, its outline still showing).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from tasks.fill_quality import measure_fill, surroundings
from tasks.masks import bbox_of, dilate
from tasks.object_edits import size_problem, usable_objects
from tasks.records import Candidate, ObjectLabel, Skip, SourceSample, TaskResult, skip_for
from tasks.tools import Inpainter, Tools
from tasks.vocabulary import OBJECTS, object_names, position_phrase

NAME = "subject_removal"
GEDIT_KEY = "subject-remove"
ANNOTATORS = ("objects",)
TOOLS = ("inpaint",)
INPUTS = "image"
LOCAL = True


@dataclass(frozen=True)
class Params:
    min_area: float = 0.004  # of the image; smaller objects make edits a judge cannot see
    max_area: float = 0.35  # larger ones leave too little context to inpaint from
    max_border_cut: float = 0.15  # see tasks.masks.border_cut_fraction
    # Dilation radius as a fraction of the object's size (sqrt of its area): an object's antialiased
    # edge and contact shadow reach further out on large objects (a smaller fixed radius left coloured
    # outlines around removed sweets on the held-out photos).
    dilation: float = 0.15
    max_objects: int = 3  # samples per source photo
    # Refuse holes the inpainter cannot fill, and fills a person would reject. False makes those pairs
    # anyway, as negatives for judges (bench/labels/).
    check_fill: bool = True


# Several phrasings so a model trained on the data does not learn one sentence.
_TEMPLATES_POSITIONED = (
    ("Remove the {obj} {pos}.", "移除{pos}的{obj}。"),
    ("Delete the {obj} {pos} from the picture.", "把{pos}的{obj}从画面中删掉。"),
    ("Take out the {obj} {pos}.", "去掉{pos}的{obj}。"),
    ("Erase the {obj} {pos} and fill in the background.", "擦除{pos}的{obj}，并补全背景。"),
)
_TEMPLATES_PLAIN = (
    ("Remove the {obj}.", "移除{obj}。"),
    ("Delete the {obj} from the picture.", "把{obj}从画面中删掉。"),
    ("Take the {obj} out of the image.", "把图中的{obj}去掉。"),
    ("Get rid of the {obj}.", "去除画面里的{obj}。"),
)


def removal_instruction(
    label: ObjectLabel, width: int, height: int, positioned: bool, rng: np.random.Generator
) -> dict[str, str]:
    names = object_names(label.category)
    if positioned:
        pos = position_phrase(label.bbox, width, height)
        en, zh = _TEMPLATES_POSITIONED[rng.integers(len(_TEMPLATES_POSITIONED))]
        return {
            "en": en.format(obj=names["en"], pos=pos["en"]),
            "zh": zh.format(obj=names["zh"], pos=pos["zh"]),
        }
    en, zh = _TEMPLATES_PLAIN[rng.integers(len(_TEMPLATES_PLAIN))]
    return {"en": en.format(obj=names["en"]), "zh": zh.format(obj=names["zh"])}


def object_problem(label: ObjectLabel, image_area: int, params: Params) -> str | None:
    """Why this object cannot be removed cleanly, or None when it can."""
    if label.category.lower() not in OBJECTS:
        return "unnamed_region"  # no name in both languages: no instruction can say what to remove
    return size_problem(label, image_area, params.min_area, params.max_area, params.max_border_cut)


def removal_hole(label: ObjectLabel, params: Params) -> np.ndarray:
    """The object's mask dilated past its soft edge."""
    return dilate(label.mask, max(3, round(params.dilation * np.sqrt(label.mask.sum()))))


def fill_problem(
    image: np.ndarray, hole: np.ndarray, label: ObjectLabel, inpaint: Inpainter, check: bool
) -> tuple[np.ndarray | None, str | None, dict[str, float]]:
    """The filled photo, the reason a person would reject the fill (None when it passes, or when `check` is
    off), and the fill's measurements (tasks.fill_quality)."""
    refused = inpaint.can_fill(image, hole) if check else None
    if refused:
        return None, refused, {}
    target = inpaint(image, hole)
    report = measure_fill(image, target, hole, label.mask)
    problems = report.problems(surroundings(image, hole).energy)
    measures = {key: round(value, 3) for key, value in vars(report).items()}
    return target, (f"fill_{problems[0]}" if problems and check else None), measures


def make_pairs(source: SourceSample, params: Params, tools: Tools, seed: int) -> TaskResult:
    if not source.labels:
        return Skip("unnamed_region", "no labelled object, and the annotator named none in the photo")
    inpaint = tools.inpaint
    image_area = source.width * source.height
    usable, problems = usable_objects(source.labels, lambda label: object_problem(label, image_area, params))
    per_category = Counter(lab.category for lab in source.labels)
    rng = np.random.default_rng(seed)
    candidates = []
    for label in usable:
        if len(candidates) == params.max_objects:
            break
        region = removal_hole(label, params)
        target, problem, measures = fill_problem(source.image, region, label, inpaint, params.check_fill)
        if problem:
            problems[problem] += 1
            continue
        candidates.append(
            Candidate(
                variant=f"obj{len(candidates)}:{label.category}:{label.bbox[0]},{label.bbox[1]}",
                source=source.image,
                target=target,
                instruction=removal_instruction(
                    label,
                    source.width,
                    source.height,
                    # Position is needed to tell instances apart; elsewhere it is added half the time.
                    per_category[label.category] > 1 or bool(rng.random() < 0.5),
                    rng,
                ),
                mask=region,
                bbox=bbox_of(region),
                params={
                    "category": label.category,
                    "label_source": label.source,
                    "fill": measures,
                },
            )
        )
    if not candidates:
        return skip_for(problems, f"{len(source.labels)} objects, none usable")
    return candidates
