"""style_transfer offline: every classical style on a real photo, the structure check, and the task in both
directions through the engine on the example photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from appearance_inputs import decoded, photo, run_items

from annotators.stylise import ClassicalStylise
from tasks import style_transfer
from tasks.colours import rgb_to_lab
from tasks.records import SourceSample
from tasks.structure import edge_agreement
from tasks.styles import STYLES, STYLES_BY_KEY, stylise
from tasks.tools import Tools


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return photo("astronaut.png")


@pytest.mark.parametrize("key", [style.key for style in STYLES])
def test_each_style_redraws_the_photo_and_keeps_its_outlines(astronaut: np.ndarray, key: str) -> None:
    style = STYLES_BY_KEY[key]
    drawn = stylise(astronaut, style, seed=2)
    assert drawn.shape == astronaut.shape and drawn.dtype == np.uint8
    assert np.array_equal(drawn, stylise(astronaut, style, seed=2))
    assert edge_agreement(astronaut, drawn) >= style_transfer.Params().min_agreement
    assert style_transfer.mean_change(astronaut, drawn) >= style_transfer.Params().min_change
    if style.monochrome:  # ink on paper: the paper's tint is the only colour
        chroma = np.hypot(*np.moveaxis(rgb_to_lab(drawn[::4, ::4])[..., 1:], -1, 0))
        assert np.percentile(chroma, 95) < 15, key
    if key == "pixel_art":  # blocks of one colour, few colours
        assert len(np.unique(drawn.reshape(-1, 3), axis=0)) <= 16


def test_the_structure_check_tells_the_same_scene_from_another(astronaut: np.ndarray) -> None:
    coffee = cv2.resize(photo("coffee.png"), astronaut.shape[1::-1])
    assert edge_agreement(astronaut, astronaut) == pytest.approx(1.0)
    assert edge_agreement(astronaut, coffee) < 0.5


class AnotherPhoto:
    """A stylise tool whose output is a different real photo: what the structure check is there to stop."""

    name = "wrong_photo"
    version = "test"

    def __call__(self, image: np.ndarray, style: object, seed: int) -> np.ndarray:
        return cv2.resize(photo("coffee.png"), image.shape[1::-1])


def test_a_redrawing_that_lost_the_scene_is_rejected(astronaut: np.ndarray) -> None:
    source = SourceSample(uri="astronaut.png", sha256="0" * 64, image=astronaut)
    result = style_transfer.make_pairs(source, style_transfer.Params(), Tools(stylise=AnotherPhoto()), seed=3)
    assert result.reason == "structure_lost"
    kept = style_transfer.make_pairs(
        source, style_transfer.Params(), Tools(stylise=ClassicalStylise()), seed=3
    )
    assert len(kept) == 2 * style_transfer.Params().per_image


def test_both_directions_on_the_examples() -> None:
    items = run_items("style_transfer")
    coffee = next(item for item in items if item.ref["uri"].endswith("coffee.png"))
    samples = {sample.record["variant"]: sample for sample in coffee.samples}
    forward = [v for v in samples if not v.endswith(":inverse")]
    assert forward and all(f"{v}:inverse" in samples for v in forward)
    for variant in forward:
        there, back = samples[variant], samples[f"{variant}:inverse"]
        assert there.tgt == back.src and there.src == back.tgt  # the inverse is the same pair reversed
        style = STYLES_BY_KEY[variant]
        assert there.record["edit"]["params"]["direction"] == "photo_to_style"
        assert back.record["edit"]["params"]["direction"] == "style_to_photo"
        assert style.zh in there.record["instruction"]["zh"] and style.zh in back.record["instruction"]["zh"]
        assert "photo" in back.record["instruction"]["en"] and "照片" in back.record["instruction"]["zh"]
        assert there.record["edit"]["params"]["edge_agreement"] >= 0.55
        source, target, mask = decoded(there)
        assert mask is None and source.shape == target.shape
    # Two styles per photo, each both ways (a style whose drawing lost the scene is dropped).
    assert all(len(item.samples) in (2, 4) for item in items)
