"""bench/soak.py at a tiny size: it generates its sources, runs them, samples memory and progress while the
run goes, and checks the final accounting against the folder's own rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from engine_inputs import REPO


def test_the_soak_benchmark_runs_tiny_and_its_accounting_closes(tmp_path: Path) -> None:
    out = tmp_path / "soak"
    bench = ["bench/soak.py", "--sources", "50", "--executor", "local", "--period", "0.05", "--out", str(out)]
    result = subprocess.run([sys.executable, *bench], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads((out / "results.json").read_text())
    counts = figures["counts"]
    assert counts["read"] == 50 and counts["kept_sources"] + counts["rejected"] == 50
    assert figures["rejects_by_reason"].get("flat_image") == 1  # the 50th source is flat grey
    assert figures["folder"] == {
        "manifest_rows": counts["samples_written"],
        "sources_behind_them": counts["kept_sources"],
        "reject_rows": counts["rejected"],
    }
    assert figures["accounting_closes"] is True
    timeline = figures["timeline"]
    assert timeline and timeline[-1][1] <= 50 and all(row[2] > 0 and row[3] >= row[2] for row in timeline)
    assert "| tone_transformation | 50 |" in result.stdout
