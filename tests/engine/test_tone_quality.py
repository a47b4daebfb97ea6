"""Tone edits a person accepts: visible on every photo, not blowing it out, time of day and weather only on
outdoor scenes. Real example photos."""

from __future__ import annotations

import numpy as np
from engine_inputs import photo

from tasks import tone_transformation as tone
from tasks.records import SourceSample
from tasks.scene import is_outdoor_scene, visible_change
from tasks.tools import Tools


def sample(name: str) -> SourceSample:
    return SourceSample(name, "0" * 64, np.asarray(photo(name)).copy())


def test_only_scenes_with_a_sky_get_time_of_day_and_weather() -> None:
    assert is_outdoor_scene(sample("camera.png").image)  # a lawn under the sky
    for close_up in ("coffee.png", "chelsea.png", "astronaut.png"):  # a cup, a cat, a studio portrait
        assert not is_outdoor_scene(sample(close_up).image), close_up
    params = tone.Params(per_image=len(tone.OPERATIONS), inverse_pairs=False)
    coffee = tone.make_pairs(sample("coffee.png"), params, Tools(), seed=1)
    operations = {pair.params["operation"] for pair in coffee}
    assert operations and not operations & {"dusk", "night", "haze", "rain", "snow"}
    lawn = tone.make_pairs(sample("camera.png"), params, Tools(), seed=1)
    assert {"night", "haze", "rain", "snow"} <= {pair.params["operation"] for pair in lawn}


def test_every_kept_edit_is_visible_and_weak_draws_are_raised() -> None:
    params = tone.Params(per_image=len(tone.OPERATIONS), inverse_pairs=False, scene_check=False)
    for name in ("coffee.png", "astronaut.png", "rocket.jpg"):
        for pair in tone.make_pairs(sample(name), params, Tools(), seed=2):
            assert visible_change(pair.source, pair.target) >= params.min_visible, (name, pair.variant)
    # A faint warming of the orange cup photo is raised until it shows.
    balance = tone.OPERATIONS["white_balance"]
    cup = sample("coffee.png").image
    faint = tone._edit(balance, cup, 0.1, 0)
    assert visible_change(cup, faint) < params.min_visible
    edited, strength = tone.visible_edit(balance, cup, 0.1, 0, params)
    assert strength > 0.1 and visible_change(cup, edited) >= params.min_visible


def test_an_edit_that_would_blow_out_the_photo_is_weakened_or_dropped() -> None:
    exposure = tone.OPERATIONS["exposure"]
    cup = sample("coffee.png").image
    params = tone.Params()
    blown = tone._edit(exposure, cup, 2.5, 0)
    assert tone._clipped(blown) - tone._clipped(cup) > params.max_clipped
    edited, strength = tone.visible_edit(exposure, cup, 2.5, 0, params)
    assert strength < 2.5 and tone._clipped(edited) - tone._clipped(cup) <= params.max_clipped
