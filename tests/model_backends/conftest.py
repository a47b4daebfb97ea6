"""A models folder of tiny random-initialised models in the upstream layouts, built once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))  # engine_inputs: photos, the CLI

from engine_inputs import PHOTOS  # noqa: E402
from tiny_models import (  # noqa: E402
    florence_answer,
    florence_folder,
    flux_fill_folder,
    sam2_folder,
    sd_inpainting_folder,
)

# What the taught Florence-2 answers to <OD> on coffee.png (600 x 400): the cup (its box in the COCO labels)
# under a vocabulary name, a box under a name the vocabulary does not know (its region caption is asked
# for), and one under a name of something a removal cannot take away (dropped at once).
CUP_BOX = (175, 16, 412, 305)
COFFEE_ANSWER = florence_answer(
    [("cup", CUP_BOX), ("cactus", (450, 250, 590, 390)), ("human face", (30, 60, 150, 200))], 600, 400
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
