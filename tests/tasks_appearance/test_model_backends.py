"""The appearance categories' model backends with tiny random-initialised configurations of the real classes
(transformers' DepthAnythingForDepthEstimation; diffusers' Stable Diffusion ControlNet inpaint and img2img
pipelines), saved in the upstream folder layout and loaded the way the released weights are. Random weights
make noise, so what is asserted is what noise allows: shapes, the pixels left alone, records, reasons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from appearance_inputs import PHOTOS, label, photo

from annotators.appearance_models import CannyStylise, DepthRecolour, DepthRetexture
from annotators.depth_models import DepthAnythingDepth
from pipelines.config import RunConfig
from pipelines.runner import RunError, check_plugins, work_items
from pipelines.sources import list_sources
from tasks.colours import TARGETS_BY_KEY, main_colour
from tasks.materials import MATERIALS_BY_KEY
from tasks.styles import STYLES_BY_KEY

TASKS = ("color_alteration", "material_modification", "style_transfer")


@pytest.mark.parametrize("task", TASKS)
def test_a_missing_models_folder_is_one_line_before_any_work(tmp_path: Path, task: str) -> None:
    config = RunConfig(
        task=task, source=str(PHOTOS), out=str(tmp_path / "run"), backend="models", models_dir=str(tmp_path)
    )
    with pytest.raises(RunError) as error:
        check_plugins(config)
    (line,) = str(error.value).splitlines()
    assert str(tmp_path) in line and "models backend" in line
    # the first plug-in checked is the task's annotator (objects: Florence-2), else its tools
    assert any(name in line for name in ("Florence-2", "Depth-Anything-V2", "stable-diffusion-v1-5"))


def test_depth_anything_gives_the_photo_depth_in_unit_range(models: str) -> None:
    image = photo("coffee.png")
    tool = DepthAnythingDepth(models)
    depth = tool(image)
    assert depth.shape == image.shape[:2] and depth.dtype == np.float32
    assert depth.min() >= 0 and depth.max() <= 1 and depth.std() > 0
    assert tool(image) is depth  # one photo, several objects: computed once


def test_region_repaints_leave_everything_outside_the_region_alone(models: str) -> None:
    image = photo("coffee.png")
    spoon = label("coffee.png", "spoon").mask
    depth = DepthAnythingDepth(models)(image)
    colour = main_colour(image, spoon, reach=4)
    recoloured = DepthRecolour(models)(image, colour.weights, TARGETS_BY_KEY["blue"], "spoon", depth)
    assert recoloured.shape == image.shape
    assert np.array_equal(recoloured[colour.weights == 0], image[colour.weights == 0])
    assert np.any(recoloured[colour.weights > 0.5] != image[colour.weights > 0.5])
    retextured = DepthRetexture(models)(image, spoon, MATERIALS_BY_KEY["wood"], "spoon", depth, seed=1)
    near = np.zeros_like(spoon)
    ys, xs = np.nonzero(spoon)
    near[ys.min() - 4 : ys.max() + 5, xs.min() - 4 : xs.max() + 5] = True
    assert not np.any(retextured != image, axis=-1)[~near].any()
    assert np.any(retextured[spoon] != image[spoon])


def test_canny_stylise_redraws_the_whole_photo_at_its_size(models: str) -> None:
    image = photo("rocket.jpg")
    drawn = CannyStylise(models)(image, STYLES_BY_KEY["oil_painting"], seed=4)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    assert np.abs(drawn.astype(int) - image.astype(int)).mean() > 5


KNOWN_REASONS = {
    "color_alteration": {
        "greyscale_photo",
        "mask_too_large",
        "surroundings_same_colour",
        "no_main_colour",
        "target_colour_not_reached",
        "colour_seam_off_edges",
    },
    "material_modification": {
        "greyscale_photo",
        "mask_too_large",
        "too_thin",
        "mask_cut_by_border",
        "mask_holds_contents",
        "change_too_small",
    },
    "style_transfer": {"structure_lost", "no_visible_style"},
}


@pytest.mark.parametrize("task", TASKS)
def test_each_task_runs_its_model_backends_through_the_engine(models: str, task: str) -> None:
    refs = [r for r in list_sources(str(PHOTOS)).refs if r["uri"].endswith(("coffee.png", "rocket.jpg"))]
    config = RunConfig(task=task, source=str(PHOTOS), out="unused", backend="models", models_dir=models)
    items = list(work_items(refs, config, "local", frozenset()))
    assert len(items) == 2 and not [item.error for item in items if item.error]
    for item in items:
        if item.samples:
            for sample in item.samples:
                tools = sample.record["annotators"]
                assert sample.record["backend"] == "models"
                assert all(tools[name]["backend"] == "models" for name in tools if name != "objects")
        else:
            assert item.reject_reason in KNOWN_REASONS[task], (item.reject_reason, item.reject_detail)
