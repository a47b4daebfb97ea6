"""A source that crashes its Ray worker every time (a real segfault in a plug-in's native call) is tried
MAX_CRASHES times, then rejected as `worker_crashed`; the run goes on and every other source is done."""

from __future__ import annotations

import json
from pathlib import Path

from engine_inputs import PHOTOS, cli, manifest_rows, plugin_env, reject_rows

from pipelines.crashes import MAX_CRASHES


def test_a_source_that_crashes_its_worker_is_rejected_after_bounded_retries(tmp_path: Path) -> None:
    log = tmp_path / "crashes.txt"
    env = {**plugin_env(tmp_path, objects="crashing_objects"), "STEP1X_CRASH_LOG": str(log)}
    out = tmp_path / "run"
    args = ["run", "subject_removal", "--source", str(PHOTOS), "--out", str(out), "--quiet", "--workers", "1"]
    cli(*args, env=env, timeout=600)
    reasons = {Path(r["source_uri"]).name: (r["reason"], r["detail"]) for r in reject_rows(out)}
    reason, detail = reasons.pop("coffee.png")
    assert reason == "worker_crashed"
    assert f"died {MAX_CRASHES} times" in detail and "'annotate:objects'" in detail
    pids = log.read_text().split()
    assert len(pids) == MAX_CRASHES and len(set(pids)) == MAX_CRASHES  # three processes, each killed
    # The others are done as in a run without the crashing plug-in (tests/engine/test_engine_failures.py).
    assert {name: reason for name, (reason, _) in reasons.items()} == {
        "astronaut.png": "mask_cut_by_border",
        "camera.png": "mask_cut_by_border",
        "chelsea.png": "mask_too_large",
    }
    assert [Path(r["source_uri"]).name for r in manifest_rows(out)] == ["rocket.jpg"]
    counts = json.loads((out / "run.json").read_text())["counts"]
    assert counts["read"] == counts["kept_sources"] + counts["rejected"] == 5
