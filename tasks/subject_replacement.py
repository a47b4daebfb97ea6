"""subject_replacement (GEdit-Bench `subject-replace`): a named object becomes another named object.

- Offline backend (the `inpaint` tool fills from surroundings): the new object is a labelled object of
  another photo of the run, of the old one's kind (tasks.replacement_vocabulary): its label is refined into
  a soft matte (a label a person drew is its own matte, feathered), it is scaled to the old object's box
  and stood where the old one stood (bottom centres aligned), relit from its photo's light to this one's
  (tasks.compositing.harmonise) and composited with its soft edge. When it does not cover the old object,
  the old one is first removed with the inpainting tool (the removal task's fill), and only a little of that
  fill may stay in view.
- Model backend (the `inpaint` tool paints from a prompt, FLUX-Fill): the old object's mask, grown to the
  new object's likely extent, is painted with "a cat".

Either way the `grounding` tool must then find the new object where it was put (Florence-2 with the model
backend; the offline one checks that a distinct object stands there), pixels outside the edit region must
be the source's, and both instructions name both objects: "Replace the dog on the left with a cat".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

from tasks.compositing import (
    GREY_CHROMA,
    SceneLight,
    best_matte,
    composite,
    decontaminate,
    feathered,
    harmonise,
    matte_defects,
    ring,
)
from tasks.masks import bbox_of, border_cut_fraction, dilate
from tasks.object_edits import refer, size_problem, usable_objects
from tasks.records import Candidate, ObjectLabel, Skip, SourceSample, TaskResult, skip_for
from tasks.replacement_vocabulary import kind_of, plausibility, replacements
from tasks.subject_removal import fill_problem
from tasks.tools import Tools, paints_from_prompts
from tasks.vocabulary import counted_singly, object_names, position_phrase, with_article

NAME = "subject_replacement"
GEDIT_KEY = "subject-replace"
ANNOTATORS = ("objects",)
TOOLS = ("inpaint", "grounding")
INPUTS = "image+partner"
LOCAL = True
# Offline, more photos to find an object of a plausible kind in; a model that paints from a prompt needs none.
PARTNERS = {"offline": 8, "models": 0}


@dataclass(frozen=True)
class Params:
    min_area: float = 0.008  # of the image: smaller objects make edits a judge cannot see
    max_area: float = 0.7  # larger ones leave too little of the scene to relight the new object from
    max_border_cut: float = 0.05  # the old object must be whole (tasks.masks.border_cut_fraction)
    max_new_border_cut: float = 0.01  # so must the new one in its own photo: a cut object pastes as half
    max_upscale: float = 1.6  # the new object may be enlarged this much at most (blur)
    max_leftover: float = 0.002  # of the old object left in view, above which it is removed
    max_fill_shown: float = 0.35  # removal fill left in view, of the new object's area
    max_strip: float = 0.02  # fill shown no deeper in the hole than this (of the shorter side): unchecked
    # Fill shown over at most this share of the new object's area (an apple's stem above the orange put
    # in its place) is, like a strip, the surroundings continued into a sliver: unchecked.
    max_speck: float = 0.02
    check_fill: bool = True  # the removal fill's checks (subject_removal's); off: to make judge negatives
    dilation: float = 0.012  # removal hole growth, of the image's shorter side
    grow: float = 0.04  # model backend: how far the painted region grows past the old object
    harmonise: float = 0.7  # how far the new object is relit toward this photo's light
    max_matte_halo: float = 0.15  # the new object's matte, as in background_change
    max_matte_dropped: float = 0.03
    max_unseen_edge: float = 0.1
    max_cover_growth: float = 1.8  # how much larger than fitting the old box the new object may be made
    small_paste: float = 0.5  # a new object shrunk at least this much keeps its label's mask as its matte
    max_outside_change: float = 0.001  # share of pixels outside the edit region that may change
    min_found_iou: float = 0.3  # the grounding tool's box against where the new object was put
    max_objects: int = 2  # pairs per source photo
    # Offline, the new object is of the old one's kind (tasks.replacement_vocabulary.plausibility 2: an apple
    # for an orange); 1 also lets in things of the same size class, which pasted read as no edit anyone
    # asks for (a pen where an orange was, on the held-out photos).
    min_plausibility: int = 2


_TEMPLATES_POSITIONED = (
    ("Replace the {old} {pos} with {new}.", "把{pos}的{old}换成{new}。"),
    ("Swap the {old} {pos} for {new}.", "将{pos}的{old}替换为{new}。"),
    ("Change the {old} {pos} into {new}.", "把{pos}的{old}变成{new}。"),
)
_TEMPLATES_PLAIN = (
    ("Replace the {old} with {new}.", "把{old}换成{new}。"),
    ("Swap the {old} for {new}.", "将{old}替换为{new}。"),
    ("Turn the {old} into {new}.", "把{old}变成{new}。"),
    ("Put {new} where the {old} is.", "在{old}的位置放上{new}。"),
)


def replacement_instruction(
    old: ObjectLabel, new: str, width: int, height: int, positioned: bool, rng: np.random.Generator
) -> dict[str, str]:
    old_names, new_names = object_names(old.category), object_names(new)
    values = {"old": old_names["en"], "new": with_article(new_names["en"])}
    one = rng.random() < 0.3 and counted_singly(new)
    new_zh = "一个" + new_names["zh"] if one else new_names["zh"]
    values_zh = {"old": old_names["zh"], "new": new_zh}
    if positioned:
        pos = position_phrase(old.bbox, width, height)
        en, zh = _TEMPLATES_POSITIONED[rng.integers(len(_TEMPLATES_POSITIONED))]
        return {"en": en.format(pos=pos["en"], **values), "zh": zh.format(pos=pos["zh"], **values_zh)}
    en, zh = _TEMPLATES_PLAIN[rng.integers(len(_TEMPLATES_PLAIN))]
    return {"en": en.format(**values), "zh": zh.format(**values_zh)}


def object_problem(label: ObjectLabel, image_area: int, params: Params) -> str | None:
    """Why this object cannot be replaced cleanly, or None when it can."""
    if label.mask is None or not label.mask.any():
        return "mask_empty"
    if kind_of(label.category) is None:
        return "unnamed_region" if label.category == "object" else "no_replacement_kind"
    return size_problem(label, image_area, params.min_area, params.max_area, params.max_border_cut)


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def make_pairs(source: SourceSample, params: Params, tools: Tools, seed: int) -> TaskResult:
    if not source.labels:
        return Skip("no_objects", "no object was labelled or detected")
    image_area = source.width * source.height
    usable, problems = usable_objects(source.labels, lambda label: object_problem(label, image_area, params))
    if not usable:
        return skip_for(problems, f"{len(source.labels)} objects, none replaceable")
    rng = np.random.default_rng(seed)
    generate = paints_from_prompts(tools.inpaint)
    candidates = []
    for index, old in enumerate(usable):
        # With others of its kind in the photo, the instruction must say which one: its position, when no
        # other of them has the same (two candies at the top left cannot be told apart in words).
        reference = refer(old, source.labels, {}, source.width, source.height, with_colour=False)
        if reference is None:
            problems["ambiguous_position"] += 1
            continue
        made = (_painted if generate else _pasted)(source, old, params, tools, rng)
        if isinstance(made, str):
            problems[made] += 1
            continue
        target, region, new, placed_box, details = made
        problem = _check(source, target, region, new, placed_box, params, tools)
        if problem is not None:
            problems[problem] += 1
            continue
        positioned = reference.positioned or bool(rng.random() < 0.5)
        candidates.append(
            Candidate(
                variant=f"obj{index}:{old.category}:{old.bbox[0]},{old.bbox[1]}->{new}",
                source=source.image,
                target=target,
                instruction=replacement_instruction(old, new, source.width, source.height, positioned, rng),
                mask=region,
                bbox=bbox_of(region),
                params={"category": old.category, "new_category": new, "label_source": old.source, **details},
            )
        )
        if len(candidates) >= params.max_objects:
            break
    return candidates or skip_for(problems, f"{len(usable)} replaceable objects, no replacement kept")


def _check(
    source: SourceSample,
    target: np.ndarray,
    region: np.ndarray,
    new: str,
    placed_box: tuple[int, int, int, int],
    params: Params,
    tools: Tools,
) -> str | None:
    """The quality gates every replacement passes: nothing changed outside the region, and the new object is
    found where it was put."""
    outside = ~region
    moved = np.abs(source.image.astype(np.int16) - target.astype(np.int16)).max(axis=-1) > 8
    if (moved & outside).sum() > params.max_outside_change * outside.sum():
        return "changed_outside_region"
    found = tools.grounding(target, with_article(object_names(new)["en"]), placed_box)
    if not any(iou(f.box, placed_box) >= params.min_found_iou for f in found):
        return "new_object_not_detected"
    return None


Made = tuple[np.ndarray, np.ndarray, str, tuple[int, int, int, int], dict]


def _painted(
    source: SourceSample, old: ObjectLabel, params: Params, tools: Tools, rng: np.random.Generator
) -> Made | str:
    """Model backend: the old object's region, grown, painted from a prompt naming the new object."""
    options = replacements(old.category)
    if not options:
        return "no_replacement_kind"
    new = options[int(rng.integers(len(options)))]
    radius = max(3, round(params.grow * min(source.width, source.height)))
    region = dilate(old.mask, radius)
    target = tools.inpaint(source.image, region, prompt=with_article(object_names(new)["en"]))
    box = bbox_of(region)
    assert box is not None
    return target, region, new, box, {"grow_px": radius, "prompt": with_article(object_names(new)["en"])}


