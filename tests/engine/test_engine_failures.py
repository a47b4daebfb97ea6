"""Failures that fail: a bug stops the run (or is counted), an out-of-memory is retried smaller then
rejected, a Ray that does not start is one line. The faults come from real plug-ins announced through the
`step1x_data.plugins` entry-point group (tests/engine/plugins), in real runs of the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from engine_inputs import PHOTOS, cli, manifest_rows, reject_rows

PLUGINS = Path(__file__).parent / "plugins"


def plugin_env(tmp_path: Path, **plugins: str) -> dict[str, str]:
    """An installed distribution (a dist-info on PYTHONPATH) announcing `name = module` plug-ins."""
    site = tmp_path / "site"
    info = site / "step1x_test_plugins-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: step1x-test-plugins\nVersion: 0.1\n")
    lines = "".join(f"{name} = {module}\n" for name, module in plugins.items())
    (info / "entry_points.txt").write_text(f"[step1x_data.plugins]\n{lines}")
    return {"PYTHONPATH": f"{site}:{PLUGINS}"}


def removal(out: Path, *extra: str, env: dict[str, str], check: bool = False):
    return cli("run", "subject_removal", "--source", str(PHOTOS), "--out", str(out), "--quiet", *extra,
               env=env, check=check)


def test_a_bug_stops_the_run_with_its_traceback_and_source(tmp_path: Path) -> None:
    env = plugin_env(tmp_path, inpaint="faulty_inpaint")
    out = tmp_path / "run"
    result = removal(out, env=env)
    assert result.returncode != 0
    assert "ZeroDivisionError: injected bug in a plug-in tool" in result.stderr
    assert "rocket.jpg" in result.stderr and "faulty_inpaint.py" in result.stderr  # the source, the traceback
    run = json.loads((out / "run.json").read_text())
    assert run["runs"][-1]["status"] == "failed" and run["counts"]["errors"] == 1
    # The failing source is neither a sample nor a reject: a rerun (the bug fixed) does it.
    assert "rocket.jpg" not in {Path(r["source_uri"]).name for r in manifest_rows(out) + reject_rows(out)}
    fixed = removal(out, "--executor", "local", env={}, check=True)
    assert "already done" in fixed.stdout
    assert [Path(r["source_uri"]).name for r in manifest_rows(out)] == ["rocket.jpg"]


def test_under_max_error_rate_errors_are_recorded_and_counted(tmp_path: Path) -> None:
    env = plugin_env(tmp_path, inpaint="faulty_inpaint")
    tolerant = removal(tmp_path / "tolerant", "--max-error-rate", "0.25", "--executor", "local", env=env)
    assert tolerant.returncode == 0, tolerant.stderr  # 1 error in 5 sources
    rows = reject_rows(tmp_path / "tolerant")
    (error,) = [r for r in rows if r["reason"].startswith("error:")]
    assert error["reason"] == "error:edit" and Path(error["source_uri"]).name == "rocket.jpg"
    assert "ZeroDivisionError" in error["detail"]
    assert len(rows) == 5  # the four other photos are rejected for what they are (test_engine_run.py)
    strict = removal(tmp_path / "strict", "--max-error-rate", "0.1", "--executor", "local", env=env)
    assert strict.returncode != 0 and "1 of 5 sources failed" in strict.stderr
    assert len(reject_rows(tmp_path / "strict")) == 5  # recorded all the same


def test_out_of_memory_halves_the_batch_then_rejects_the_source(tmp_path: Path) -> None:
    log = tmp_path / "batches.txt"
    env = {**plugin_env(tmp_path, objects="oom_objects"), "STEP1X_OOM_LOG": str(log)}
    out = tmp_path / "run"
    removal(out, "--executor", "local", env=env, check=True)
    reasons = {Path(r["source_uri"]).name: r["reason"] for r in reject_rows(out)}
    # The rocket is rejected for memory; the four others got through the annotator and were then judged
    # for what they are (tests/engine/test_engine_run.py), so the halving let them through.
    assert reasons == {
        "rocket.jpg": "oom",
        "astronaut.png": "mask_cut_by_border",
        "camera.png": "mask_cut_by_border",
        "chelsea.png": "mask_too_large",
        "coffee.png": "hole_too_large",
    }
    sizes = [int(line) for line in log.read_text().split()]
    # 5 sources in batches of 4: [4 -> 2, 2 -> (1, 1) for the rocket's half], then the last source alone.
    assert sizes[0] == 4 and sizes[1] == 2 and 1 in sizes and max(sizes) == 4


def test_a_local_ray_that_does_not_start_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    result = removal(tmp_path / "run", env={"RAY_TMPDIR": str(blocker / "ray")})
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()
    assert len(message) == 1 and "the local Ray did not start" in message[0]
    assert "--executor local" in message[0]


@pytest.mark.parametrize("where", ["no_models_dir", "missing_folder"])
def test_a_missing_model_is_one_line_before_any_work(tmp_path: Path, where: str) -> None:
    """The real model plug-ins: Florence-2 + SAM-2 (objects), then FLUX.1-Fill or SD inpainting (inpaint)."""
    models_dir = tmp_path / "models"
    if where == "missing_folder":
        for present in ("Florence-2-large", "sam2.1-hiera-large"):  # the annotator's folders, not the tool's
            (models_dir / present).mkdir(parents=True)
    models = [] if where == "no_models_dir" else ["--models-dir", str(models_dir)]
    result = removal(tmp_path / "run", "--backend", "models", *models, env={})
    assert result.returncode != 0 and not (tmp_path / "run").exists()
    (line,) = result.stderr.strip().splitlines()
    assert "models backend" in line
    if where == "no_models_dir":  # the first plug-in checked is the task's annotator
        assert "Florence-2-large" in line and "--models-dir" in line
    else:
        assert str(models_dir / "FLUX.1-Fill-dev") in line and "stable-diffusion-2-inpainting" in line
