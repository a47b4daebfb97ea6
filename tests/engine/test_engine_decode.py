"""Bad files become rejects with their reason; unusual but valid images are converted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from engine_inputs import photo, write_bad_files, write_odd_files

from pipelines.decode import NEUTRAL_BACKGROUND, DecodeError, decode_image


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("bad")
    return folder, write_bad_files(folder)


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple[int, int]]]:
    folder = tmp_path_factory.mktemp("odd")
    return folder, write_odd_files(folder)


@pytest.mark.parametrize(
    "name", ["zero.jpg", "truncated.jpg", "corrupt.png", "notes.txt", "drawing.svg", "tiny.png", "bomb.png"]
)
def test_bad_file_is_rejected_with_its_reason(bad: tuple[Path, dict[str, str]], name: str) -> None:
    folder, expected = bad
    with pytest.raises(DecodeError) as raised:
        decode_image((folder / name).read_bytes())
    assert raised.value.reason == expected[name], raised.value.detail
    assert raised.value.detail


@pytest.mark.parametrize(
    "name",
    [
        "cmyk.jpg",
        "sixteen_bit.png",
        "greyscale.png",
        "palette.png",
        "alpha.png",
        "exif_rotated.jpg",
        "animated.gif",
        "really_a_jpeg.png",
    ],
)
def test_unusual_image_is_converted(odd: tuple[Path, dict[str, tuple[int, int]]], name: str) -> None:
    folder, sizes = odd
    image, notes = decode_image((folder / name).read_bytes())
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert (image.shape[1], image.shape[0]) == sizes[name]
    reference = np.asarray(photo("coffee.png"), dtype=np.float32)
    if name == "exif_rotated.jpg":
        # Orientation 6 means "rotate 90° clockwise to display": the stored pixels, turned that way.
        reference = np.rot90(reference, k=-1)
        assert "exif_rotated_6" in notes
    if name == "really_a_jpeg.png":
        reference = reference[::-1]
    if name in ("greyscale.png", "sixteen_bit.png"):
        reference = np.repeat(np.asarray(photo("coffee.png").convert("L"), np.float32)[..., None], 3, axis=2)
    if name == "alpha.png":
        assert np.all(image[:, :150] == NEUTRAL_BACKGROUND)
        image, reference = image[:, 150:], reference[:, 150:]
    error = np.abs(image.astype(np.float32) - reference).mean()
    assert error < 6.0, f"{name}: mean abs difference {error:.2f} from the photo it was made of"


def test_notes_name_the_conversions(odd: tuple[Path, dict[str, tuple[int, int]]]) -> None:
    folder, _ = odd
    expected = {
        "cmyk.jpg": "cmyk",
        "sixteen_bit.png": "high_bit_depth",
        "greyscale.png": "greyscale",
        "palette.png": "palette",
        "alpha.png": "alpha_composited",
        "animated.gif": "animated_first_frame",
    }
    for name, note in expected.items():
        assert note in decode_image((folder / name).read_bytes())[1], name
