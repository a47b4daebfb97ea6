"""Tiny random-initialised models in the upstream folder layouts the appearance backends load (Depth
Anything through transformers, Stable Diffusion 1.5 and its depth and canny ControlNets through diffusers),
built by the benchmark's own builder at its test size (bench/appearance_models.py); and the `objects`
annotator's models backend (Florence-2, SAM-2), built by tests/model_backends/tiny_models.py. The labelled
example photos never reach those two (labels win), but a models run loads them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_module() -> ModuleType:
    return _module("bench_appearance_models", ROOT / "bench" / "appearance_models.py")


def build_models(folder: Path) -> Path:
    objects = _module("model_backends_tiny_models", ROOT / "tests" / "model_backends" / "tiny_models.py")
    objects.florence_folder(folder / "Florence-2-base")
    objects.sam2_folder(folder / "sam2.1-hiera-tiny")
    return bench_module().build_models(folder, "tiny")
