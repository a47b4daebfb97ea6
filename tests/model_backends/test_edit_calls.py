"""The edit step of a model backend is called from two threads at once (pipelines.graph gives its actor two
concurrent calls): each of its tools must take turns. An offline edit step runs one call per process."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from engine_inputs import PHOTOS
from PIL import Image

from pipelines.config import RunConfig
from pipelines.stages import MODEL_EDIT_CALLS, EditStep, step_specs


class OverlapCounter:
    """An inpainting engine that paints grey slowly and counts how many of its calls ran at once."""

    def __init__(self, canvas: object) -> None:
        self.canvas = canvas
        self.calls = self.inside = self.most_at_once = 0
        self.lock = threading.Lock()

    def __call__(self, image: Image.Image, _mask: Image.Image, _prompt: str | None, _seed: int) -> np.ndarray:
        with self.lock:
            self.calls += 1
            self.inside += 1
            self.most_at_once = max(self.most_at_once, self.inside)
        time.sleep(0.05)
        with self.lock:
            self.inside -= 1
        return np.full((image.height, image.width, 3), 0.5, np.float32)


def config(models_dir: Path | None, tmp_path: Path) -> RunConfig:
    backend = "models" if models_dir else "offline"
    return RunConfig(
        task="subject_removal", source=str(tmp_path), out=str(tmp_path / "run"), backend=backend,
        models_dir=str(models_dir) if models_dir else None,
    )  # fmt: skip


def test_model_tools_take_turns_when_two_threads_call(models_dir: Path, tmp_path: Path) -> None:
    (edit,) = [spec for spec in step_specs(config(models_dir, tmp_path)) if spec.name == "edit"]
    assert edit.actor and edit.calls_per_actor == MODEL_EDIT_CALLS == 2
    step = edit.make()
    inpaint = step.tools["inpaint"]
    assert inpaint.name == "diffusion_inpainter" and inpaint.can_fill  # attributes pass through
    image = np.asarray(Image.open(PHOTOS / "coffee.png").convert("RGB"))
    mask = np.zeros(image.shape[:2], bool)
    mask[100:200, 150:260] = True
    inpaint._tool.engine = OverlapCounter(inpaint._tool.engine.canvas)
    threads = [threading.Thread(target=inpaint, args=(image, mask)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert inpaint._tool.engine.calls == 4
    assert inpaint._tool.engine.most_at_once == 1


def test_an_offline_edit_step_runs_one_call_at_a_time(tmp_path: Path) -> None:
    (edit,) = [spec for spec in step_specs(config(None, tmp_path)) if spec.name == "edit"]
    assert not edit.actor and edit.calls_per_actor == 1
    step: EditStep = edit.make()
    assert type(step.tools["inpaint"]).__name__ == "ClassicalInpainter"
