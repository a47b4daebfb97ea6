"""background_change (GEdit-Bench `background_change`): the subject stays, everything around it is new.

The subject is the largest labelled object (a person from MediaPipe, or a COCO-labelled object) plus the
labelled things it holds; its label mask is refined into a soft matte (tasks.compositing.refine_matte). A
matte with holes or a halo is not used: a person would see them at once. Nor is a subject that would float:
one that does not reach the bottom of the frame stands on something in the photo (a squirrel on a branch),
which the new background would take away; only things that fly or are shown without support (a butterfly,
a flower head) may.

- Offline backend (the `inpaint` tool fills from surroundings): the new background is another photo of the
  run when one fits the subject (a person before a city street, a butterfly before foliage; a fruit before
  nothing but a backdrop), cropped to the source's shape at a size that needs little enlarging, placed where
  its own labelled objects stay out of sight, and named from its labels or from what its pixels plainly
  show (tasks.scene_words); the subject is then relit a little toward the new scene (colour temperature and
  the side the light comes from). When no partner photo fits, the subject goes before a plain studio
  backdrop of a colour that sets it off (tasks.backdrops), pixel-exact.
- Model backend (the `inpaint` tool paints from a prompt, FLUX-Fill): the inverse of the matte is painted
  with a scene from a bilingual vocabulary, and the subject is put back over it unchanged.

The mask of every pair is what changed: everything the subject does not fully cover.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

from tasks.backdrops import choices, grain, render, rim_pixels
from tasks.compositing import (
    GREY_CHROMA,
    SceneLight,
    best_matte,
    composite,
    decontaminate,
    erode,
    harmonise,
    to_lab,
)
from tasks.masks import bbox_of, dilate
from tasks.records import Candidate, ObjectLabel, Skip, SourceSample, TaskResult, skip_for
from tasks.scene_words import GENERATED_SCENES, Scene, scene_categories, scene_from_labels, scene_from_pixels
from tasks.tools import Tools, paints_from_prompts
from tasks.vocabulary import object_names

NAME = "background_change"
GEDIT_KEY = "background_change"
ANNOTATORS = ("objects",)
TOOLS = ("inpaint",)
INPUTS = "image+partner"
LOCAL = True
PARTNERS = {"offline": 3, "models": 0}  # a model that paints the new background needs no other photo


@dataclass(frozen=True)
class Params:
    min_subject_area: float = 0.04  # of the image: a smaller subject makes the pair all background
    max_subject_area: float = 0.75  # a larger one leaves too little background to change
    max_side_cut: float = 0.6  # a subject may leave the frame (a bust, a shoulder), not run along its side
    matte_band: float = 0.05  # GrabCut's band around the label's edge, of the subject's size (sqrt area)
    max_holes: float = 0.01  # foreground-coloured holes in the matte, of the subject's area
    max_halo: float = 0.15  # share of the subject's rim that shows the old background
    max_dropped: float = 0.03  # labelled parts the matte leaves out without telling them from background
    max_unseen_edge: float = 0.1  # share of the subject's rim that looks like the old background beside it
    harmonise: float = 0.35  # how far the subject is relit toward the new scene (0: pixel-exact)
    max_colour_shift: float = 3.0  # Lab units the subject's mean L, a or b may move
    max_light_shift: float = 4.0  # L units (0-100) the side light may brighten or darken the subject
    max_foreground_change: float = 10.0  # mean change of the opaque subject, grey levels
    max_upscale: float = 1.6  # the background crop may be enlarged this much at most
    max_scene_objects: float = 0.5  # how much of a new background the objects naming it may cover
    backdrop_contrast: float = 20.0  # Lab distance a backdrop keeps from the old background and the subject
    max_backdrop_alike: float = 0.25  # share of the subject's rim that may be as close as that to it
    shadow: float = 0.3  # contact shadow of a subject standing on a backdrop (0: none)
    per_source: int = 1  # pairs per source photo (each with another partner or backdrop)


_TEMPLATES = (
    ("Change the background to {scene}.", "把背景换成{scene}。"),
    ("Replace the background with {scene}.", "将背景替换为{scene}。"),
    ("Make the background {scene}.", "让背景变成{scene}。"),
)
_TEMPLATES_SUBJECT = (
    ("Put the {subject} in front of {scene}.", "把{subject}放到{scene}前面。"),
    ("Keep the {subject} and change the background to {scene}.", "保留{subject}，把背景换成{scene}。"),
)


def instruction(scene: Scene, subject: str | None, rng: np.random.Generator) -> dict[str, str]:
    """Names the new scene, and half the time the subject (``subject``: None when what stays is more than
    one labelled thing, a person and the ball at her feet, which one name would not cover)."""
    named = subject is not None and subject != "object" and bool(rng.random() < 0.5)
    templates = _TEMPLATES_SUBJECT if named else _TEMPLATES
    en, zh = templates[rng.integers(len(templates))]
    names = object_names(subject or "object")
    return {
        "en": en.format(scene=scene.en, subject=names["en"]),
        "zh": zh.format(scene=scene.zh, subject=names["zh"]),
    }


def side_cut(mask: np.ndarray) -> float:
    """Like tasks.masks.border_cut_fraction, over the top, left and right edges only."""
    box = bbox_of(mask)
    if box is None:
        return 0.0
    width, height = box[2] - box[0], box[3] - box[1]
    return float(max(mask[0, :].sum() / width, mask[:, 0].sum() / height, mask[:, -1].sum() / height))


def pick_subject(source: SourceSample, params: Params) -> tuple[ObjectLabel, np.ndarray] | str:
    """The subject and the mask of everything that stays: the subject and the labelled things in front of
    it or held by it. Or why there is none.

    Depth is not known, so "in front" is read from the frame: a labelled thing near the subject (touching
    it, or as near as a ball at a player's feet) that comes down as low as the subject does stands with it
    (a helmet on a lap, a tripod before a cameraman); one that ends higher up hangs behind it (a flag, a
    poster) and goes with the old background.
    """
    area = source.width * source.height
    problems: Counter[str] = Counter()
    usable = []
    for label in source.labels:
        if label.mask is None or not label.mask.any():
            problems["mask_empty"] += 1
        elif label.mask.sum() / area < params.min_subject_area:
            problems["subject_too_small"] += 1
        elif label.mask.sum() / area > params.max_subject_area:
            problems["subject_too_large"] += 1
        elif side_cut(label.mask) > params.max_side_cut:
            problems["subject_cut_by_border"] += 1
        else:
            usable.append(label)
    if not usable:
        return problems.most_common(1)[0][0] if problems else "no_objects"
    subject = max(usable, key=lambda lab: (int(lab.mask.sum()), lab.bbox))
    mask = subject.mask.copy()
    added = True
    while added:  # a chain: the tripod stands before the man who holds the camera
        added = False
        box = bbox_of(mask)
        bottom, height = box[3], box[3] - box[1]
        reach = dilate(mask, max(4, round(0.15 * height)))
        for label in source.labels:
            if label.mask is None or not label.mask.any() or (label.mask & ~mask).sum() == 0:
                continue
            held = (label.mask & mask).sum() >= 0.3 * label.mask.sum()
            standing = (label.mask & reach).any() and label.bbox[3] >= bottom - 0.1 * height
            if held or standing:
                mask |= label.mask
                added = True
                break
    if mask.sum() / area > params.max_subject_area:
        return "subject_too_large"
    return subject, mask


@dataclass(frozen=True)
class Background:
    image: np.ndarray  # the source's size
    scene: Scene
    partner: SourceSample
    crop: tuple[int, int, int, int]


# Where a subject may be shown. Outdoor subjects (people, animals, vehicles, buildings) fit any scene a
# partner photo shows; small wildlife and flowers fit foliage; anything else (a fruit, a cup, sweets) only a
# backdrop: a close-up of an apple before a city street is no photo anyone takes.
OUTDOOR = frozenset(
    {
        "person",
        "dog",
        "cat",
        "horse",
        "sheep",
        "cow",
        "elephant",
        "bear",
        "zebra",
        "giraffe",
        "bicycle",
        "motorcycle",
        "car",
        "bus",
        "truck",
        "train",
        "boat",
        "airplane",
        "bench",
        "pagoda",
        "tree",
    }
)
WILDLIFE = frozenset({"butterfly", "bird", "squirrel", "flower", "potted plant"})
# Subjects shown without what they stand on: they may end above the bottom of the frame.
FLOATING = frozenset({"butterfly", "bird", "flower", "kite", "airplane", "frisbee"})


def scene_fits(subject: str, scene: Scene, feet_in_view: bool) -> bool:
    """Whether a photo of the ``subject`` could have been taken before ``scene``: a fitting kind of scene,
    with ground at the bottom when the subject's feet are in view (a footballer over tree tops floats)."""
    if feet_in_view and not scene.ground and subject not in FLOATING:
        return False
    if scene.key.startswith("plain_"):
        return True
    if scene.key in ("foliage", "blurred_green"):
        return subject in OUTDOOR or subject in WILDLIFE
    return subject in OUTDOOR


def grounded(subject: np.ndarray, tolerance: float = 0.03) -> bool:
    """Whether the subject reaches the bottom of the frame (a bust, a person standing out of frame), so that
    whatever it stands on is out of the picture and any scene can go behind it."""
    box = bbox_of(subject)
    return box is not None and box[3] >= subject.shape[0] * (1.0 - tolerance)


def background_from(
    partner: SourceSample, size: tuple[int, int], subject: np.ndarray, kind: str, params: Params
) -> Background | str:
    """The partner cropped to the source's shape and named, or why it cannot be the new background.

    Crops of 100 %, 85 % and 70 % of the largest crop of the source's shape are tried at several places,
    larger first. A crop whose visible labelled objects name a scene (a bus: a city street, a pagoda) and
    show nothing else labelled wins; failing that, the crop showing least of the partner's labelled objects
    is named from its pixels. ``kind``: the subject's category, which the scene must fit.
    """
    width, height = size
    aspect = width / height
    full_w = min(partner.width, round(partner.height * aspect))
    full_h = min(partner.height, round(partner.width / aspect))
    visible = ~subject
    total = max(int(visible.sum()), 1)
    masks = [(label.category, label.mask) for label in partner.labels if label.mask is not None]
    least: tuple[float, tuple[int, int, int, int]] | None = None
    for fraction in (1.0, 0.85, 0.7):
        crop_w, crop_h = round(full_w * fraction), round(full_h * fraction)
        if width / crop_w > params.max_upscale:
            break
        for fx in (0.5, 0.0, 1.0, 0.25, 0.75):
            for fy in (0.5, 0.0, 1.0):
                x0 = round((partner.width - crop_w) * fx)
                y0 = round((partner.height - crop_h) * fy)
                crop = (x0, y0, x0 + crop_w, y0 + crop_h)
                shown: Counter[str] = Counter()
                for category, mask in masks:
                    part = mask[y0 : y0 + crop_h, x0 : x0 + crop_w].astype(np.uint8)
                    seen = cv2.resize(part, size, interpolation=cv2.INTER_NEAREST) > 0
                    shown[category] += float((seen & visible).sum()) / total
                covered = sum(shown.values())
                scene = scene_from_labels(dict(shown))
                if scene is not None:
                    defining = sum(shown[c] for c in scene_categories(scene))
                    if covered - defining <= 0.0 and defining <= params.max_scene_objects:
                        return _background(partner, crop, size, scene, subject, kind)
                if least is None or covered < least[0] - 1e-6:
                    least = (covered, crop)
    if least is None:
        return "background_too_small"
    if least[0] > 0.0:
        # Named from its pixels, the scene must not show any of the partner's own subjects: a sliver of
        # them around the new subject reads as a halo.
        return "background_shows_objects"
    x0, y0, x1, y1 = least[1]
    image = cv2.resize(partner.image[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
    scene = scene_from_pixels(image, visible)
    if scene is None:
        return "unnamed_scene"
    return _background(partner, least[1], size, scene, subject, kind)


def _background(
    partner: SourceSample,
    crop: tuple[int, int, int, int],
    size: tuple[int, int],
    scene: Scene,
    subject: np.ndarray,
    kind: str,
) -> Background | str:
    if not scene_fits(kind, scene, feet_in_view=not subject[-1].any()):
        return "scene_unfit_for_subject"
    x0, y0, x1, y1 = crop
    image = cv2.resize(partner.image[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
    return Background(image, scene, partner, crop)


def side_light(image: np.ndarray, where: np.ndarray) -> float:
    """How much brighter the right side of ``where`` is than its left (L units, 0-100 scale)."""
    lab_l = to_lab(image)[..., 0]
    columns = np.nonzero(where.any(axis=0))[0]
    if columns.size < 3:
        return 0.0
    third = (columns[-1] - columns[0]) // 3
    left = where.copy()
    left[:, columns[0] + third :] = False
    right = where.copy()
    right[:, : columns[-1] - third] = False
    if not left.any() or not right.any():
        return 0.0
    return float(lab_l[right].mean() - lab_l[left].mean())


def relight(
    source: np.ndarray, alpha: np.ndarray, old_background: np.ndarray, new: Background, params: Params
) -> np.ndarray:
    """The subject's pixels relit toward the new scene: its colour temperature and the side its light
    comes from, both by ``params.harmonise``."""
    subject = alpha > 0
    old_where = old_background & ~subject
    new_where = ~(alpha > 0.5)
    origin, destination = SceneLight.of(source, old_where), SceneLight.of(new.image, new_where)
    lit = harmonise(source, subject, origin, destination, params.harmonise, params.max_colour_shift)
    # Side light: a horizontal ramp of L across the subject, as the new scene is lit from one side more
    # than the old one was.
    difference = side_light(new.image, new_where) - side_light(source, old_where)
    most = params.max_light_shift
    amplitude = float(np.clip(params.harmonise * difference * 0.5, -most, most))
    box = bbox_of(subject)
    if box is None or abs(amplitude) < 0.25:
        return lit
    x = (np.arange(source.shape[1], dtype=np.float32) - (box[0] + box[2]) / 2) / max((box[2] - box[0]) / 2, 1)
    ramp = np.clip(x, -1, 1)[None, :] * amplitude
    lab = to_lab(lit)
    lab[..., 0] = np.clip(lab[..., 0] + ramp, 0, 100)
    relit = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    relit = np.clip(np.round(relit * 255), 0, 255).astype(np.uint8)
    return np.where(subject[..., None], relit, lit)


def make_pairs(source: SourceSample, params: Params, tools: Tools, seed: int) -> TaskResult:
    if not source.labels:
        return Skip("no_objects", "no object was labelled or detected")
    picked = pick_subject(source, params)
    if isinstance(picked, str):
        return Skip(picked, f"{len(source.labels)} objects, none a subject whose background can change")
    subject_label, subject_mask = picked
    category = subject_label.category
    lifted = not grounded(subject_mask) and category not in FLOATING
    # A thing that rests on a table or a floor (a fruit, a cup) can rest on a backdrop's sweep instead,
    # under its contact shadow; a squirrel on a branch or a pagoda behind trees cannot.
    resting = category not in OUTDOOR and category not in WILDLIFE
    if lifted and (not resting or paints_from_prompts(tools.inpaint)):
        return Skip(
            "subject_would_float",
            f"the {category} ends above the frame's bottom: it stands on "
            "something the new background would take away",
        )
    band = max(3, round(params.matte_band * float(np.sqrt(subject_mask.sum()))))
    alpha, defects = best_matte(
        source.image, subject_mask, band, params.max_halo, params.max_dropped, params.max_holes
    )
    if alpha is None:
        if defects.holes > params.max_holes:
            return Skip("matte_holes", f"holes of the subject's colour over {defects.holes:.3f} of it")
        if defects.halo > params.max_halo:
            return Skip("matte_halo", f"{defects.halo:.2f} of the subject's rim shows the old background")
        return Skip("matte_dropped_part", f"the matte leaves out {defects.dropped:.3f} of the subject")
    if defects.unseen > params.max_unseen_edge:
        # Where the subject and its old background look alike (an orange's shadowed side on a dark cloth)
        # nobody can see where the cut runs, until a new background shows it as a fringe or a bite.
        return Skip(
            "matte_edge_unseen", f"{defects.unseen:.2f} of the subject's rim is the old background's colour"
        )

    rng = np.random.default_rng(seed)
    common = {
        "subject": subject_label.category,  # what stays; not named in every instruction
        "subject_alone": bool((subject_mask == subject_label.mask).all()),
        "label_source": subject_label.source,
        "matte_band_px": band,
        "matte_holes": round(defects.holes, 4),
        "matte_halo": round(defects.halo, 4),
        "matte_dropped": round(defects.dropped, 4),
        "matte_unseen_edge": round(defects.unseen, 4),
    }
    if paints_from_prompts(tools.inpaint):
        return _generated(source, category, alpha, params, tools, rng, common)
    return _offline(source, category, alpha, lifted, params, rng, common)


def _candidate(
    source: SourceSample,
    target: np.ndarray,
    alpha: np.ndarray,
    variant: str,
    instruction: dict[str, str],
    params: dict,
) -> Candidate:
    changed = alpha < 1.0
    return Candidate(
        variant=variant,
        source=source.image,
        target=target,
        instruction=instruction,
        mask=changed,
        bbox=bbox_of(changed),
        params=params,
    )


def foreground_change(source: np.ndarray, target: np.ndarray, alpha: np.ndarray) -> float:
    """Mean absolute change of the fully opaque subject, in grey levels."""
    opaque = alpha >= 1.0
    if not opaque.any():
        return 0.0
    return float(np.abs(source[opaque].astype(np.int16) - target[opaque].astype(np.int16)).mean())


def _name(subject: str, common: dict) -> str | None:
    return subject if common["subject_alone"] else None


def _offline(
    source: SourceSample,
    subject: str,
    alpha: np.ndarray,
    lifted: bool,
    params: Params,
    rng: np.random.Generator,
    common: dict,
) -> TaskResult:
    """Partner photos that fit the subject first (unless it is ``lifted``: it would float before them),
    then plain backdrops, up to ``params.per_source`` pairs."""
    problems: Counter[str] = Counter()
    source_grey = SceneLight.of(source.image, np.ones(alpha.shape, bool)).chroma < GREY_CHROMA
    candidates = []
    if lifted:
        problems["subject_would_float"] += len(source.partners)
    else:
        candidates = _from_partners(source, subject, alpha, params, rng, common, source_grey, problems)
    if len(candidates) < params.per_source:
        candidates += _before_backdrops(
            source,
            subject,
            alpha,
            params,
            rng,
            common,
            source_grey,
            params.per_source - len(candidates),
            problems,
        )
    if not candidates:
        return skip_for(problems, f"{len(source.partners)} partner photos, then backdrops: none usable")
    return candidates


def _from_partners(
    source: SourceSample,
    subject: str,
    alpha: np.ndarray,
    params: Params,
    rng: np.random.Generator,
    common: dict,
    source_grey: bool,
    problems: Counter[str],
) -> list[Candidate]:
    candidates: list[Candidate] = []
    old_background = alpha <= 0.0
    for index in rng.permutation(len(source.partners)):
        partner = source.partners[int(index)]
        everywhere = np.ones(partner.image.shape[:2], bool)
        if (SceneLight.of(partner.image, everywhere).chroma < GREY_CHROMA) != source_grey:
            problems["greyscale_mismatch"] += 1  # a colour subject before a grey scene, or the reverse
            continue
        new = background_from(partner, (source.width, source.height), alpha > 0.5, subject, params)
        if isinstance(new, str):
            problems[new] += 1
            continue
        foreground = relight(decontaminate(source.image, alpha), alpha, old_background, new, params)
        target = composite(new.image, foreground, alpha)
        change = foreground_change(source.image, target, alpha)
        if change > params.max_foreground_change:
            problems["foreground_changed"] += 1
            continue
        candidates.append(
            _candidate(
                source,
                target,
                alpha,
                f"bg:{partner.sha256[:12]}:{new.scene.key}",
                instruction(new.scene, _name(subject, common), rng),
                {
                    **common,
                    "scene": new.scene.key,
                    "background_sha256": partner.sha256,
                    "background_crop": list(new.crop),
                    "foreground_change": round(change, 2),
                },
            )
        )
        if len(candidates) >= params.per_source:
            break
    return candidates


def _before_backdrops(
    source: SourceSample,
    subject: str,
    alpha: np.ndarray,
    params: Params,
    rng: np.random.Generator,
    common: dict,
    source_grey: bool,
    wanted: int,
    problems: Counter[str],
) -> list[Candidate]:
    """The subject, pixel-exact, before plain studio backdrops that set it off."""
    old_background = alpha <= 0.0
    old_colour = to_lab(source.image)[old_background].mean(axis=0)
    fitting = choices(
        rim_pixels(source.image, alpha),
        old_colour,
        source_grey,
        params.backdrop_contrast,
        params.max_backdrop_alike,
    )
    if not fitting:
        problems["no_backdrop_sets_subject_off"] += 1
        return []
    noise = grain(source.image, old_background)
    foreground = decontaminate(source.image, alpha)
    candidates = []
    for index in rng.permutation(len(fitting))[:wanted]:
        backdrop = fitting[int(index)]
        scene = backdrop.scene()
        backdrop_image = render(backdrop, alpha > 0.5, noise, rng, params.shadow)
        target = composite(backdrop_image, foreground, alpha)
        candidates.append(
            _candidate(
                source,
                target,
                alpha,
                f"bg:backdrop:{backdrop.key}",
                instruction(scene, _name(subject, common), rng),
                {
                    **common,
                    "scene": scene.key,
                    "backdrop_noise": round(noise, 2),
                    "foreground_change": round(foreground_change(source.image, target, alpha), 2),
                },
            )
        )
    return candidates


def _generated(
    source: SourceSample,
    subject: str,
    alpha: np.ndarray,
    params: Params,
    tools: Tools,
    rng: np.random.Generator,
    common: dict,
) -> TaskResult:
    candidates = []
    # Painted region: everything the subject does not fully cover, and a little of the subject's soft edge,
    # so the painter blends into it; the subject is put back exactly afterwards.
    hole = ~erode(alpha >= 1.0, 1)
    for index in rng.permutation(len(GENERATED_SCENES))[: params.per_source]:
        scene = GENERATED_SCENES[int(index)]
        painted = tools.inpaint(source.image, hole, prompt=scene.en)
        target = composite(painted, decontaminate(source.image, alpha), alpha)
        candidates.append(
            _candidate(
                source,
                target,
                alpha,
                f"bg:generated:{scene.key}",
                instruction(scene, _name(subject, common), rng),
                {
                    **common,
                    "scene": scene.key,
                    "prompt": scene.en,
                    "foreground_change": round(foreground_change(source.image, target, alpha), 2),
                },
            )
        )
    return candidates
