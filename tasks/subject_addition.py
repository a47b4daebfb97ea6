"""subject_addition (GEdit-Bench `subject-add`): the inverse of subject_removal.

The removal pair's inpainted photo becomes the source and the untouched photo the target, so the object
that appears is a real one, lit and placed by the camera, and the instruction asks for it to be added.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tasks import subject_removal
from tasks.records import Skip, SourceSample, TaskResult
from tasks.tools import Tools
from tasks.vocabulary import object_names, position_phrase, with_article

NAME = "subject_addition"
GEDIT_KEY = "subject-add"
ANNOTATORS = subject_removal.ANNOTATORS
TOOLS = subject_removal.TOOLS
INPUTS = subject_removal.INPUTS
LOCAL = True
Params = subject_removal.Params

_TEMPLATES_POSITIONED = (
    ("Add {obj} {pos}.", "在{pos}添加一个{obj}。"),
    ("Put {obj} {pos}.", "在{pos}放一个{obj}。"),
    ("Place {obj} {pos} in the picture.", "在画面{pos}加上一个{obj}。"),
)
_TEMPLATES_PLAIN = (
    ("Add {obj}.", "添加一个{obj}。"),
    ("Put {obj} into the picture.", "在画面中加入一个{obj}。"),
    ("Insert {obj} into the scene.", "在场景里加一个{obj}。"),
)


def make_pairs(source: SourceSample, params: Params, tools: Tools, seed: int) -> TaskResult:
    removals = subject_removal.make_pairs(source, params, tools, seed)
    if isinstance(removals, Skip):
        return removals
    rng = np.random.default_rng(seed + 1)
    pairs = []
    for removal in removals:
        names = object_names(removal.params["category"])
        names["en"] = with_article(names["en"])
        if rng.random() < 0.5:
            pos = position_phrase(removal.bbox, source.width, source.height)
            en, zh = _TEMPLATES_POSITIONED[rng.integers(len(_TEMPLATES_POSITIONED))]
            instruction = {
                "en": en.format(obj=names["en"], pos=pos["en"]),
                "zh": zh.format(obj=names["zh"], pos=pos["zh"]),
            }
        else:
            en, zh = _TEMPLATES_PLAIN[rng.integers(len(_TEMPLATES_PLAIN))]
            instruction = {"en": en.format(obj=names["en"]), "zh": zh.format(obj=names["zh"])}
        pairs.append(
            replace(
                removal,
                variant="add:" + removal.variant,
                source=removal.target,
                target=removal.source,
                instruction=instruction,
            )
        )
    return pairs
