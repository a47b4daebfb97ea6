"""color_alteration offline: colour vocabulary and naming, the main colour of real objects, the Lab
recolouring, and the task through the engine on the example photos."""

from __future__ import annotations

import numpy as np
import pytest
from appearance_inputs import decoded, label, photo, run_items

from annotators.objects import OfflineObjects
from annotators.recolour import LabRecolour
from tasks import color_alteration
from tasks.colours import (
    BASIC_NAMES,
    TARGETS,
    TARGETS_BY_KEY,
    basic_term,
    delta_e94,
    main_colour,
    rgb_to_lab,
)
from tasks.records import SourceSample
from tasks.tools import Tools
from tasks.vocabulary import object_names


def test_vocabulary_has_twenty_bilingual_colours_named_consistently() -> None:
    assert len(TARGETS) >= 20 and len(TARGETS_BY_KEY) == len(TARGETS)
    assert len({c.zh for c in TARGETS}) == len(TARGETS) and len({c.en for c in TARGETS}) == len(TARGETS)
    for colour in TARGETS:
        assert colour.zh.endswith("色") and not colour.zh.isascii(), colour
        assert colour.basic in BASIC_NAMES
        # What the namer calls each target is its own basic term, or nothing (teal-like, borderline).
        assert basic_term(colour.lab) in (colour.basic, None), colour


@pytest.mark.parametrize(
    ("rgb", "term"),
    [
        ((200, 30, 30), "red"),
        ((30, 60, 200), "blue"),
        ((40, 160, 60), "green"),
        ((250, 210, 40), "yellow"),
        ((120, 60, 160), "purple"),
        ((110, 75, 45), "brown"),
        ((245, 245, 245), "white"),
        ((20, 20, 20), "black"),
        ((128, 128, 128), "grey"),
        ((160, 160, 160), None),  # light grey or a white in shade: either is fair, so neither is said
        ((0, 140, 140), None),  # teal: people split it between green and blue
    ],
)
def test_basic_terms(rgb: tuple[int, int, int], term: str | None) -> None:
    assert basic_term(rgb_to_lab(np.array([rgb], np.uint8))[0]) == term


def test_main_colour_of_real_objects() -> None:
    astronaut = photo("astronaut.png")
    shuttle = main_colour(astronaut, label("astronaut.png", "space shuttle").mask)
    helmet = main_colour(astronaut, label("astronaut.png", "helmet").mask)
    assert shuttle.name == "white" and helmet.name == "black"
    # The flag's stripes and stars: no colour covers most of it, so none is named.
    flag = main_colour(astronaut, label("astronaut.png", "flag").mask)
    assert flag.name is None and flag.share < 0.5
    for colour in (shuttle, helmet, flag):
        assert (
            colour.weights.shape == astronaut.shape[:2]
            and 0 <= colour.weights.min() <= colour.weights.max() <= 1
        )


def test_recolouring_moves_the_region_to_the_target_and_nothing_else() -> None:
    image = photo("rocket.jpg")
    rocket = label("rocket.jpg", "rocket")
    colour = main_colour(image, rocket.mask, reach=4)
    target = TARGETS_BY_KEY["blue"]
    result = LabRecolour()(image, colour.weights, target, "rocket")
    assert np.array_equal(result[colour.weights == 0], image[colour.weights == 0])  # no spill
    core = colour.weights > 0.5
    reached = np.median(rgb_to_lab(result[core]), axis=0)
    assert float(delta_e94(target.lab, reached[None])[0]) < 10 and basic_term(reached) == "blue"
    # The rocket's shading and details are its lightness: kept, up to the shift to the target's.
    before, after = rgb_to_lab(image[core])[:, 0], rgb_to_lab(result[core])[:, 0]
    assert np.corrcoef(before, after)[0, 1] > 0.9


@pytest.fixture(scope="module")
def colour_items() -> list:
    return run_items("color_alteration", task_params={"colours_per_object": 2})


def test_pairs_on_the_examples_name_object_and_colours(colour_items: list) -> None:
    samples = [sample for item in colour_items for sample in item.samples]
    assert samples, "the rocket of rocket.jpg is the examples' one clean object"
    for sample in samples:
        params = sample.record["edit"]["params"]
        target = TARGETS_BY_KEY[params["target"]["colour"]]
        names = object_names(params["category"])
        en, zh = sample.record["instruction"]["en"], sample.record["instruction"]["zh"]
        assert names["en"] in en and target.en in en and names["zh"] in zh and target.zh in zh, (en, zh)
        assert params["method"] == "lab_recolour" and params["target_error_cie94"] < 15
        source, result, mask = decoded(sample)
        changed = np.abs(source.astype(int) - result.astype(int)).max(axis=-1) > 12
        assert changed.any() and mask is not None
        assert (changed & ~mask).mean() < 0.002  # what changed is inside the recorded mask (JPEG aside)
    colours = [s.record["edit"]["params"]["target"]["colour"] for s in samples]
    assert len(set(colours)) == len(colours)


def test_objects_that_cannot_be_recoloured_well_are_rejected_with_reasons(colour_items: list) -> None:
    reasons = {
        item.ref["uri"].rsplit("/", 1)[-1]: item.reject_reason for item in colour_items if not item.samples
    }
    assert reasons["camera.png"] == "greyscale_photo"
    assert reasons["chelsea.png"] == "mask_too_large"  # its label is the whole photo
    assert reasons["coffee.png"] == "surroundings_same_colour"  # a red cup on a red saucer


def test_an_unnamed_salient_region_is_not_a_sample() -> None:
    # A photo without labels and without people: the offline objects annotator names nothing in it.
    source = SourceSample(uri="coffee.png", sha256="0" * 64, image=photo("coffee.png"))
    OfflineObjects().annotate([source])
    assert source.labels == []
    tools = Tools(depth=None, recolour=LabRecolour())
    result = color_alteration.make_pairs(source, color_alteration.Params(), tools, seed=1)
    assert result.reason == "unnamed_region"
