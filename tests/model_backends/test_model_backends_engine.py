"""`step1x-data run ... --backend models --models-dir DIR` through the real engine with tiny models in their
upstream layouts: valid shards, the models recorded with each sample, pixels outside the mask untouched,
Florence-2 + SAM-2 on unlabelled photos, an out-of-memory in the inpainter rejected as `oom`."""

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

from annotators.inpaint_models import INPAINT_MODEL_ENV
from pipelines.config import RunConfig
from pipelines.runner import run

LABELLED = ("camera.png", "rocket.jpg")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """coffee.png without labels (Florence-2 + SAM-2 look at it); camera and rocket with their COCO labels."""
    folder = tmp_path_factory.mktemp("photos")
    for name in ("coffee.png", *LABELLED):
        shutil.copy(PHOTOS / name, folder / name)
    coco = json.loads((PHOTOS / "labels.coco.json").read_text())
    coco["images"] = [image for image in coco["images"] if image["file_name"] in LABELLED]
    ids = {image["id"] for image in coco["images"]}
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in ids]
    (folder / "labels.coco.json").write_text(json.dumps(coco))
    return folder


def samples(out: Path) -> list[dict]:
    tars = sorted(str(p) for p in (out / "shards").glob("shard-*.tar"))
    return list(wds.WebDataset(tars, shardshuffle=False))


def png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_subject_removal_with_the_model_backends(photos: Path, models_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cli(
        "run", "subject_removal", "--source", str(photos), "--out", str(out), "--backend", "models",
        "--models-dir", str(models_dir), "--executor", "local", "--image-format", "png", "--quiet",
        "--param", "check_fill=false",
        env={"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    written = samples(out)
    assert {Path(row["source_uri"]).name for row in manifest_rows(out)} == set(LABELLED)
    assert len(written) == len(manifest_rows(out)) >= 2
    for sample in written:
        record = json.loads(sample["json"])
        assert record["backend"] == "models" and record["gedit_key"] == "subject-remove"
        assert record["annotators"]["objects"] == {"backend": "labels", "name": "coco", "version": "coco"}
        assert record["annotators"]["inpaint"]["name"] == "FLUX.1-Fill-dev"
        assert record["annotators"]["inpaint"]["backend"] == "models"
        source, target, mask = png(sample["src.png"]), png(sample["tgt.png"]), png(sample["mask.png"]) > 127
        assert source.shape == target.shape and mask.shape == source.shape[:2]
        assert np.array_equal(source[~mask], target[~mask])  # the inpainter touched the hole only
        assert np.abs(source[mask].astype(int) - target[mask]).mean() > 5
    # coffee.png went through Florence-2 (a cup, and two things it drops) and SAM-2, whose random weights
    # score the cup's mask too low: no named object to remove.
    (coffee,) = reject_rows(out)
    assert Path(coffee["source_uri"]).name == "coffee.png" and coffee["reason"] == "unnamed_region"


def test_subject_addition_with_stable_diffusion(
    photos: Path, models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(INPAINT_MODEL_ENV, "stable-diffusion-2-inpainting")
    config = RunConfig(
        task="subject_addition",
        source=str(photos),
        out=str(tmp_path / "run"),
        backend="models",
        models_dir=str(models_dir),
        image_format="png",
        task_params={"check_fill": False},
    )
    summary = run(config, executor="local")
    assert summary.samples >= 2 and summary.rejects == {"unnamed_region": 1}
    for sample in samples(tmp_path / "run"):
        record = json.loads(sample["json"])
        assert record["gedit_key"] == "subject-add"
        assert record["instruction"]["en"].startswith(("Add", "Put", "Place", "Insert"))
        assert record["annotators"]["inpaint"]["name"] == "stable-diffusion-2-inpainting"
        source, target, mask = png(sample["src.png"]), png(sample["tgt.png"]), png(sample["mask.png"]) > 127
        # The inpainted photo is the source, the real one the target; they differ inside the mask only.
        assert np.array_equal(source[~mask], target[~mask]) and not np.array_equal(source[mask], target[mask])


def test_an_inpainter_out_of_memory_rejects_the_source_as_oom(
    photos: Path, models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from diffusers import FluxTransformer2DModel

    calls = []

    def out_of_memory(self: FluxTransformer2DModel, *args: object, **kwargs: object) -> None:
        calls.append(1)
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")

    monkeypatch.setattr(FluxTransformer2DModel, "forward", out_of_memory)
    config = RunConfig(
        task="subject_removal", source=str(photos), out=str(tmp_path / "run"), backend="models",
        models_dir=str(models_dir),
    )  # fmt: skip
    summary = run(config, executor="local")
    assert summary.samples == 0 and summary.errors == 0
    assert summary.rejects == {"oom": 2, "unnamed_region": 1}
    assert len(calls) == 4  # each labelled photo: its first object, tried again once after freeing memory
