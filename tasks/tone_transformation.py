"""tone_transformation (GEdit-Bench `tone_transfer`): global photographic changes of light, colour,
time of day and weather, made by the algorithmic filters of tasks.tone_operations.

Every operation here is reversible as a data pair: the edited photo as source and the untouched photo as
target is a correct example of the opposite instruction (darken ↔ brighten, night → day, remove the haze,
remove the rain), so each forward pair also yields its inverse. The real photo is then the target, which
is what makes removal pairs trustworthy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from tasks import tone_operations as ops
from tasks.records import Candidate, Skip, SourceSample, TaskResult
from tasks.scene import is_outdoor_scene, visible_change
from tasks.tools import Tools

NAME = "tone_transformation"
GEDIT_KEY = "tone_transfer"
ANNOTATORS: tuple[str, ...] = ()
TOOLS: tuple[str, ...] = ()
INPUTS = "image"
LOCAL = False

Phrases = tuple[tuple[str, str], ...]  # alternatives of (English, Chinese)


@dataclass(frozen=True)
class ToneOperation:
    name: str
    apply: Callable[[np.ndarray, float, np.random.Generator], np.ndarray]
    strength: tuple[float, float]
    signed: bool  # one control with two directions: the forward direction is drawn at random
    needs_colour: bool
    # "+" / "-" for signed operations; "add" / "remove" for the others (forward / inverse).
    phrases: dict[str, Phrases]
    # Each output value depends only on the same pixel's same channel: the operation is then evaluated
    # once on the 256 input levels and applied as a lookup table, exactly and far faster.
    pointwise: bool = False
    # Time of day and weather: only for an outdoor scene (tasks.scene.is_outdoor_scene).
    needs_scene: bool = False


OPERATIONS: dict[str, ToneOperation] = {
    op.name: op
    for op in (
        ToneOperation(
            "exposure",
            lambda im, s, rng: ops.exposure(im, s),
            (0.6, 1.3),
            True,
            False,
            {
                "+": (("Increase the exposure.", "提高曝光。"), ("Brighten the photo.", "把照片调亮一些。")),
                "-": (
                    ("Decrease the exposure.", "降低曝光。"),
                    ("Make the photo darker.", "把照片调暗一些。"),
                ),
            },
            pointwise=True,
        ),
        ToneOperation(
            "white_balance",
            lambda im, s, rng: ops.white_balance(im, s),
            (0.5, 1.0),
            True,
            True,
            {
                "+": (
                    ("Make the colour temperature warmer.", "把色温调暖。"),
                    ("Give the photo a warmer, more golden tone.", "让照片的色调更暖、更偏金黄。"),
                ),
                "-": (
                    ("Make the colour temperature cooler.", "把色温调冷。"),
                    ("Give the photo a cooler, bluer tone.", "让照片的色调更冷、更偏蓝。"),
                ),
            },
            pointwise=True,
        ),
        ToneOperation(
            "contrast_saturation",
            lambda im, s, rng: ops.contrast_saturation(im, s),
            (0.5, 1.0),
            True,
            False,
            {
                "+": (
                    ("Increase the contrast and saturation.", "提高对比度和饱和度。"),
                    ("Make the colours more vivid and punchy.", "让颜色更鲜艳、更有冲击力。"),
                ),
                "-": (
                    (
                        "Lower the contrast and saturation for a muted look.",
                        "降低对比度和饱和度，让画面更柔和。",
                    ),
                    ("Make the colours softer and more faded.", "让颜色更淡、更有褪色感。"),
                ),
            },
        ),
        ToneOperation(
            "dusk",
            lambda im, s, rng: ops.dusk(im, s),
            (0.6, 1.0),
            False,
            True,
            {
                "add": (
                    ("Change the time of day to dusk.", "把时间改成黄昏。"),
                    ("Make it look like the sun is setting.", "让画面看起来像日落时分。"),
                ),
                "remove": (
                    ("Change the time of day to bright daytime.", "把时间改成明亮的白天。"),
                    ("Make it look like midday.", "让画面看起来像正午。"),
                ),
            },
            needs_scene=True,
        ),
        ToneOperation(
            "night",
            lambda im, s, rng: ops.night(im, s),
            (0.7, 1.0),
            False,
            False,
            {
                "add": (
                    ("Turn the scene into night.", "把场景变成夜晚。"),
                    ("Make it look like it was taken at night.", "让照片看起来像是在夜里拍的。"),
                ),
                "remove": (
                    ("Turn the night scene into daytime.", "把夜景变成白天。"),
                    ("Make it look like it was taken during the day.", "让照片看起来像是白天拍的。"),
                ),
            },
            needs_scene=True,
        ),
        ToneOperation(
            "haze",
            ops.haze,
            (0.5, 1.0),
            False,
            False,
            {
                "add": (
                    ("Add haze to the scene.", "给画面加上雾霾。"),
                    ("Make the scene foggy.", "让场景变得雾蒙蒙的。"),
                ),
                "remove": (
                    ("Remove the haze.", "去除画面中的雾霾。"),
                    ("Clear the fog so the scene is crisp.", "去掉雾气，让画面清晰通透。"),
                ),
            },
            needs_scene=True,
        ),
        ToneOperation(
            "rain",
            ops.rain,
            (0.6, 1.0),
            False,
            False,
            {
                "add": (
                    ("Add falling rain.", "加上下雨的效果。"),
                    ("Make it rain in the picture.", "让画面里下起雨来。"),
                ),
                "remove": (
                    ("Remove the rain.", "去掉画面中的雨。"),
                    ("Remove the rain streaks.", "去除雨丝。"),
                ),
            },
            needs_scene=True,
        ),
        ToneOperation(
            "snow",
            ops.snow,
            (0.6, 1.0),
            False,
            False,
            {
                "add": (
                    ("Make it snow.", "加上下雪的效果。"),
                    ("Add falling snowflakes.", "添加飘落的雪花。"),
                ),
                "remove": (
                    ("Remove the falling snow.", "去掉飘落的雪。"),
                    ("Remove the snowflakes.", "去除雪花。"),
                ),
            },
            needs_scene=True,
        ),
    )
}


@dataclass(frozen=True)
class Params:
    operations: tuple[str, ...] = tuple(OPERATIONS)
    per_image: int = 3  # operations drawn per source photo
    inverse_pairs: bool = True
    min_std: float = 0.02  # below this the photo is flat: no tone edit is visible on it
    # The edit must be seen: tasks.scene.visible_change (mean CIE76 colour difference, or 10x the share of
    # pixels changed by more than 15) at least this. Below it, the strength is raised (up to 1.6x the top
    # of the operation's range); an edit still below is skipped. 6 is where a dusk grade on a flower
    # close-up or a warmer white balance on an orange flower stopped being visible on the held-out photos.
    min_visible: float = 6.0
    max_clipped: float = 0.08  # share of the photo an edit may newly blow out or crush
    # Time of day and weather only on outdoor scenes. False (with min_visible=0, max_clipped=1) makes the
    # pairs a person rejects, as negatives for judges (bench/labels/).
    scene_check: bool = True


def _phrase(options: Phrases, rng: np.random.Generator) -> dict[str, str]:
    en, zh = options[rng.integers(len(options))]
    return {"en": en, "zh": zh}


def _is_colour(image: np.ndarray) -> bool:
    sample = image[::4, ::4]  # a 1/16 sample decides this as well as every pixel and costs 1/16
    r, g, b = sample[..., 0], sample[..., 1], sample[..., 2]
    chroma = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    return float(np.percentile(chroma, 95)) > 0.04


def _edit(op: ToneOperation, source: np.ndarray, strength: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)  # the same noise (rain, snow, haze) at every strength tried
    if op.pointwise:
        levels = np.repeat(np.linspace(0.0, 1.0, 256, dtype=np.float32)[:, None, None], 3, axis=2)
        return cv2.LUT(source, ops.to_uint8(op.apply(levels, strength, rng)))
    return ops.to_uint8(op.apply(source.astype(np.float32) / 255.0, strength, rng))


def _clipped(image: np.ndarray) -> float:
    """Share of pixels blown to white or crushed to black (every channel at >= 250 or <= 5). A single
    channel at its limit is only a saturated colour, which a vivid grade makes on purpose."""
    low = np.minimum(np.minimum(image[..., 0], image[..., 1]), image[..., 2])
    high = np.maximum(np.maximum(image[..., 0], image[..., 1]), image[..., 2])
    return float(((low >= 250) | (high <= 5)).mean())


def visible_edit(
    op: ToneOperation, source: np.ndarray, strength: float, seed: int, params: Params
) -> tuple[np.ndarray, float] | str:
    """The edit at the drawn `strength`, made weaker while it would blow out or crush too much of the photo
    (brightening a white background), or stronger until it is visible (up to 1.6x the top of its range);
    else the reason: `edit_clips` or `edit_not_visible`."""
    ceiling = 1.6 * op.strength[1]
    allowed = _clipped(source) + params.max_clipped

    def visible(edited: np.ndarray) -> bool:
        return visible_change(source, edited) >= params.min_visible

    edited = _edit(op, source, strength, seed)
    while _clipped(edited) > allowed:
        strength *= 0.75
        edited = _edit(op, source, strength, seed)
        if not visible(edited):
            return "edit_clips"
    while not visible(edited):
        if abs(strength) >= ceiling:
            return "edit_not_visible"
        strength = float(np.clip(strength * 1.35, -ceiling, ceiling))
        edited = _edit(op, source, strength, seed)
        if _clipped(edited) > allowed:
            return "edit_clips"
    return edited, strength


def make_pairs(source: SourceSample, params: Params, tools: Tools, seed: int) -> TaskResult:
    unknown = set(params.operations) - set(OPERATIONS)
    if unknown:
        raise ValueError(f"unknown tone operations {sorted(unknown)}; known: {sorted(OPERATIONS)}")
    image = source.image.astype(np.float32) / 255.0
    if float(image.std()) < params.min_std:
        return Skip("flat_image", f"pixel standard deviation {image.std():.4f} < {params.min_std}")
    colour = _is_colour(image)
    scene = is_outdoor_scene(source.image) or not params.scene_check
    eligible = [
        name
        for name in params.operations
        if (colour or not OPERATIONS[name].needs_colour) and (scene or not OPERATIONS[name].needs_scene)
    ]
    if not eligible:
        return Skip("not_an_outdoor_scene", "time of day and weather need a sky above a scene")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(eligible, size=min(params.per_image, len(eligible)), replace=False)

    candidates = []
    dropped: list[tuple[str, str]] = []
    for index, name in enumerate(sorted(chosen)):  # sorted: the sample order does not depend on the draws
        op = OPERATIONS[name]
        strength = float(rng.uniform(*op.strength))
        if op.signed and rng.random() < 0.5:
            strength = -strength
        edit = visible_edit(op, source.image, strength, seed + index, params)
        if isinstance(edit, str):
            dropped.append((name, edit))
            continue
        edited8, strength = edit
        if op.signed:
            forward_key, inverse_key = ("+", "-") if strength > 0 else ("-", "+")
        else:
            forward_key, inverse_key = "add", "remove"
        params_out = {"operation": name, "strength": round(strength, 4)}
        candidates.append(
            Candidate(
                variant=f"{name}:{strength:+.3f}",
                source=source.image,
                target=edited8,
                instruction=_phrase(op.phrases[forward_key], rng),
                params={**params_out, "direction": forward_key, "inverse": False},
            )
        )
        if params.inverse_pairs:
            candidates.append(
                Candidate(
                    variant=f"{name}:{strength:+.3f}:inverse",
                    source=edited8,
                    target=source.image,
                    instruction=_phrase(op.phrases[inverse_key], rng),
                    params={**params_out, "direction": inverse_key, "inverse": True},
                )
            )
    if not candidates:
        return Skip(dropped[0][1], ", ".join(f"{name}: {reason}" for name, reason in dropped))
    return candidates