def _pasted(
    source: SourceSample, old: ObjectLabel, params: Params, tools: Tools, rng: np.random.Generator
) -> Made | str:
    """Offline backend: the best-fitting plausible object of a partner photo, pasted over the old one."""
    offers = []
    for partner in source.partners:
        partner_area = partner.width * partner.height
        for label in partner.labels:
            score = plausibility(old.category, label.category)
            if score < params.min_plausibility or label.mask is None or not label.mask.any():
                continue
            if border_cut_fraction(label.mask) > params.max_new_border_cut:
                continue
            if label.mask.sum() < 0.002 * partner_area:
                continue
            old_aspect = (old.bbox[2] - old.bbox[0]) / (old.bbox[3] - old.bbox[1])
            new_aspect = (label.bbox[2] - label.bbox[0]) / (label.bbox[3] - label.bbox[1])
            offers.append((-score, abs(np.log(old_aspect / new_aspect)), float(rng.random()), partner, label))
    if not offers:
        return "no_partner_object"
    offers.sort(key=lambda offer: offer[:3])
    problems: Counter[str] = Counter()
    for _, _, _, partner, label in offers:
        made = _paste_one(source, old, partner, label, params, tools)
        if isinstance(made, str):
            problems[made] += 1
            continue
        return made
    return problems.most_common(1)[0][0]


