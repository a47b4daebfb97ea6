"""The `stylise` tool: a photo redrawn in an artistic style.

Offline backend: the classical non-photorealistic filters of tasks.styles (pencil sketch, coloured pencil,
oil paint, watercolour, cartoon, pixel art, ink wash, engraving). Models backend
(annotators.appearance_models): a canny-edge ControlNet with a style prompt.
"""

from __future__ import annotations

import numpy as np

from annotators.registry import Plugin
from tasks.styles import Style, stylise

BACKENDS = {
    "offline": "annotators.stylise:ClassicalStylise",
    "models": "annotators.appearance_models:CannyStylise",
}


class ClassicalStylise(Plugin):
    name = "classical_npr_filters"
    version = "1"

    def __call__(self, image: np.ndarray, style: Style, seed: int) -> np.ndarray:
        return stylise(image, style, seed)
