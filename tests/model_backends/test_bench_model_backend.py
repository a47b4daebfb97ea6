"""bench/model_backend_edits.py's dry run: tiny models on the CPU through the same Ray graph, plug-ins and
measurements as the full-size run on a GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from engine_inputs import REPO

from annotators.inpaint_models import DiffusionInpainter


def run_bench(out: Path, task: str, *extra: str) -> dict[str, Any]:
    bench = ["bench/model_backend_edits.py", "--task", task, "--tiny", "--sources", "4", "--steps", "2"]
    command = [sys.executable, *bench, "--od-tokens", "8", *extra, "--out", str(out)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


def timed_calls(out: Path) -> list[dict[str, Any]]:
    lines = [line for path in (out / "stats").glob("*.jsonl") for line in path.read_text().splitlines()]
    return [json.loads(line) for line in lines]


def timed_roles(out: Path) -> set[str]:
    return {row["role"] for row in timed_calls(out)}


def test_the_replacement_benchmark_runs_tiny_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    figures = run_bench(out, "subject_replacement")
    # astronaut, coffee, chelsea and rocket at 1024 px with their COCO masks: the cup, the spoon and the
    # rocket have replacements of their kind; the cat fills its photo, the astronaut's objects have none.
    assert figures["sources"] == 4 and figures["pairs"] >= 2
    assert figures["rejects"] == {"mask_too_large": 1, "no_replacement_kind": 1}
    # Every painted object was looked for by the grounding model, and every pair had one painting.
    assert figures["inpaint_calls"] == figures["grounding_calls"] == figures["pairs"]
    assert sum(figures["inpaint_canvases"].values()) == figures["inpaint_calls"]
    assert figures["pairs_per_gpu_hour_whole_run"] > 0 and figures["steady_seconds"] >= 0
    assert 0 < figures["inpaint_share_of_model_time"] < 1  # the other plug-ins ran and were timed too
    assert figures["gpu_busy_steady"] is None and figures["peak_memory"] == {}  # no GPU here
    machine = figures["machine"]
    assert (
        machine["size"] == "tiny"
        and machine["executor"] == "ray"
        and machine["task"] == "subject_replacement"
    )
    assert machine["inpaint_gpus"] == DiffusionInpainter.resources.num_gpus  # the production plug-in's
    assert timed_roles(out) == {"objects", "inpaint", "grounding"}
    # The edit actor works on two sources at once in threads; each of its tools' calls still take turns.
    for role in ("inpaint", "grounding"):
        spans = sorted((row["start"], row["end"]) for row in timed_calls(out) if row["role"] == role)
        assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))
    assert sorted(p.name for p in (out / "run" / "shards").glob("*.tar"))


def test_the_background_benchmark_runs_tiny_in_one_process(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    figures = run_bench(out, "background_change", "--executor", "local")
    # Only the astronaut stands on the frame's bottom at a size whose background can change.
    assert figures["pairs"] == 1
    assert figures["rejects"] == {"subject_would_float": 1, "subject_too_large": 1, "subject_too_small": 1}
    # The whole background is painted: the canvas is the photo's shape, not a window around an object.
    assert figures["inpaint_calls"] == 1 and list(figures["inpaint_canvases"]) == ["64x64"]
    assert figures["grounding_calls"] == 0 and timed_roles(out) == {"objects", "inpaint"}