def _paste_one(
    source: SourceSample,
    old: ObjectLabel,
    partner: SourceSample,
    new: ObjectLabel,
    params: Params,
    tools: Tools,
) -> Made | str:
    band = max(2, round(0.05 * float(np.sqrt(new.mask.sum()))))
    lx0, ly0, lx1, ly1 = new.bbox
    ox0, oy0, ox1, oy1 = old.bbox
    shrink = min((ox1 - ox0) / (lx1 - lx0), (oy1 - oy0) / (ly1 - ly0))
    # A label a person drew (COCO-style labels) ends where the object ends, even where the object and its
    # background look alike (an orange's shadowed side on a dark cloth), which GrabCut can only guess.
    drawn = new.source == "labels"
    if shrink <= params.small_paste or drawn:
        # Shrunk this much, an edge error of the label becomes a fraction of a pixel: the label's own mask,
        # feathered, is the matte (GrabCut would only drop parts it cannot tell from the background).
        alpha = feathered(new.mask, max(1.5, band / 6))
        defects = matte_defects(partner.image, alpha, new.mask, band)
        if drawn and (defects.halo > params.max_matte_halo or defects.holes > 0.01):
            return "new_object_matte"
    else:
        alpha, defects = best_matte(
            partner.image, new.mask, band, params.max_matte_halo, params.max_matte_dropped, max_holes=0.01
        )
        if alpha is None:
            return "new_object_matte"
    if defects.unseen > params.max_unseen_edge and not drawn:
        return "new_object_edge_unseen"  # cut where it looked like its own background: a fringe here
    # The new object relit from its photo's light to this one's, measured on rings around each object.
    origin = SceneLight.of(partner.image, ring(new.mask, band, 4 * band))
    old_band = max(2, round(0.05 * float(np.sqrt(old.mask.sum()))))
    destination = SceneLight.of(source.image, ring(old.mask, old_band, 4 * old_band))
    grey = SceneLight.of(source.image, np.ones(old.mask.shape, bool)).chroma < GREY_CHROMA
    pixels = harmonise(
        decontaminate(partner.image, alpha), alpha > 0, origin, destination, params.harmonise, greyscale=grey
    )

    nx0, ny0, nx1, ny1 = bbox_of(alpha > 0)  # type: ignore[misc]
    new_w, new_h, old_w, old_h = nx1 - nx0, ny1 - ny0, ox1 - ox0, oy1 - oy0
    # Cover the old object's box unless that makes the new object much larger than the old one; otherwise
    # fit inside it (and remove the rest of the old one).
    cover, fit = max(old_w / new_w, old_h / new_h), min(old_w / new_w, old_h / new_h)
    scale = cover if cover <= params.max_cover_growth * fit else fit * 1.1
    if scale > params.max_upscale:
        return "new_object_too_small"
    size = (max(2, round(new_w * scale)), max(2, round(new_h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    patch = cv2.resize(pixels[ny0:ny1, nx0:nx1], size, interpolation=interpolation)
    patch_alpha = np.clip(cv2.resize(alpha[ny0:ny1, nx0:nx1], size, interpolation=cv2.INTER_LINEAR), 0, 1)
    # Stood where the old one stood: bottom centres aligned, kept inside the frame.
    x0 = int(np.clip(round((ox0 + ox1) / 2 - size[0] / 2), 0, source.width - size[0]))
    y0 = int(np.clip(oy1 - size[1], 0, source.height - size[1]))
    if size[0] > source.width or size[1] > source.height:
        return "new_object_too_large"
    placed = np.zeros(source.image.shape, np.uint8)
    placed[y0 : y0 + size[1], x0 : x0 + size[0]] = patch
    placed_alpha = np.zeros(source.image.shape[:2], np.float32)
    placed_alpha[y0 : y0 + size[1], x0 : x0 + size[0]] = patch_alpha
    # The photo's other labelled objects stay where they are, over the new one: those that hid part of the
    # old object (a lemon before an orange slice) hide the same part of its replacement.
    others = np.zeros(old.mask.shape, bool)
    for label in source.labels:
        if label is not old and label.mask is not None:
            others |= label.mask & ~old.mask
    placed_alpha[others] = 0.0
    new_mask = placed_alpha > 0.5
    if not new_mask.any():
        return "new_object_hidden"

    cover_share = float((old.mask & (placed_alpha >= 0.99)).sum()) / float(old.mask.sum())
    # Any part of the old object the new one leaves in view (an apple's stem above an orange, a rim beside
    # it) is removed: the photo under the new object is the old object's hole filled from its
    # surroundings. Where the fill shows only as a strip near the hole's edge, it is the surroundings
    # continued a few pixels and needs no checks (the far inside of a large hole, a smear, stays under the
    # new object); anything more is the removal task's fill, with its checks.
    radius = max(2, round(params.dilation * min(source.width, source.height)))
    opaque = placed_alpha >= 0.99
    leftover = old.mask & ~opaque & ~others
    hole = dilate(old.mask, radius) & ~others
    shown = hole & ~opaque
    removed = float(leftover.sum()) > params.max_leftover * float(old.mask.sum())
    base, fill = source.image, {}
    if removed:
        if float(shown.sum()) > params.max_fill_shown * float(new_mask.sum()):
            return "removal_fill_too_large"
        depth = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3)
        strip = float(depth[shown].max()) <= params.max_strip * min(source.width, source.height)
        speck = float(shown.sum()) <= params.max_speck * float(new_mask.sum())
        if strip or speck:
            base = tools.inpaint(source.image, hole)
        else:
            filled, problem, fill = fill_problem(source.image, hole, old, tools.inpaint, params.check_fill)
            if problem is not None or filled is None:
                return problem or "fill_refused"
            base = filled
    target = composite(base, placed, placed_alpha)
    region = (shown if removed else np.zeros_like(shown)) | (placed_alpha > 0)
    region = dilate(region, 1)
    box = bbox_of(new_mask)
    assert box is not None
    details = {
        "new_source_sha256": partner.sha256,
        "new_label_source": new.source,
        "scale": round(scale, 3),
        "old_removed_first": removed,
        "old_covered": round(cover_share, 3),
        "new_matte_halo": round(defects.halo, 4),
        "new_matte_unseen_edge": round(defects.unseen, 4),
        **({"fill": fill} if fill else {}),
    }
    return target, region, new.category, box, details
