"""Optical flow: OpenCV DIS on a real photo moved by a known amount, the camera's motion recovered from it,
and RAFT (torchvision) loaded from a models folder with a tiny random-initialised network."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import PHOTOS, rgb
from engine_inputs import clip_frames

from annotators.registry import PluginUnavailable
from tasks.motion_change import camera_motion


def shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, matrix, image.shape[1::-1], borderMode=cv2.BORDER_REFLECT)


def test_dis_flow_measures_a_known_shift(flow) -> None:  # noqa: ANN001
    image = rgb(PHOTOS / "coffee.png")
    field = flow(image, shifted(image, 3.0, -2.0))
    assert field.shape == (*image.shape[:2], 2) and field.dtype == np.float32
    inner = field[40:-40, 40:-40]
    assert np.median(inner[..., 0]) == pytest.approx(3.0, abs=0.3)
    assert np.median(inner[..., 1]) == pytest.approx(-2.0, abs=0.3)


def test_camera_motion_is_found_under_people_walking(flow) -> None:  # noqa: ANN001
    first, second = clip_frames((0, 10))
    _, still = camera_motion(flow(first, second))
    assert still < 0.5  # the clip's camera is fixed; only the walkers move
    homography, panned = camera_motion(flow(first, shifted(second, 6.0, 4.0)))
    assert panned == pytest.approx(np.hypot(6, 4), abs=0.8)
    assert homography[0, 2] == pytest.approx(6.0, abs=1.0) and homography[1, 2] == pytest.approx(4.0, abs=1.0)


def tiny_raft_folder(root: Path) -> Path:
    """torchvision's raft_small, random weights, saved as the models backend reads it."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    folder = root / "raft_small"
    folder.mkdir(parents=True)
    save_file(
        {k: v.contiguous() for k, v in raft_small(weights=None).state_dict().items()},
        str(folder / "model.safetensors"),
    )
    return folder


def test_raft_models_backend_loads_from_the_models_folder(tmp_path: Path) -> None:
    from annotators.flow_models import RAFTFlow

    with pytest.raises(PluginUnavailable) as missing:
        RAFTFlow.check(str(tmp_path))
    assert "raft_large" in str(missing.value) and "\n" not in str(missing.value)
    tiny_raft_folder(tmp_path)
    RAFTFlow.check(str(tmp_path))
    raft = RAFTFlow(str(tmp_path), max_side=128, iterations=2)
    first, second = (cv2.resize(f, (160, 120), interpolation=cv2.INTER_AREA) for f in clip_frames((0, 5)))
    field = raft(first, second)
    assert field.shape == (120, 160, 2) and field.dtype == np.float32 and np.isfinite(field).all()


def test_raft_refuses_pickled_weights(tmp_path: Path) -> None:
    from annotators.flow_models import RAFTFlow

    folder = tmp_path / "raft_large"
    folder.mkdir()
    (folder / "raft_large_C_T_SKHT_V2-ff5fadd5.pth").write_bytes(b"pickle")
    with pytest.raises(PluginUnavailable, match="pickled"):
        RAFTFlow(str(tmp_path))


def test_raft_bench_runs_tiny_on_the_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("bench_tpm", REPO / "bench" / "text_portrait_motion.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.raft(argparse.Namespace(size="160x128", pairs=1, iterations=2, arch="raft_small"))
    table = capsys.readouterr().out.strip().splitlines()
    assert table[-1].startswith("| raft_small | 160x128 | 2 | cpu | 1 |")
