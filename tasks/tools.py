"""The pixel tools a task may call, as protocols; the engine injects the backend (offline or models).

A task names the tools it needs in ``TOOLS``; each name is a module annotators/<name>.py that declares the
tool's backends (see annotators.registry). Keeping the tools behind protocols lets tasks stay pure logic
while the heavy code lives in annotators/.
"""

from __future__ import annotations

from dataclasses import dataclass
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
