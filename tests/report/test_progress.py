"""Per-stage progress of real runs: the counts in RUN/progress.json, the live table, the log lines, and the
step timings travelling back from Ray workers."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PHOTOS, REPO, step1x_data
from rich.console import Console

from pipelines.config import RunConfig
from pipelines.graph import iterate_local
from pipelines.progress import RunProgress
from pipelines.runner import RunSummary
from pipelines.sources import list_sources

STEPS = ["load", "annotate:objects", "edit"]


def check_stage_arithmetic(stages: dict, items: int) -> None:
    """Each step's rows in = rows out + rejects, and a step's rows out are the next one's rows in."""
    flow = items
    for name in [s for s in STEPS if s in stages]:
        counts = stages[name]
        assert counts["in"] == flow, (name, counts, flow)
        assert counts["in"] == counts["out"] + counts["rejected"]
        assert counts["busy_s"] > 0 or name == "annotate:objects"  # labels given: a lookup, microseconds
        flow = counts["out"]
    assert stages["write"]["in"] == flow


def test_progress_json_of_a_run_and_its_resume(removal_run: Path, tmp_path: Path) -> None:
    document = json.loads((removal_run / "progress.json").read_text())
    (entry,) = document["runs"]
    run_json = json.loads((removal_run / "run.json").read_text())["counts"]
    assert entry["status"] == "finished" and entry["task"] == "subject_removal"
    assert entry["todo"] == entry["read"] == run_json["read"] == 5
    assert entry["samples"] == run_json["samples_written"]
    stages = entry["stages"]
    assert list(stages) == [*STEPS, "write"]
    check_stage_arithmetic(stages, 5)
    assert (
        stages["edit"]["rejected"] == run_json["rejected"] == 2
    )  # the task's own rejects (mask too large, ...)
    assert stages["write"]["out"] == run_json["samples_written"]
    assert len(entry["series"]) >= 2 and entry["series"][-1]["read"] == 5

    # a resumed run adds its own entry; the first part's stays as it was
    run = tmp_path / "tone"
    common = [
        "run",
        "tone_transformation",
        "--source",
        PHOTOS,
        "--out",
        run,
        "--executor",
        "local",
        "--quiet",
    ]
    step1x_data(*common, "--limit", 2)
    step1x_data(*common)
    first, second = json.loads((run / "progress.json").read_text())["runs"]
    assert (first["read"], first["todo"]) == (2, 5)  # --limit 2 of 5
    assert (second["read"], second["already_done"], second["todo"]) == (3, 2, 3)
    assert first["status"] == second["status"] == "finished"
    check_stage_arithmetic(second["stages"], 3)
    folder_total = json.loads((run / "run.json").read_text())["counts"]["folder_total_samples"]
    assert first["samples"] + second["samples"] == folder_total


def test_live_table_and_log_lines_from_real_items(tmp_path: Path) -> None:
    """The steps of a real run, item by item (the local executor), through both displays."""
    # the fill checks off, as in the report's runs: 4 removals and 2 rejects
    config = RunConfig(
        task="subject_removal",
        source=str(PHOTOS),
        out=str(tmp_path / "run"),
        task_params={"check_fill": False},
    )
    refs = list_sources(config.source, config.labels, config.licence).refs
    terminal = io.StringIO()
    live = RunProgress(
        config.out, config.task, console=Console(file=terminal, force_terminal=True, width=140), live=True
    )
    log = io.StringIO()
    logged = RunProgress(config.out, config.task, live=False, log_every_s=1e-6, log_stream=log)
    summary = RunSummary(out=config.out)
    for item in iterate_local(refs, config, frozenset()):
        summary.read += 1
        if item.rejected:
            summary.rejects[item.reject_reason] += 1
        else:
            summary.samples += len(item.samples)
        live.observe(item, summary, len(refs))
        logged.observe(item, summary, len(refs))
    live.finish(summary)
    logged.finish(summary)
    table = terminal.getvalue()
    for name in [*STEPS, "write", "rows in", "worker s / row"]:
        assert name in table
    assert f"subject_removal: 5/5 items, {summary.samples} samples, 2 rejects" in table
    lines = log.getvalue().splitlines()
    assert len(lines) == 5 + 1  # one per item at this log interval, and the final one
    assert lines[0].startswith("progress subject_removal: 1/5 items")
    assert "ETA" in lines[0] and "ETA" not in lines[-1]
    assert lines[-1].endswith(f"write 3>{summary.samples} (0 rejected)")


@pytest.mark.slow  # a Ray start-up: about a minute on a 2-core machine
def test_ray_workers_report_step_timings(tmp_path: Path) -> None:
    """Under Ray the timings come back with each item from the workers; --quiet prints a log line."""
    out = tmp_path / "run"
    cli = Path(sys.executable).with_name("step1x-data")
    result = subprocess.run(
        [str(cli), "run", "tone_transformation", "--source", str(PHOTOS), "--out", str(out), "--quiet",
         "--limit", "2", "--workers", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads((out / "progress.json").read_text())["runs"]
    check_stage_arithmetic(entry["stages"], 2)
    assert "progress tone_transformation: 2/5 items, 12 samples, 0 rejects" in result.stderr  # --limit 2
    assert "| load 2>2 (0 rejected) | edit 2>2 (0 rejected) | write 2>12 (0 rejected)" in result.stderr


def test_a_video_expanded_into_frame_pairs_is_counted_as_items_from_sources(tmp_path: Path) -> None:
    """One listed video becomes several frame-pair items: the line counts them against the sources read,
    not as "3/1 items", and gives no ETA it cannot know."""
    from pipelines.items import WorkItem

    log = io.StringIO()
    progress = RunProgress(
        str(tmp_path / "run"), "motion_change", live=False, log_every_s=1e-6, log_stream=log
    )
    summary = RunSummary(out=str(tmp_path / "run"))
    for first in (0, 5, 10):
        summary.read += 1
        item = WorkItem(ref={"uri": f"clip.mp4#frames={first},{first + 10}"}, timings={"edit": 0.5})
        summary.samples += 2
        progress.observe(item, summary, 1)
    progress.finish(summary)
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("progress motion_change: 1/1 items, 2 samples")
    assert lines[1].startswith("progress motion_change: 2 items from 1 sources, 4 samples")
    assert all("ETA" not in line for line in lines[1:])
    assert progress.snapshot()["eta_s"] is None
