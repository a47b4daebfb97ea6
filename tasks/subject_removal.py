"""subject_removal (GEdit-Bench `subject-remove`): an object's mask is filled in so the object is gone.

Input: a source photo with object labels (from COCO-style annotations or a saliency annotator), each
with a mask. For each usable object the mask is dilated and handed to the inpainting tool; the inpainted
photo is the target. Objects that are too small, too large or cut by the frame are skipped with a reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from tasks.masks import bbox_of, border_cut_fraction, dilate
from tasks.records import Candidate, ObjectLabel, Skip, SourceSample, TaskResult
from tasks.tools import Tools
from tasks.vocabulary import object_names, position_phrase

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
    dilation: float = 0.012  # dilation radius as a fraction of the image's shorter side
    max_objects: int = 3  # samples per source photo


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
    if label.mask is None or not label.mask.any():
        return "mask_empty"
    area = float(label.mask.sum()) / image_area
    if area < params.min_area:
        return "mask_too_small"
    if area > params.max_area:
        return "mask_too_large"
    if border_cut_fraction(label.mask) > params.max_border_cut:
        return "mask_cut_by_border"
    return None


def make_pairs(source: SourceSample, params: Params, tools: Tools, seed: int) -> TaskResult:
    if not source.labels:
        return Skip("no_objects", "no object was labelled or detected")
    inpaint = tools.inpaint
    image_area = source.width * source.height
    problems: Counter[str] = Counter()
    usable: list[ObjectLabel] = []
    for label in source.labels:
        problem = object_problem(label, image_area, params)
        if problem is None:
            usable.append(label)
        else:
            problems[problem] += 1
    if not usable:
        reason, _ = problems.most_common(1)[0]
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(problems.items()))
        return Skip(reason, f"{len(source.labels)} objects, none usable ({detail})")

    # Largest first: the clearest edits, and a stable order for the variant names.
    usable.sort(key=lambda lab: (-int(lab.mask.sum()), lab.bbox))
    per_category = Counter(lab.category for lab in source.labels)
    radius = max(2, round(params.dilation * min(source.width, source.height)))
    rng = np.random.default_rng(seed)
    candidates = []
    for index, label in enumerate(usable[: params.max_objects]):
        region = dilate(label.mask, radius)
        target = inpaint(source.image, region)
        candidates.append(
            Candidate(
                variant=f"obj{index}:{label.category}:{label.bbox[0]},{label.bbox[1]}",
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
                params={"category": label.category, "label_source": label.source, "dilation_px": radius},
            )
        )
    return candidates
