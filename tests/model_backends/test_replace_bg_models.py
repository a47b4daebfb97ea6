"""subject_replacement and background_change with `--backend models` through the real engine, with the tiny
Florence-2, SAM-2 and FLUX.1-Fill folders of tiny_models.py: the background painted around a subject kept
pixel-exact, and a replacement refused when Florence-2 does not find the new object where it was painted."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from engine_inputs import PHOTOS, cli, manifest_rows, reject_rows
from PIL import Image

from annotators.grounding_models import Florence2Grounding
from annotators.registry import resolve


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A folder per photo, each with its COCO labels: the astronaut for a new background, the camera (on its
    tripod) to be replaced."""
    coco = json.loads((PHOTOS / "labels.coco.json").read_text())
    folders = {}
    for name in ("astronaut.png", "camera.png"):
        folder = tmp_path_factory.mktemp(name.split(".")[0])
        shutil.copy(PHOTOS / name, folder / name)
        images = [image for image in coco["images"] if image["file_name"] == name]
        ids = {image["id"] for image in images}
        annotations = [a for a in coco["annotations"] if a["image_id"] in ids]
        (folder / "labels.coco.json").write_text(
            json.dumps({**coco, "images": images, "annotations": annotations})
        )
        folders[name] = folder
    return folders


def run(task: str, photos: Path, models_dir: Path, out: Path) -> list[dict]:
    cli(
        "run", task, "--source", str(photos), "--out", str(out), "--backend", "models",
        "--models-dir", str(models_dir), "--executor", "local", "--image-format", "png", "--quiet",
        env={"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    tars = sorted(str(p) for p in (out / "shards").glob("shard-*.tar"))
    return list(wds.WebDataset(tars, shardshuffle=False)) if tars else []


def test_grounding_loads_florence2_through_the_objects_loader(models_dir: Path) -> None:
    grounding = resolve("grounding", "models")(str(models_dir))
    assert isinstance(grounding, Florence2Grounding)
    image = np.asarray(Image.open(PHOTOS / "coffee.png").convert("RGB"))
    for found in grounding(image, "a cup", (175, 16, 412, 305)):
        x0, y0, x1, y1 = found.box
        assert 0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]


def test_background_change_paints_around_the_subject(
    photos: dict[str, Path], models_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    (sample,) = run("background_change", photos["astronaut.png"], models_dir, out)
    record = json.loads(sample["json"])
    assert record["backend"] == "models" and record["variant"].startswith("bg:generated:")
    assert record["annotators"]["inpaint"]["name"] == "FLUX.1-Fill-dev"
    assert not record.get("partners")  # a model painting the scene needs no second photo
    assert record["edit"]["params"]["prompt"] in record["instruction"]["en"]
    source, target, mask = png(sample["src.png"]), png(sample["tgt.png"]), png(sample["mask.png"]) > 127
    assert 0.3 < (~mask).mean() < 0.7
    assert np.array_equal(source[~mask], target[~mask])  # the subject put back exactly
    assert np.abs(source[mask].astype(int) - target[mask]).mean() > 5


def test_subject_replacement_checks_the_painted_object(
    photos: dict[str, Path], models_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    assert run("subject_replacement", photos["camera.png"], models_dir, out) == []
    # FLUX.1-Fill painted a gadget where the camera was; the random Florence-2 found no such thing there.
    (reject,) = reject_rows(out)
    # (The person and the tripod have no replacement kind: the most common problem names the reject.)
    assert reject["reason"] == "no_replacement_kind" and "new_object_not_detected: 1" in reject["detail"]
    assert manifest_rows(out) == []


def png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))
