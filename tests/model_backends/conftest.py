"""A models folder of tiny random-initialised models in the upstream layouts, built once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))  # engine_inputs: photos, the CLI

from engine_inputs import PHOTOS  # noqa: E402
from tiny_models import (  # noqa: E402
    COFFEE_ANSWER,
    florence_folder,
    flux_fill_folder,
    sam2_folder,
    sd_inpainting_folder,
)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    coffee = Image.open(PHOTOS / "coffee.png").convert("RGB")
    florence_folder(root / "Florence-2-large", teach=(coffee, COFFEE_ANSWER))
    sam2_folder(root / "sam2.1-hiera-large")
    flux_fill_folder(root / "FLUX.1-Fill-dev")
    sd_inpainting_folder(root / "stable-diffusion-2-inpainting")
    return root
