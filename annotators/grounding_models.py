"""Florence-2 grounding (the `grounding` tool's models backend): open-vocabulary detection of a phrase.

Loads Florence-2 through the objects annotator's loader (annotators/objects_models.py: the same folders,
florence-community/Florence-2-* in the converted transformers layout, safetensors; the remote-code release
refused), so a run whose `objects` backend is also Florence-2 reads the same weights the same way.
"""

from __future__ import annotations

import numpy as np

from annotators.objects_models import FLORENCE_FOLDERS, Florence2
from annotators.pretrained import device, inference_dtype
from annotators.registry import Plugin, Resources
from tasks.tools import Found

TASK = "<OPEN_VOCABULARY_DETECTION>"


class Florence2Grounding(Plugin):
    name = "florence2_grounding"
    version = "florence2-ovd-2"
    backend = "models"
    resources = Resources(num_cpus=1, num_gpus=0.15, memory_gb=4)
    models = (FLORENCE_FOLDERS,)
    packages = (("transformers", "models"), ("torch", "models"))

    def __init__(
        self, models_dir: str | None = None, florence: Florence2 | None = None, max_new_tokens: int = 64
    ) -> None:
        super().__init__(models_dir)
        on = device()
        self.florence = florence or Florence2.load(
            self.model_path(*FLORENCE_FOLDERS), on, inference_dtype(on)
        )
        self.max_new_tokens = max_new_tokens  # a phrase's boxes: a few location tokens each

    def __call__(self, image: np.ndarray, phrase: str, region: tuple[int, int, int, int]) -> list[Found]:
        from PIL import Image

        picture = Image.fromarray(image)
        (answer,) = self.florence.generate([picture], [TASK + phrase], self.max_new_tokens)
        parsed = self.florence.processor.post_process_generation(answer, task=TASK, image_size=picture.size)
        height, width = image.shape[:2]
        found = []
        for box, label in zip(
            parsed[TASK].get("bboxes", []), parsed[TASK].get("bboxes_labels", []), strict=False
        ):
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            x0, x1 = sorted((max(0, min(width, x0)), max(0, min(width, x1))))
            y0, y1 = sorted((max(0, min(height, y0)), max(0, min(height, y1))))
            if x1 > x0 and y1 > y0:
                # Florence-2 gives no scores; a box is a detection of the phrase, or nothing.
                found.append(Found((x0, y0, x1, y1), 1.0, str(label).strip() or phrase))
        return found
