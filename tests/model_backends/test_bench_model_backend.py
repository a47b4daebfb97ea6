"""bench/model_backend_removal.py's dry run: tiny models on the CPU through the same Ray graph, plug-ins and
measurements as the full-size run on a GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from engine_inputs import REPO


def test_the_benchmark_runs_tiny_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    bench = ["bench/model_backend_removal.py", "--tiny", "--sources", "4", "--steps", "2", "--od-tokens", "8"]
    command = [sys.executable, *bench, "--out", str(out)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads((out / "results.json").read_text())
    # astronaut, coffee, chelsea and rocket at 1024 px with their COCO masks: the cup, the spoon and the
    # rocket are removable; the cat fills its photo.
    assert figures["sources"] == 4 and figures["pairs"] >= 2
    assert figures["inpaint_calls"] == figures["pairs"]
    assert sum(figures["inpaint_canvases"].values()) == figures["inpaint_calls"]
    assert figures["pairs_per_gpu_hour_whole_run"] > 0 and figures["steady_seconds"] >= 0
    assert 0 < figures["inpaint_share_of_model_time"] < 1  # both plug-ins ran and were timed
    assert figures["gpu_busy_steady"] is None and figures["peak_memory"] == {}  # no GPU here
    assert figures["machine"]["size"] == "tiny" and figures["machine"]["executor"] == "ray"
    lines = [line for path in (out / "stats").glob("*.jsonl") for line in path.read_text().splitlines()]
    rows = [json.loads(line) for line in lines]
    assert {row["role"] for row in rows} == {"objects", "inpaint"}
    # The edit actor works on two sources at once in threads; its inpainter's calls still take turns.
    fills = sorted((row["start"], row["end"]) for row in rows if row["role"] == "inpaint")
    assert all(later[0] >= earlier[1] for earlier, later in zip(fills, fills[1:], strict=False))
    assert sorted(p.name for p in (out / "run" / "shards").glob("*.tar"))
