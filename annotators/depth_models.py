"""The `depth` tool's models backend: Depth Anything V2 (transformers' DepthAnythingForDepthEstimation).

Loaded once per process from --models-dir/<upstream repository name> (the transformers-format "-hf"
releases), bf16 on a GPU. Its output is relative inverse depth (larger = nearer), which is what both the
depth ControlNet and the retexture tool want; it is normalised to [0, 1] per photo.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from annotators.pretrained import device, inference_dtype, local_pretrained, require_safetensors
from annotators.registry import Plugin, Resources

DEPTH_MODELS = ("Depth-Anything-V2-Large-hf", "Depth-Anything-V2-Base-hf", "Depth-Anything-V2-Small-hf")


def normalise(depth: np.ndarray) -> np.ndarray:
    """Relative depth to [0, 1] between its 1st and 99th percentiles (a few stray pixels set no range)."""
    low, high = np.percentile(depth, (1, 99))
    return np.clip((depth - low) / max(float(high - low), 1e-6), 0.0, 1.0).astype(np.float32)


class DepthAnythingDepth(Plugin):
    name = "depth_anything"
    version = "transformers"
    backend = "models"
    resources = Resources(num_cpus=1, num_gpus=0.15, memory_gb=4.0)
    models: ClassVar[tuple[str | tuple[str, ...], ...]] = (DEPTH_MODELS,)
    packages = (("torch", "models"), ("transformers", "models"))

    def __init__(self, models_dir: str | None = None) -> None:
        super().__init__(models_dir)
        from transformers import AutoImageProcessor, DepthAnythingForDepthEstimation

        path = self.model_path(*DEPTH_MODELS)
        require_safetensors(path)
        self.device = device()
        self.dtype = inference_dtype(self.device)
        self.processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        self.model = (
            local_pretrained(DepthAnythingForDepthEstimation, path, dtype=self.dtype).to(self.device).eval()
        )
        self._last: tuple[tuple[int, ...], np.ndarray] | None = None

    def __call__(self, image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Depth of the whole photo (``mask`` is not needed: the model sees the scene)."""
        # A task asks once per object of one photo: the photo's depth is computed once.
        key = (image.__array_interface__["data"][0], *image.shape, int(image[::61, ::67].sum()))
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        import torch
        import torch.nn.functional as F
        from PIL import Image

        inputs = self.processor(images=Image.fromarray(image), return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device, self.dtype)
        with torch.inference_mode():
            predicted = self.model(pixel_values=pixels).predicted_depth  # (1, h, w)
        resized = F.interpolate(
            predicted[:, None].float(), size=image.shape[:2], mode="bicubic", align_corners=False
        )
        depth = normalise(resized[0, 0].cpu().numpy())
        self._last = (key, depth)
        return depth
