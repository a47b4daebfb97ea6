"""Florence-2 grounding (the `grounding` tool's models backend): open-vocabulary detection of a phrase.

Loads `Florence-2-large` (or `-base`) from the models folder in the converted transformers layout
(florence-community/Florence-2-*: Florence2ForConditionalGeneration + Florence2Processor, safetensors).
The loader is minimal and local to this module; annotators/objects_models.py (the objects annotator's
Florence-2 + SAM-2 backend) loads the same model and the two can share one loader once both are on main.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from annotators.pretrained import device, inference_dtype, local_pretrained
from annotators.registry import Plugin, Resources
from tasks.tools import Found

FLORENCE2 = ("Florence-2-large", "Florence-2-base")
TASK = "<OPEN_VOCABULARY_DETECTION>"


def load_florence2(path: str, on: str) -> tuple[Any, Any]:
    """(model, processor) from a local folder, in eval mode on ``on``."""
    from transformers import Florence2ForConditionalGeneration, Florence2Processor

    model = local_pretrained(Florence2ForConditionalGeneration, path, dtype=inference_dtype(on)).to(on).eval()
    processor = Florence2Processor.from_pretrained(path, local_files_only=True)
    return model, processor


class Florence2Grounding(Plugin):
    name = "florence2_grounding"
    version = "florence2-ovd-1"
    backend = "models"
    resources = Resources(num_cpus=1, num_gpus=0.15, memory_gb=4)
    models = (FLORENCE2,)
    packages = (("transformers", "models"), ("torch", "models"))

    def __init__(self, models_dir: str | None = None, max_new_tokens: int = 64) -> None:
        super().__init__(models_dir)
        self.device = device()
        self.model, self.processor = load_florence2(self.model_path(*FLORENCE2), self.device)
        self.max_new_tokens = max_new_tokens

    def __call__(self, image: np.ndarray, phrase: str, region: tuple[int, int, int, int]) -> list[Found]:
        import torch
        from PIL import Image

        picture = Image.fromarray(image)
        inputs = self.processor(text=TASK + phrase, images=picture, return_tensors="pt").to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        with torch.inference_mode():
            ids = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, num_beams=1)
        text = self.processor.batch_decode(ids, skip_special_tokens=False)[0]
        parsed = self.processor.post_process_generation(text, task=TASK, image_size=picture.size)[TASK]
        height, width = image.shape[:2]
        found = []
        for box, label in zip(parsed.get("bboxes", []), parsed.get("bboxes_labels", []), strict=False):
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            x0, x1 = sorted((max(0, min(width, x0)), max(0, min(width, x1))))
            y0, y1 = sorted((max(0, min(height, y0)), max(0, min(height, y1))))
            if x1 > x0 and y1 > y0:
                # Florence-2 gives no scores; a box is a detection of the phrase, or nothing.
                found.append(Found((x0, y0, x1, y1), 1.0, str(label).strip() or phrase))
        return found
