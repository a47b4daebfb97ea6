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


COMPILE_ENV = "STEP1X_COMPILE"


def compiling(on: str) -> bool:
    """Whether model backends compile their heaviest network (torch.compile): on a GPU, unless
    STEP1X_COMPILE=0 (compiling costs tens of seconds per actor once, then each call is faster and keeps
    the GPU busier, as it launches far fewer kernels from Python)."""
    return on.startswith("cuda") and os.environ.get(COMPILE_ENV, "1") != "0"


def _safetensors_name(pickle_path: str) -> str:
    """Where the converted weights go: the name the loaders look for (transformers' pytorch_model.bin
    becomes model.safetensors; diffusers keeps the stem)."""
    folder, name = os.path.split(pickle_path)
    stem = os.path.splitext(name)[0]
    return os.path.join(folder, ("model" if stem == "pytorch_model" else stem) + ".safetensors")


def require_safetensors(path: str) -> None:
    """Refuse a model folder whose weights exist only as pickles, before anything reads them."""
    weights = glob.glob(os.path.join(path, "**", "*.safetensors"), recursive=True)
    if weights:
        return
    everything = glob.glob(os.path.join(path, "**", "*"), recursive=True)
    pickles = sorted(p for p in everything if p.endswith(PICKLE_SUFFIXES))
    if pickles:
        source, target = pickles[0], _safetensors_name(pickles[0])
        load = f"torch.load('{source}', weights_only=True)"  # weights_only: anything but tensors is refused
        command = (
            'python -c "import torch; from safetensors.torch import save_file; '
            f"save_file({{k: v.clone().contiguous() for k, v in {load}.items()}}, '{target}')\""
        )
        more = f" (and likewise each of its {len(pickles)} pickle files)" if len(pickles) > 1 else ""
        raise PluginUnavailable(
            f"{path} holds only pickled weights ({os.path.basename(source)}), which are never loaded: "
            f"unpickling a file can run any code in it. Convert them once with {command}{more}, or use "
            "the repository's safetensors release"
        )
    raise PluginUnavailable(f"{path} holds no .safetensors weights")


def local_pretrained(cls: Any, path: str, **kwargs: Any) -> Any:
    """``cls.from_pretrained`` on a local folder: no hub, safetensors only."""
    require_safetensors(path)
    return cls.from_pretrained(path, local_files_only=True, use_safetensors=True, **kwargs)
