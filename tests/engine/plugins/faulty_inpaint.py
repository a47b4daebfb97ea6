"""A plug-in that overrides the `inpaint` tool through the entry-point group: a real plug-in with a bug.

It fills holes like the offline inpainter, except on photos 640 px wide (rocket.jpg, the one example photo
whose removal gets filled), where it raises: the engine must stop with the traceback and the source, or count
the error under --max-error-rate.
"""

from __future__ import annotations

import numpy as np

from annotators.inpaint import ClassicalInpainter

BACKENDS = {"offline": "faulty_inpaint:FaultyInpainter"}


class FaultyInpainter(ClassicalInpainter):
    name = "faulty_inpainter"

    def __call__(self, image: np.ndarray, mask: np.ndarray, prompt: str | None = None) -> np.ndarray:
        if image.shape[1] == 640:
            raise ZeroDivisionError("injected bug in a plug-in tool")
        return super().__call__(image, mask, prompt)
