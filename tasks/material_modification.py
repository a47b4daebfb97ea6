"""material_modification (GEdit-Bench `material_alter`): a named object looks made of another material.

Input: a photo with named object masks. For each usable object the task draws a material
(tasks.materials: wood, marble, brushed metal, glass, fabric, stone, gold, ceramic), asks the `depth` tool
for the object's shape and the `retexture` tool for the object made of that material, and keeps the
result when it is a visible change.

Objects are skipped, each with its reason, when no edit a person accepts can come of them: unnamed or
people; too small to see or filling the photo; masks that hold more than the object (a cup's mask holds
its coffee, a potted plant's its plant: the new material would cover them too); a mask outline that does
not follow the object's edges (the new surface would end in a visibly wrong line); a result too close to
the photo (white ceramic on a white shell). Black-and-white photos are skipped whole.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

from tasks.colours import main_colour, rgb_to_lab
from tasks.masks import bbox_of
from tasks.materials import MATERIALS_BY_KEY, Material
from tasks.object_edits import (
    Reference,
    object_phrase,
    outline_support,
    refer,
    repaintable_objects,
    surface_pattern,
)
from tasks.records import Candidate, ObjectLabel, Skip, SourceSample, TaskResult, skip_for
from tasks.tools import Tools
from tasks.vocabulary import object_names

NAME = "material_modification"
GEDIT_KEY = "material_alter"
ANNOTATORS = ("objects",)
TOOLS = ("depth", "retexture")
INPUTS = "image"
LOCAL = True

# Fur and feathers: their look is their texture, which the shading layer cannot keep apart from the
# animal's shape; a stone squirrel made offline is a grey blob.
LIVING = frozenset(
    {
        "bird",
        "cat",
        "dog",
        "horse",
        "sheep",
        "cow",
        "elephant",
        "bear",
        "zebra",
        "giraffe",
        "squirrel",
        "butterfly",
        "teddy bear",
    }
)
# Categories whose masks, as labelled, hold what is in or on them.
HOLDS_CONTENTS = frozenset(
    {
        "cup",
        "bowl",
        "wine glass",
        "vase",
        "potted plant",
        "dining table",
        "bed",
        "sink",
        "toilet",
        "refrigerator",
        "oven",
        "microwave",
        "bench",
        "couch",
        "chair",
        "suitcase",
        "handbag",
        "backpack",
    }
)


@dataclass(frozen=True)
class Params:
    min_area: float = 0.006  # of the photo: a texture needs room to be seen
    max_area: float = 0.85
    max_border_cut: float = 0.3
    min_outline_support: float = 0.8  # see tasks.object_edits.outline_support
    max_pattern: float = 0.4  # see tasks.object_edits.surface_pattern
    min_compactness: float = 0.4  # see compactness: thin objects show every pixel a mask is off by
    min_glass_compactness: float = 0.6
    min_glass_radius: float = 40.0  # pixels (equivalent radius): smaller glass blurs into what is behind it
    min_change: float = 10.0  # mean CIE76 difference over the object between photo and result
    materials: tuple[str, ...] = tuple(MATERIALS_BY_KEY)
    materials_per_object: int = 1
    max_objects: int = 3


_TEMPLATES = (
    ("Make {obj_en} out of {mat_en}.", "把{obj_zh}变成{mat_zh}材质的。"),
    ("Change the material of {obj_en} to {mat_en}.", "把{obj_zh}的材质改成{mat_zh}。"),
    ("Make {obj_en} look like it is made of {mat_en}.", "让{obj_zh}看起来像是用{mat_zh}做的。"),
    ("Turn {obj_en} into {article} {adj} {noun}.", "把{obj_zh}变成{mat_zh}做的{noun_zh}。"),
)


def material_instruction(
    label: ObjectLabel,
    width: int,
    height: int,
    reference: Reference,
    material: Material,
    rng: np.random.Generator,
) -> dict[str, str]:
    """The instruction, "Make the cup out of wood" / "把杯子变成木头材质的"."""
    phrase = object_phrase(label, width, height, reference)
    names = object_names(label.category)
    en, zh = _TEMPLATES[rng.integers(len(_TEMPLATES))]
    values = {
        "obj_en": phrase["en"],
        "obj_zh": phrase["zh"],
        "mat_en": material.en,
        "mat_zh": material.zh,
        "adj": material.adjective,
        "article": "an" if material.adjective[0] in "aeiou" else "a",
        "noun": names["en"],
        "noun_zh": names["zh"],
    }
    return {"en": en.format(**values), "zh": zh.format(**values)}


def compactness(mask: np.ndarray) -> float:
    """Largest inscribed radius over the radius of a disc of the same area: 1 for a disc, low for thin or
    spread-out shapes. A rocket 30 pixels wide shows each pixel its mask is off by as a smear of the new
    material on the sky; and glass shows what is behind it, so a thin glass object is one that vanished."""
    inscribed = float(cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5).max())
    return inscribed / max(float(np.sqrt(mask.sum() / np.pi)), 1e-6)


def visible_change(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """Mean CIE76 colour difference over the mask."""
    return float(np.linalg.norm(rgb_to_lab(source[mask]) - rgb_to_lab(target[mask]), axis=-1).mean())


def make_pairs(source: SourceSample, params: Params, tools: Tools, seed: int) -> TaskResult:
    unknown = set(params.materials) - set(MATERIALS_BY_KEY)
    if unknown:
        raise ValueError(f"unknown materials {sorted(unknown)}; known: {sorted(MATERIALS_BY_KEY)}")

    def material_problem(label: ObjectLabel) -> str | None:
        if label.category in LIVING:
            return "living_subject"
        if label.category in HOLDS_CONTENTS:
            return "mask_holds_contents"
        if outline_support(source.image, label.mask) < params.min_outline_support:
            return "outline_off_edges"
        if surface_pattern(source.image, label.mask) > params.max_pattern:
            return "patterned_surface"
        if compactness(label.mask) < params.min_compactness:
            return "too_thin"
        return None

    found = repaintable_objects(
        source,
        (params.min_area, params.max_area, params.max_border_cut),
        "a coloured material would be its only colour",
        material_problem,
    )
    if isinstance(found, Skip):
        return found
    usable, problems = found
    # Colours tell apart objects of one category ("the red candy"); only measured where that is needed.
    repeated = Counter(label.category for label in source.labels)
    names = {
        id(label): main_colour(source.image, label.mask).name
        for label in source.labels
        if repeated[label.category] > 1 and label.mask is not None and label.mask.any()
    }
    rng = np.random.default_rng(seed)
    retexture, depth_of = tools["retexture"], tools["depth"]
    candidates: list[Candidate] = []
    edited = 0
    for index, label in enumerate(usable):
        if edited >= params.max_objects:
            break
        reference = refer(label, source.labels, names, source.width, source.height, with_colour=False)
        if reference is None:
            problems["ambiguous_reference"] += 1
            continue
        glass_fits = (
            compactness(label.mask) >= params.min_glass_compactness
            and np.sqrt(label.mask.sum() / np.pi) >= params.min_glass_radius
        )
        choices = [
            MATERIALS_BY_KEY[key]
            for key in params.materials
            if glass_fits or not MATERIALS_BY_KEY[key].transparent
        ]
        depth = depth_of(source.image, label.mask)
        picks = rng.choice(len(choices), size=min(params.materials_per_object, len(choices)), replace=False)
        kept_before = len(candidates)
        for pick in sorted(int(p) for p in picks):
            material = choices[pick]
            texture_seed = int(rng.integers(2**31))
            result = retexture(source.image, label.mask, material, label.category, depth, texture_seed)
            change = visible_change(source.image, result, label.mask)
            if change < params.min_change:
                problems["change_too_small"] += 1
                continue
            region = np.any(result != source.image, axis=-1) | label.mask
            candidates.append(
                Candidate(
                    variant=f"obj{index}:{label.category}:{label.bbox[0]},{label.bbox[1]}:{material.key}",
                    source=source.image,
                    target=result,
                    instruction=material_instruction(
                        label, source.width, source.height, reference, material, rng
                    ),
                    mask=region,
                    bbox=bbox_of(region),
                    params={
                        "category": label.category,
                        "label_source": label.source,
                        "method": retexture.name,
                        "depth": depth_of.name,
                        "target": {"material": material.key, "en": material.en, "zh": material.zh},
                        "texture_seed": texture_seed,
                        "mean_change_cie76": round(change, 1),
                    },
                )
            )
        edited += len(candidates) > kept_before
    if not candidates:
        if not problems:
            return Skip("no_objects", "no object was labelled or detected")
        return skip_for(problems, f"{len(source.labels)} objects, none retextured")
    return candidates
