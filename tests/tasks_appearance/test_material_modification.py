"""material_modification offline: swatches, the silhouette depth prior, the shading layer, the retexture
tool on real objects, and the task through the engine on the example photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from appearance_inputs import decoded, label, photo, run_items

from annotators.depth import SilhouetteDepth
from annotators.retexture import ShadedTextureTransfer, edge_matte, retinex_shading
from tasks.colours import rgb_to_lab
from tasks.materials import MATERIALS, MATERIALS_BY_KEY, swatch
from tasks.object_edits import surface_pattern
from tasks.vocabulary import object_names


def test_swatches_are_deterministic_distinct_and_in_range() -> None:
    assert {m.key for m in MATERIALS} >= {
        "wood",
        "marble",
        "brushed_metal",
        "glass",
        "fabric",
        "stone",
        "gold",
        "ceramic",
    }
    means = []
    for material in MATERIALS:
        a, b = swatch(material, 96, 128, 60, seed=3), swatch(material, 96, 128, 60, seed=3)
        assert a.shape == (96, 128, 3) and a.dtype == np.float32 and np.array_equal(a, b)
        assert a.min() >= 0.0 and a.max() <= 1.0
        if material.key != "glass":  # glass is a tint: what shows is behind it
            assert not np.array_equal(a, swatch(material, 96, 128, 60, seed=4)), material.key
        means.append(np.concatenate([a.mean(axis=(0, 1)), a.std(axis=(0, 1))]))
    distances = [np.linalg.norm(means[i] - means[j]) for i in range(len(means)) for j in range(i)]
    assert min(distances) > 0.01  # no two materials look alike


def test_silhouette_depth_is_a_dome_over_the_mask() -> None:
    spoon = label("coffee.png", "spoon").mask
    depth = SilhouetteDepth()(photo("coffee.png"), spoon)
    assert depth.shape == spoon.shape and depth.dtype == np.float32
    assert depth[~spoon].max() == 0 and depth.max() == pytest.approx(1.0, abs=1e-3)
    # It rises from the outline inwards: its order follows the distance to the outline.
    distance = cv2.distanceTransform(spoon.astype(np.uint8), cv2.DIST_L2, 5)[spoon]
    ranks = np.argsort(np.argsort(distance)), np.argsort(np.argsort(depth[spoon]))
    assert np.corrcoef(*ranks)[0, 1] > 0.9  # not 1: the blur that rounds off the medial crease
    with pytest.raises(ValueError, match="needs its mask"):
        SilhouetteDepth()(photo("coffee.png"))


def test_retinex_shading_takes_out_paint_and_keeps_light() -> None:
    image = photo("coffee.png")
    spoon = label("coffee.png", "spoon").mask
    lightness = rgb_to_lab(image)[..., 0] / 100.0
    painted = lightness.copy()
    x0 = int(np.nonzero(spoon)[1].mean())
    painted[:, x0:] *= 0.35  # a sharp step of dark paint across the spoon
    radius = float(np.sqrt(spoon.sum() / np.pi))
    plain, stepped = retinex_shading(lightness, spoon, radius), retinex_shading(painted, spoon, radius)
    left, right = spoon.copy(), spoon.copy()
    left[:, x0:] = False
    right[:, : x0 + 4] = False
    # The painted half is 0.35 as bright in the photo, but its shading barely moves.
    ratio = (stepped[right].mean() / stepped[left].mean()) / (plain[right].mean() / plain[left].mean())
    assert 0.75 < ratio < 1.33


def test_edge_matte_is_solid_inside_empty_outside_and_soft_between() -> None:
    image = photo("coffee.png").astype(np.float32) / 255
    spoon = label("coffee.png", "spoon").mask
    alpha, background = edge_matte(image, spoon, 3)
    assert alpha.shape == spoon.shape and background.shape == image.shape
    assert alpha.min() >= 0 and alpha.max() <= 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    inside = cv2.erode(spoon.astype(np.uint8), disc) > 0
    outside = ~(cv2.dilate(spoon.astype(np.uint8), disc) > 0)
    assert alpha[inside].min() == 1.0 and alpha[outside].max() == 0.0
    assert ((alpha > 0.05) & (alpha < 0.95)).sum() > 0.5 * (spoon & ~inside).sum()  # a soft band, not a cut


@pytest.mark.parametrize("material", [m.key for m in MATERIALS])
def test_retexture_changes_the_object_and_nothing_far_from_it(material: str) -> None:
    image = photo("coffee.png")
    spoon = label("coffee.png", "spoon").mask
    depth = SilhouetteDepth()(image, spoon)
    result = ShadedTextureTransfer()(image, spoon, MATERIALS_BY_KEY[material], "spoon", depth, seed=5)
    assert result.shape == image.shape and result.dtype == np.uint8
    changed = np.any(result != image, axis=-1)
    near = np.zeros_like(spoon)
    ys, xs = np.nonzero(spoon)
    near[max(0, ys.min() - 6) : ys.max() + 7, max(0, xs.min() - 6) : xs.max() + 7] = True
    assert not (changed & ~near).any()  # only the object and its outline band
    difference = np.linalg.norm(rgb_to_lab(image[spoon]) - rgb_to_lab(result[spoon]), axis=-1)
    assert difference.mean() > 10, material


def test_surface_pattern_tells_painted_objects_from_smooth_ones() -> None:
    astronaut = photo("astronaut.png")
    rocket = surface_pattern(photo("rocket.jpg"), label("rocket.jpg", "rocket").mask)
    flag = surface_pattern(astronaut, label("astronaut.png", "flag").mask)
    helmet = surface_pattern(astronaut, label("astronaut.png", "helmet").mask)
    assert rocket < 0.3 < flag < helmet


@pytest.fixture(scope="module")
def material_items() -> list:
    return run_items("material_modification", task_params={"materials_per_object": 2})


def test_pairs_on_the_examples_name_object_and_material(material_items: list) -> None:
    samples = [sample for item in material_items for sample in item.samples]
    assert samples
    for sample in samples:
        params = sample.record["edit"]["params"]
        material = MATERIALS_BY_KEY[params["target"]["material"]]
        names = object_names(params["category"])
        en, zh = sample.record["instruction"]["en"], sample.record["instruction"]["zh"]
        assert names["en"] in en and names["zh"] in zh and material.zh in zh, (en, zh)
        assert material.en in en or material.adjective in en
        assert params["method"] == "shaded_texture_transfer" and params["depth"] == "silhouette_inflation"
        source, result, mask = decoded(sample)
        changed = np.abs(source.astype(int) - result.astype(int)).max(axis=-1) > 12
        assert changed[mask].mean() > 0.3 and (changed & ~mask).mean() < 0.002


def test_objects_a_texture_would_not_suit_are_rejected_with_reasons(material_items: list) -> None:
    reasons = {
        item.ref["uri"].rsplit("/", 1)[-1]: item.reject_reason for item in material_items if not item.samples
    }
    assert reasons["camera.png"] == "greyscale_photo"
    assert reasons["chelsea.png"] == "mask_too_large"
    assert reasons["rocket.jpg"] == "too_thin"
