"""The record types that pass between the pipeline stages and the task modules.

Tasks see only these types and numpy arrays: no files, no Ray, no network.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ObjectLabel:
    """One object instance in a source image, from annotations or from an annotator."""

    category: str  # English category name, a key of tasks.vocabulary.OBJECTS when known
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1/y1 exclusive
    mask: np.ndarray | None = None  # bool HxW, None when only a box is known
    score: float = 1.0
    source: str = "labels"  # which annotator backend produced it


@dataclass
class SourceSample:
    """A decoded, normalised source photo: RGB uint8, EXIF rotation applied."""

    uri: str
    sha256: str
    image: np.ndarray  # HxWx3 uint8
    licence: str = "unknown"
    labels: list[ObjectLabel] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # conversions applied while decoding (cmyk, alpha, ...)
    # image+partner tasks: other photos of the run; frame_pair tasks: the pair's second frame.
    partners: list[SourceSample] = field(default_factory=list)
    frame: int | None = None  # a video frame's index in its video, None for photos
    timestamp: float | None = None  # a video frame's time in seconds
    video_sha256: str | None = None  # a video frame's video (its own sha256 is then the pair's key)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass
class Candidate:
    """One (source, instruction, target) triplet made by a task, before encoding."""

    variant: str  # stable name of what was done, part of the sample id
    source: np.ndarray  # HxWx3 uint8
    target: np.ndarray  # HxWx3 uint8, same size as source
    instruction: dict[str, str]  # {"en": ..., "zh": ...}
    mask: np.ndarray | None = None  # bool HxW edit region for local edits
    bbox: tuple[int, int, int, int] | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Skip:
    """A task's decision that a source yields nothing, with a machine-readable reason."""

    reason: str
    detail: str = ""


TaskResult = list[Candidate] | Skip


def skip_for(problems: Counter[str], what: str = "") -> Skip:
    """The Skip of a source whose every try failed: the commonest problem, and the count of each after `what`.

    `problems` must not be empty: a task that tried nothing says why itself.
    """
    reason, _ = problems.most_common(1)[0]
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(problems.items()))
    return Skip(reason, f"{what} ({counts})" if what else counts)
