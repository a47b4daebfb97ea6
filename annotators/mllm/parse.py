"""Pulling the JSON object out of a model's answer.

Servers wrap JSON in prose or ```json fences, or add a sentence after it; all of that is accepted. What is not
accepted is anything we would have to guess at: a missing key, a wrong number of scores, a score outside the
scale asked for.
"""

from __future__ import annotations

import json
import re
from typing import Any

_decoder = json.JSONDecoder()
# An answer that is only the two scores, "[6, 8]": VIEScore's parser reads it too, and nothing is guessed.
_BARE_PAIR = re.compile(r"^\[\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*\]$")


def extract_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object (dict) anywhere in `text`, or None."""
    start = text.find("{")
    while start != -1:
        try:
            value, _ = _decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


def _as_score(value: Any, max_score: float) -> float | None:
    if isinstance(value, bool):  # bool is an int subclass; True is not a score
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and 0.0 <= float(value) <= max_score:
        return float(value)
    return None


def parse_score_pair(text: str, max_score: float = 10.0) -> tuple[list[float], str] | None:
    """A judge's answer -> ([s1, s2], reasoning), or None when it cannot be read without guessing.

    The scores must lie in 0..max_score, the scale the prompt asked for (10 for VIEScore, 25 for EditScore).
    """
    obj = extract_json_object(text)
    if obj is None:
        bare = _BARE_PAIR.match(text.strip())
        obj = {"score": [float(bare[1]), float(bare[2])]} if bare else None
    if obj is None:
        return None
    raw = obj.get("score")
    if not isinstance(raw, list) or len(raw) != 2:
        return None
    scores = [_as_score(v, max_score) for v in raw]
    if any(s is None for s in scores):
        return None
    reasoning = obj.get("reasoning", "")
    return [float(s) for s in scores if s is not None], str(reasoning)
