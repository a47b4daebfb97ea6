"""The pixel tools a task may call, as protocols; the engine injects the backend (offline or models).

A task names the tools it needs in ``TOOLS``; each name is a module annotators/<name>.py that declares the
tool's backends (see annotators.registry). Keeping the tools behind protocols lets tasks stay pure logic
while the heavy code lives in annotators/.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class Inpainter(Protocol):
    name: str
    version: str

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
