"""The pixel tools a task may call, as protocols; the engine injects the backend (offline or models).

A task names the tools it needs in ``TOOLS``; each name is a module annotators/<name>.py that declares the
tool's backends (see annotators.registry). Keeping the tools behind protocols lets tasks stay pure logic
while the heavy code lives in annotators/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class Inpainter(Protocol):
    name: str
    version: str

    def can_fill(self, image: np.ndarray, mask: np.ndarray) -> str | None:
        """A reason this inpainter cannot fill ``mask`` credibly from its surroundings (a classical fill and
        structure it cannot continue), or None."""
        ...

    def __call__(self, image: np.ndarray, mask: np.ndarray, prompt: str | None = None) -> np.ndarray:
        """Fill the True pixels of ``mask`` (HxW bool) in ``image`` (HxWx3 uint8); same shape out.

        ``prompt`` says what should fill the hole ("a cat"); None asks for the surroundings (a removal).
        """
        ...


class DepthEstimator(Protocol):
    name: str
    version: str

    def __call__(self, image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """HxW float32 in [0, 1], 1 = nearest, for ``image`` (HxWx3 uint8); ``mask`` names the object whose
        shape matters (the offline backend's shape prior needs it)."""
        ...


class Recolourer(Protocol):
    name: str
    version: str

    def __call__(
        self,
        image: np.ndarray,
        weights: np.ndarray,
        colour: Any,
        subject: str,
        depth: np.ndarray | None = None,
    ) -> np.ndarray:
        """``image`` with the region ``weights`` (HxW float in [0, 1]) turned ``colour``
        (tasks.colours.NamedColour); ``subject`` names the object ("cup"), ``depth`` its shape. Pixels of
        weight 0 come back unchanged."""
        ...


class Retexturer(Protocol):
    name: str
    version: str

    def __call__(
        self, image: np.ndarray, mask: np.ndarray, material: Any, subject: str, depth: np.ndarray, seed: int
    ) -> np.ndarray:
        """``image`` with the object under ``mask`` (HxW bool) made of ``material``
        (tasks.materials.Material); pixels outside the mask come back unchanged."""
        ...


class Styliser(Protocol):
    name: str
    version: str

    def __call__(self, image: np.ndarray, style: Any, seed: int) -> np.ndarray:
        """The whole photo rendered in ``style`` (tasks.styles.Style), same size."""
        ...


def paints_from_prompts(inpaint: Inpainter) -> bool:
    """Whether an inpainter can paint what a prompt names (a model backend such as FLUX-Fill); the offline
    one only continues the surroundings, so tasks that need new content take it from other photos."""
    return getattr(inpaint, "backend", "offline") == "models"


class Grounder(Protocol):
    name: str
    version: str

    def __call__(self, image: np.ndarray, phrase: str, region: tuple[int, int, int, int]) -> list[Found]:
        """What in ``image`` answers to ``phrase`` ("a cat") near ``region`` (x0, y0, x1, y1): boxes in image
        pixels with scores, best first; empty when nothing is found."""
        ...


@dataclass(frozen=True)
class Found:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1, x1/y1 exclusive
    score: float  # 0..1
    label: str  # what the grounder read there ("object" when it cannot name things)


class Tools:
    """The tools of one run, by name."""

    def __init__(self, **tools: Any) -> None:
        self._tools = tools

    def __getitem__(self, name: str) -> Any:
        if name not in self._tools:
            raise RuntimeError(
                f"this task needs the {name!r} tool and none was configured: declare it in the task's TOOLS"
            )
        return self._tools[name]

    def items(self) -> list[tuple[str, Any]]:
        return list(self._tools.items())

    @property
    def inpaint(self) -> Inpainter:
        return self["inpaint"]

    @property
    def grounding(self) -> Grounder:
        return self["grounding"]


# What the looking tools return. Coordinates are pixels of the image they were given.


@dataclass
class TextLine:
    """One line (or word) of text read in an image."""

    quad: np.ndarray  # (4, 2) float32 corners: top-left, top-right, bottom-right, bottom-left
    text: str
    score: float
    words: list[TextLine] = field(default_factory=list)  # a line's words (Latin) or characters (CJK)


@dataclass
class RenderedText:
    """Text drawn by a TextRenderer: ink coverage on a canvas, and where the pen started on the baseline."""

    coverage: np.ndarray  # (h, w) float32 in [0, 1]
    origin: tuple[float, float]  # x, y of the baseline's start in the canvas
    ink: tuple[int, int, int, int]  # x0, y0, x1, y1 of the ink in the canvas


@dataclass
class Face:
    """One face: its box and MediaPipe's 468-point face mesh (the canonical mesh topology)."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1, x1/y1 exclusive
    score: float
    landmarks: np.ndarray  # (468, 2) float32


@dataclass
class Pose:
    """One body's 33 BlazePose landmarks (MediaPipe's pose topology) and how visible each is."""

    landmarks: np.ndarray  # (33, 2) float32
    visibility: np.ndarray  # (33,) float32 in [0, 1]
    score: float


class TextReader(Protocol):
    name: str
    version: str

    def __call__(self, image: np.ndarray) -> list[TextLine]:
        """The text lines legible in ``image`` (HxWx3 uint8 RGB), with their words."""
        ...

    def read_line(self, image: np.ndarray) -> tuple[str, float]:
        """Recognition alone on an upright image of one line: its text and confidence (fast: no search)."""
        ...


class TextRenderer(Protocol):
    name: str
    version: str

    def fonts(self, text: str) -> tuple[str, ...]:
        """The fonts that can draw every character of ``text`` (names for __call__)."""
        ...

    def __call__(self, text: str, font: str, size_px: float, stroke_offset_px: float = 0.0) -> RenderedText:
        """``text`` in ``font`` at an em size of ``size_px`` pixels, every outline moved outwards by
        ``stroke_offset_px`` (negative: inwards), so strokes are twice that thicker or thinner."""
        ...


class FaceFinder(Protocol):
    name: str
    version: str

    def __call__(self, image: np.ndarray) -> list[Face]: ...


class PersonSegmenter(Protocol):
    name: str
    version: str

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Per-pixel probability (HxW float32 in [0, 1]) that the pixel belongs to a person."""
        ...


class PoseEstimator(Protocol):
    name: str
    version: str

    def __call__(self, image: np.ndarray, box: tuple[int, int, int, int]) -> Pose | None:
        """The pose of the one person inside ``box``, or None when no body is found there."""
        ...


class FlowEstimator(Protocol):
    name: str
    version: str

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Optical flow from ``first`` to ``second`` (same-size RGB uint8): HxWx2 float32, pixels."""
        ...
