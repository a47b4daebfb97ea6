"""The `inpaint` tool's models backend (FLUX.1-Fill, SD inpainting) on real photos and real object masks,
with tiny models in their upstream layouts: pixels outside the hole are the source's, the same input
gives the same fill, a prompt changes it, the model is chosen by folder or by STEP1X_INPAINT_MODEL, and
an out-of-memory frees what the failed call held."""

from __future__ import annotations

import shutil
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from test_objects_models import coco_labels, source

from annotators.inpaint_models import (
    INPAINT_MODEL_ENV,
    Canvas,
    DiffusionInpainter,
    canvas_size,
    context_window,
    feathered_alpha,
)
from annotators.registry import PluginUnavailable, resolve
from tasks.masks import dilate


@pytest.fixture(scope="module")
def flux(models_dir: Path) -> DiffusionInpainter:
    return resolve("inpaint", "models")(str(models_dir))


@pytest.fixture(scope="module")
def camera() -> tuple[np.ndarray, np.ndarray]:
    """camera.png and the dilated mask of its camera (a real object, as subject_removal passes it)."""
    photo = source("camera.png")
    label = next(label for label in coco_labels("camera.png") if label.category == "camera")
    return photo.image, dilate(label.mask, 6)


def test_flux_fill_changes_the_hole_and_nothing_else(flux: DiffusionInpainter, camera: tuple) -> None:
    image, hole = camera
    assert flux.describe()["name"] == "FLUX.1-Fill-dev" and flux.describe()["backend"] == "models"
    filled = flux(image, hole)
    assert filled.shape == image.shape and filled.dtype == np.uint8
    assert np.array_equal(filled[~hole], image[~hole])
    assert np.abs(filled[hole].astype(int) - image[hole]).mean() > 10  # random weights paint noise there
    assert np.array_equal(flux(image, hole), filled)  # the same photo and hole, the same fill


def test_a_prompt_paints_something_else_in_the_same_hole(flux: DiffusionInpainter, camera: tuple) -> None:
    image, hole = camera
    removed, painted = flux(image, hole), flux(image, hole, prompt="a red apple")
    assert not np.array_equal(removed[hole], painted[hole])
    assert np.array_equal(painted[~hole], image[~hole])


def test_an_empty_hole_returns_the_photo(flux: DiffusionInpainter, camera: tuple) -> None:
    image, hole = camera
    assert np.array_equal(flux(image, np.zeros_like(hole)), image)


def test_stable_diffusion_is_chosen_by_the_variable(
    models_dir: Path, camera: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(INPAINT_MODEL_ENV, "stable-diffusion-2-inpainting")
    inpainter = resolve("inpaint", "models")
    inpainter.check(str(models_dir))
    sd = inpainter(str(models_dir))
    assert sd.describe()["name"] == "stable-diffusion-2-inpainting"
    assert "StableDiffusionInpaintPipeline" in sd.describe()["version"]
    image, hole = camera
    filled = sd(image, hole)
    assert np.array_equal(filled[~hole], image[~hole]) and not np.array_equal(filled[hole], image[hole])


def test_without_flux_the_sd_folder_is_used(models_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "stable-diffusion-2-inpainting").symlink_to(models_dir / "stable-diffusion-2-inpainting")
    DiffusionInpainter.check(str(tmp_path))
    assert DiffusionInpainter(str(tmp_path)).describe()["name"] == "stable-diffusion-2-inpainting"


def test_missing_models_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PluginUnavailable) as raised:
        DiffusionInpainter.check(str(tmp_path))
    line = str(raised.value)
    assert "\n" not in line and "FLUX.1-Fill-dev" in line and "stable-diffusion-2-inpainting" in line
    monkeypatch.setenv(INPAINT_MODEL_ENV, "my-inpainter")
    with pytest.raises(PluginUnavailable, match="my-inpainter: no such folder"):
        DiffusionInpainter.check(str(tmp_path))


def test_out_of_memory_is_torch_s_error_and_frees_what_the_call_held(
    models_dir: Path, tmp_path: Path, camera: tuple
) -> None:
    shutil.copytree(models_dir / "FLUX.1-Fill-dev", tmp_path / "FLUX.1-Fill-dev")
    inpainter = DiffusionInpainter(str(tmp_path))
    held: list[weakref.ref] = []

    def allocate_then_fail(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        activations = torch.empty(1 << 20)
        held.append(weakref.ref(activations))
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")

    inpainter.engine.pipe.transformer.register_forward_pre_hook(allocate_then_fail, with_kwargs=True)
    image, hole = camera
    with pytest.raises(torch.OutOfMemoryError, match="4.00 GiB") as raised:
        inpainter(image, hole)
    assert raised.value.__context__ is None
    assert held and held[0]() is None


def test_the_window_holds_the_hole_with_context_inside_the_photo() -> None:
    box = (255, 138, 328, 192)  # the camera in camera.png (512 x 512)
    x0, y0, x1, y1 = context_window(box, 512, 512, context=0.5, min_side=384)
    assert (x0, y0) <= (box[0], box[1]) and (x1, y1) >= (box[2], box[3])
    assert x1 - x0 == 384 and y1 - y0 == 384 and x0 >= 0 and y0 >= 0 and x1 <= 512 and y1 <= 512
    # A hole larger than min_side gets context around it; the window never leaves the photo.
    assert context_window((0, 0, 400, 100), 512, 512, context=0.5, min_side=128) == (0, 0, 512, 200)
    flux = Canvas(min_side=768, max_side=1024, multiple=16)
    assert canvas_size(768, 768, flux) == (768, 768)  # painted at the photo's own resolution
    assert canvas_size(2000, 1000, flux) == (1024, 512)  # scaled down to the model's size
    assert canvas_size(300, 200, flux) == (768, 512)  # a small photo is scaled up to it


def test_feathered_alpha_is_zero_outside_and_one_in_the_core(camera: tuple) -> None:
    _, hole = camera
    alpha = feathered_alpha(hole, 4)
    assert (alpha[~hole] == 0).all() and alpha.max() == 1.0
    core = ~dilate(~hole, 8)
    assert np.allclose(alpha[core], 1.0)
