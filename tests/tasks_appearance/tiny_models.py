"""Tiny random-initialised models in the upstream folder layouts the appearance backends load (Depth
Anything through transformers, Stable Diffusion 1.5 and its depth and canny ControlNets through diffusers),
built by the benchmark's own builder at its test size (bench/appearance_models.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench" / "appearance_models.py"


def bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_appearance_models", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_models(folder: Path) -> Path:
    return bench_module().build_models(folder, "tiny")
