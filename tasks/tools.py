"""The editing tools a task may call, as protocols: the pipeline injects the backend (classical or model).

Keeping them behind protocols lets tasks stay pure logic while the heavy code lives in annotators/.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class Inpainter(Protocol):
    name: str

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Fill the True pixels of ``mask`` (HxW bool) in ``image`` (HxWx3 uint8); same shape out."""
        ...


@dataclass
class Tools:
    inpaint: Inpainter | None = None

    def require_inpaint(self) -> Inpainter:
        if self.inpaint is None:
            raise RuntimeError("this task needs an inpainting backend, and none was configured")
        return self.inpaint
