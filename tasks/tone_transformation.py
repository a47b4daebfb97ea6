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
        ),
    )
}


@dataclass(frozen=True)
class Params:
    operations: tuple[str, ...] = tuple(OPERATIONS)
    per_image: int = 3  # operations drawn per source photo
    inverse_pairs: bool = True
    min_std: float = 0.02  # below this the photo is flat: no tone edit is visible on it


def _phrase(options: Phrases, rng: np.random.Generator) -> dict[str, str]:
    en, zh = options[rng.integers(len(options))]
    return {"en": en, "zh": zh}


def _is_colour(image: np.ndarray) -> bool:
    sample = image[::4, ::4]  # a 1/16 sample decides this as well as every pixel and costs 1/16
    r, g, b = sample[..., 0], sample[..., 1], sample[..., 2]
    chroma = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    return float(np.percentile(chroma, 95)) > 0.04


def make_pairs(source: SourceSample, params: Params, tools: Tools, seed: int) -> TaskResult:
    unknown = set(params.operations) - set(OPERATIONS)
    if unknown:
        raise ValueError(f"unknown tone operations {sorted(unknown)}; known: {sorted(OPERATIONS)}")
    image = source.image.astype(np.float32) / 255.0
    if float(image.std()) < params.min_std:
        return Skip("flat_image", f"pixel standard deviation {image.std():.4f} < {params.min_std}")
    colour = _is_colour(image)
    eligible = [name for name in params.operations if colour or not OPERATIONS[name].needs_colour]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(eligible, size=min(params.per_image, len(eligible)), replace=False)

    candidates = []
    for name in sorted(chosen):  # sorted: the sample order does not depend on the draw order
        op = OPERATIONS[name]
        strength = float(rng.uniform(*op.strength))
        if op.signed and rng.random() < 0.5:
            strength = -strength
        if op.pointwise:
            levels = np.repeat(np.linspace(0.0, 1.0, 256, dtype=np.float32)[:, None, None], 3, axis=2)
            edited8 = cv2.LUT(source.image, ops.to_uint8(op.apply(levels, strength, rng)))
        else:
            edited8 = ops.to_uint8(op.apply(image, strength, rng))
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
    return candidates
