from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotators.mllm.client import prepare_image

PHOTOS = Path(__file__).resolve().parents[2] / "examples" / "photos"


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    return np.asarray(Image.open(PHOTOS / "chelsea.png").convert("RGB"))


@pytest.fixture(scope="session")
def source_jpeg(photo: np.ndarray) -> bytes:
    return prepare_image(photo)


@pytest.fixture(scope="session")
def target_jpeg(photo: np.ndarray) -> bytes:
    # A real edit of the real photo: a warm grade, as tone_transformation makes.
    warm = np.clip(photo.astype(np.float32) * [1.12, 1.0, 0.85], 0, 255).astype(np.uint8)
    return prepare_image(warm)
