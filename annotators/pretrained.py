"""Loading the model backends' pretrained weights: local folders only, safetensors only, one device rule.

Every model backend (Florence-2, SAM-2, FLUX-Fill, depth, ControlNet, RAFT...) loads through these, so
none of them can reach a hub or unpickle a checkpoint, and all pick the device and dtype the same way.
"""

from __future__ import annotations

import glob
import os
from typing import Any

from annotators.registry import PluginUnavailable

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def inference_dtype(on: str) -> Any:
    """bf16 on a GPU (the models' published inference precision), float32 on the CPU (tests)."""
    import torch

    return torch.bfloat16 if on.startswith("cuda") else torch.float32


def require_safetensors(path: str) -> None:
    """Refuse a model folder whose weights exist only as pickles, before anything reads them."""
    weights = glob.glob(os.path.join(path, "**", "*.safetensors"), recursive=True)
    if weights:
        return
    everything = glob.glob(os.path.join(path, "**", "*"), recursive=True)
    pickles = [p for p in everything if p.endswith(PICKLE_SUFFIXES)]
    if pickles:
        raise PluginUnavailable(
            f"{path} holds only pickled weights ({os.path.basename(pickles[0])}); they are never loaded. "
            "Convert them once with `python -c \"from safetensors.torch import save_file; import torch; "
            "save_file(torch.load('IN', weights_only=True), 'OUT.safetensors')\"` or use the repository's "
            "safetensors release"
        )
    raise PluginUnavailable(f"{path} holds no .safetensors weights")


def local_pretrained(cls: Any, path: str, **kwargs: Any) -> Any:
    """``cls.from_pretrained`` on a local folder: no hub, safetensors only."""
    require_safetensors(path)
    return cls.from_pretrained(path, local_files_only=True, use_safetensors=True, **kwargs)
