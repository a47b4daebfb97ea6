"""style_transfer (GEdit-Bench `style_change`): the whole photo redrawn in an artistic style, and back.

Both directions, as in the Step1X-Edit paper: photo -> style ("Turn this photo into an oil painting"),
made by the `stylise` tool (classical non-photorealistic filters offline, tasks.styles; an edge-guided
ControlNet with models), and its inverse, the stylised picture as the source and the real photo as the
target ("Turn this oil painting into a realistic photo"). The real photo is then the target, which makes
the inverse pairs as trustworthy as the photos themselves.

Every pair is gated by a structure check (tasks.structure.edge_agreement): the stylised picture must keep
the photo's outlines, or the pair is not the same scene in two looks and is dropped (`structure_lost`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from tasks.colours import rgb_to_lab
from tasks.records import Candidate, Skip, SourceSample, TaskResult, skip_for
from tasks.structure import edge_agreement
from tasks.styles import STYLES_BY_KEY, Style
from tasks.tools import Tools

NAME = "style_transfer"
GEDIT_KEY = "style_change"
ANNOTATORS: tuple[str, ...] = ()
TOOLS = ("stylise",)
INPUTS = "image"
LOCAL = False


@dataclass(frozen=True)
class Params:
    styles: tuple[str, ...] = tuple(STYLES_BY_KEY)
    per_image: int = 2  # styles drawn per source photo
    inverse_pairs: bool = True
    min_agreement: float = 0.55  # edge-map F1; unrelated photos score 0.25-0.47 (bench/RESULTS.md)
    min_change: float = 6.0  # mean CIE76 difference: a style that left the photo as it was is no edit
    min_std: float = 0.04  # below this pixel spread the photo is flat: nothing to draw


_FORWARD = (
    ("Turn this photo into {en}.", "把这张照片变成一{measure}{zh}。"),
    ("Redraw the picture as {en}.", "把这张图重新画成一{measure}{zh}。"),
    ("Make it look like {en}.", "让它看起来像一{measure}{zh}。"),
    ("Change the style of the image to {name}.", "把图片的风格改成{zh}风格。"),
)
_INVERSE = (
    ("Turn this {name} into a realistic photo.", "把这{measure}{zh}变成真实照片。"),
    ("Make this {name} look like a real photograph.", "让这{measure}{zh}看起来像一张真实的照片。"),
    ("Convert this {name} into a photorealistic image.", "把这{measure}{zh}转换成写实的照片。"),
)


def style_instruction(style: Style, inverse: bool, rng: np.random.Generator) -> dict[str, str]:
    templates = _INVERSE if inverse else _FORWARD
    en, zh = templates[rng.integers(len(templates))]
    values = {"en": style.en, "name": style.name, "zh": style.zh, "measure": style.measure}
    return {"en": en.format(**values), "zh": zh.format(**values)}


def mean_change(first: np.ndarray, second: np.ndarray) -> float:
    """Mean CIE76 difference, on a 1/16 sample of the pixels (enough for a mean)."""
    return float(np.linalg.norm(rgb_to_lab(first[::4, ::4]) - rgb_to_lab(second[::4, ::4]), axis=-1).mean())


def make_pairs(source: SourceSample, params: Params, tools: Tools, seed: int) -> TaskResult:
    unknown = set(params.styles) - set(STYLES_BY_KEY)
    if unknown:
        raise ValueError(f"unknown styles {sorted(unknown)}; known: {sorted(STYLES_BY_KEY)}")
    spread = float(source.image.std()) / 255.0
    if spread < params.min_std:
        return Skip("flat_image", f"pixel standard deviation {spread:.4f} < {params.min_std}")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(params.styles), size=min(params.per_image, len(params.styles)), replace=False)
    stylise = tools["stylise"]
    problems: Counter[str] = Counter()
    candidates: list[Candidate] = []
    for index in sorted(int(i) for i in chosen):  # sorted: the sample order does not depend on the draw
        style = STYLES_BY_KEY[params.styles[index]]
        stylised = stylise(source.image, style, int(rng.integers(2**31)))
        agreement = edge_agreement(source.image, stylised)
        if agreement < params.min_agreement:
            problems["structure_lost"] += 1
            continue
        change = mean_change(source.image, stylised)
        if change < params.min_change:
            problems["no_visible_style"] += 1
            continue
        record = {
            "style": style.key,
            "method": stylise.name,
            "edge_agreement": round(agreement, 3),
            "mean_change_cie76": round(change, 1),
        }
        candidates.append(
            Candidate(
                variant=style.key,
                source=source.image,
                target=stylised,
                instruction=style_instruction(style, False, rng),
                params={
                    **record,
                    "target": {"style": style.key, "en": style.name, "zh": style.zh},
                    "direction": "photo_to_style",
                },
            )
        )
        if params.inverse_pairs:
            candidates.append(
                Candidate(
                    variant=f"{style.key}:inverse",
                    source=stylised,
                    target=source.image,
                    instruction=style_instruction(style, True, rng),
                    params={
                        **record,
                        "target": {"style": "photo", "en": "realistic photo", "zh": "真实照片"},
                        "direction": "style_to_photo",
                    },
                )
            )
    if not candidates:
        return skip_for(problems)
    return candidates
