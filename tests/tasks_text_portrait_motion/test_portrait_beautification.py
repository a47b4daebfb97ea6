"""portrait_beautification on a real portrait (examples/photos/astronaut.png): every operation, the identity
and person-bound checks, the skips, and a run through the engine."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import PHOTOS, engine_items, rgb

from tasks import face_regions as fr
from tasks import portrait_beautification as portrait
from tasks.records import Skip, SourceSample
from tasks.tools import Tools


@pytest.fixture(scope="module")
def tools(faces, persons) -> Tools:  # noqa: ANN001
    return Tools(faces=faces, persons=persons)


@pytest.fixture(scope="module")
def astronaut_pairs(tools: Tools) -> list:
    source = SourceSample(uri="astronaut.png", sha256="a", image=rgb(PHOTOS / "astronaut.png"))
    params = portrait.Params(per_image=len(portrait.OPERATIONS))
    result = portrait.make_pairs(source, params, tools, seed=3)
    assert not isinstance(result, Skip), result
    return result


def test_every_operation_makes_a_pair_on_a_portrait(astronaut_pairs: list) -> None:
    made = {c.params["operation"] for c in astronaut_pairs}
    assert made == set(portrait.OPERATIONS)
    inverses = {c.params["operation"] for c in astronaut_pairs if c.params.get("inverse")}
    assert inverses == {"face_slimming", "background_blur"}


def test_pixels_outside_the_mask_are_untouched_and_the_edit_is_visible(astronaut_pairs: list) -> None:
    for candidate in astronaut_pairs:
        mask = candidate.mask
        assert mask.any() and np.array_equal(candidate.source[~mask], candidate.target[~mask])
        change = np.abs(candidate.source[mask].astype(int) - candidate.target[mask].astype(int)).mean()
        assert change >= portrait.Params().min_change, candidate.variant


def test_blemish_removal_has_the_real_face_as_target(astronaut_pairs: list) -> None:
    (removal,) = [c for c in astronaut_pairs if c.params["operation"] == "blemish_removal"]
    assert np.array_equal(removal.target, rgb(PHOTOS / "astronaut.png"))
    assert removal.instruction["en"].lower().startswith(("remove", "clear"))


def test_slimming_moves_the_jaw_in_and_keeps_the_eyes(astronaut_pairs: list, faces) -> None:  # noqa: ANN001
    (slim,) = [
        c for c in astronaut_pairs if c.params["operation"] == "face_slimming" and not c.params["inverse"]
    ]
    before, after = faces(slim.source)[0].landmarks, faces(slim.target)[0].landmarks
    assert fr.face_width(after) < fr.face_width(before)
    jaw_before = np.ptp(before[list(fr.JAW_RIGHT + fr.JAW_LEFT), 0])
    jaw_after = np.ptp(after[list(fr.JAW_RIGHT + fr.JAW_LEFT), 0])
    assert jaw_after < 0.985 * jaw_before
    assert portrait.landmark_shift(before, after, fr.STABLE_UPPER) < portrait.Params().max_landmark_shift


def test_background_blur_leaves_the_person_alone(astronaut_pairs: list, persons) -> None:  # noqa: ANN001
    (blur,) = [
        c for c in astronaut_pairs if c.params["operation"] == "background_blur" and not c.params["inverse"]
    ]
    person = persons(blur.source) > 0.5
    core = person & ~blur.mask
    assert core.mean() > 0.3 and np.array_equal(blur.source[core], blur.target[core])


def test_photos_that_are_not_portraits_are_skipped(tools: Tools) -> None:
    def skip(image: np.ndarray, **params: object) -> str:
        result = portrait.make_pairs(SourceSample("x", "x", image), portrait.Params(**params), tools, seed=0)
        assert isinstance(result, Skip)
        return result.reason

    astronaut = rgb(PHOTOS / "astronaut.png")
    assert skip(rgb(PHOTOS / "coffee.png")) == "no_face"
    head = astronaut[30:250, 130:330]  # her head and shoulders, beside its mirror image: two faces
    assert skip(np.ascontiguousarray(np.concatenate([head, head[:, ::-1]], axis=1))) == "too_many_faces"
    assert skip(astronaut, min_face=0.5) == "face_too_small"


def test_engine_items_on_the_example_photos() -> None:
    items = engine_items("portrait_beautification", PHOTOS)
    kept = {item.ref["uri"].rsplit("/", 1)[-1] for item in items if item.samples}
    assert kept == {"astronaut.png"}
    reasons = {item.ref["uri"].rsplit("/", 1)[-1]: item.reject_reason for item in items if item.rejected}
    assert set(reasons) == {"coffee.png", "rocket.jpg", "camera.png", "chelsea.png"}
    assert set(reasons.values()) <= {"no_face", "face_too_small"}
    for sample in next(item for item in items if item.samples).samples:
        assert sample.record["gedit_key"] == "ps_human" and sample.mask is not None
        assert sample.record["annotators"]["faces"]["name"] == "mediapipe_face_mesh"
