"""RAFT optical flow (torchvision's implementation) with weights from the models folder.

The folder (``--models-dir/raft_large`` or ``raft_small``, the names of torchvision's two RAFT builders)
holds ``model.safetensors``: torchvision's RAFT state dict converted once from its published checkpoint
(``Raft_Large_Weights.C_T_SKHT_V2``), since pickles are never loaded. ``config.json`` may say
``{"arch": "raft_small"}``; the folder name says it otherwise. Frames are scaled to a multiple of 8 (RAFT's
feature stride) at a bounded working size and normalised to [-1, 1] as torchvision's RAFT transforms do.
"""

from __future__ import annotations

import json
import os

import numpy as np

from annotators.flow import resize_flow, working_size
from annotators.pretrained import device, require_safetensors
from annotators.registry import Plugin, Resources

ARCHITECTURES = ("raft_large", "raft_small")


class RAFTFlow(Plugin):
    name = "raft"
    version = "torchvision-raft"
    backend = "models"
    resources = Resources(num_cpus=1.0, num_gpus=0.2, memory_gb=2.0)
    models = (ARCHITECTURES,)
    packages = (("torch", "models"), ("torchvision", "models"), ("safetensors", "models"))

    def __init__(self, models_dir: str | None = None, max_side: int = 960, iterations: int = 12) -> None:
        super().__init__(models_dir)
        import torch
        import torchvision.models.optical_flow as raft_models
        from safetensors.torch import load_file

        path = self.model_path(*ARCHITECTURES)
        require_safetensors(path)
        arch = os.path.basename(path)
        config_path = os.path.join(path, "config.json")
        if os.path.isfile(config_path):
            with open(config_path) as handle:
                arch = json.load(handle).get("arch", arch)
        if arch not in ARCHITECTURES:
            raise ValueError(f"{path}: unknown RAFT architecture {arch!r}; one of {ARCHITECTURES}")
        self.device = device()
        self.model = getattr(raft_models, arch)(weights=None)
        self.model.load_state_dict(load_file(os.path.join(path, "model.safetensors")))
        self.model.eval().to(self.device)
        self.torch = torch
        self.max_side = max_side
        self.iterations = iterations

    def _tensor(self, image: np.ndarray, size: tuple[int, int]):  # noqa: ANN202 - torch is imported lazily
        import cv2

        resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        tensor = self.torch.from_numpy(resized).permute(2, 0, 1).float().div(127.5).sub(1.0)
        return tensor[None].to(self.device)

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        height, width = first.shape[:2]
        # RAFT's correlation pyramid needs feature maps of 16 (inputs of 128) on each side.
        size = working_size(height, width, self.max_side, multiple=8, min_side=128)
        with self.torch.inference_mode():
            predictions = self.model(
                self._tensor(first, size), self._tensor(second, size), num_flow_updates=self.iterations
            )
        flow = predictions[-1][0].permute(1, 2, 0).float().cpu().numpy()  # (h, w, 2), the last refinement
        return resize_flow(np.ascontiguousarray(flow), height, width)
