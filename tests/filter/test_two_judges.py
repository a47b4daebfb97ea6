"""`step1x-data filter --judge2`: two judges score every sample; a sample is kept when both keep it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from click.testing import CliRunner

from annotators.judge.heuristic import HeuristicJudge
from annotators.mllm.scripted_server import Reply, ScriptedServer, request_images, request_text
from pipelines.cli import main
from pipelines.filter import JUDGE2_COLUMNS
from pipelines.judge_agreement import cohen_kappa
from pipelines.shards import RunFolder
from pipelines.views import manifest_paths


def _rows(run: Path) -> list[dict]:
    return [r for m in manifest_paths(RunFolder(str(run))) for r in pq.read_table(m).to_pylist()]


def _filter(*args: str) -> str:
    result = CliRunner().invoke(main, ["filter", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _script(body: dict) -> Reply:
    # An MLLM whose SC follows the instruction's length: varied, and known per sample.
    if len(request_images(body)) == 1:
        return Reply(text='{"score": [8, 8]}')
    instruction = request_text(body).rsplit("Editing instruction: ", 1)[1].strip()
    return Reply(text=f'{{"score": [{len(instruction) % 11}, 10]}}')


def test_two_judges_keep_only_what_both_keep(run_dir: Path) -> None:
    _filter(str(run_dir), "--view", "heuristic-only")
    heuristic = {r["id"]: r for r in _rows(run_dir)}
    threshold = float(np.median([r["o"] for r in heuristic.values()]))
    with ScriptedServer(_script) as server:
        args = [str(run_dir), "--judge", "openai", "--judge-url", server.url, "--judge2", "heuristic"]
        output = _filter(*args, "--min-o", str(threshold), "--view", "both")
        asked = len(server.requests)
        manifests = {m: m.stat().st_mtime_ns for m in map(Path, manifest_paths(RunFolder(str(run_dir))))}
        _filter(*args, "--min-o", "0", "--view", "lenient")
        assert len(server.requests) == asked  # new thresholds: neither judge asked again
    assert {m: m.stat().st_mtime_ns for m in manifests} == manifests
    assert "judges' keep decisions" in output

    rows = _rows(run_dir)
    for r in rows:
        assert r["judge"] == "openai:scripted-model:en:v1" and r["judge2"] == HeuristicJudge.name
        # The second judge's columns hold exactly what the heuristic gives alone.
        assert (r["sc2"], r["pq2"], r["o2"]) == tuple(heuristic[r["id"]][k] for k in ("sc", "pq", "o"))
        assert r["sc"] == len(r["instruction_en"]) % 11
    first = {r["id"]: r["o"] >= threshold for r in rows}
    second = {r["id"]: r["o2"] >= threshold for r in rows}
    expected = {
        i
        for i in first
        if first[i] and second[i] and not next(r for r in rows if r["id"] == i)["near_dup_of"]
    }
    view = run_dir / "views" / "both"
    assert set(pq.read_table(view / "ids.parquet").column("id").to_pylist()) == expected
    assert {"sc2", "pq2", "o2"} <= set(pq.read_table(view / "ids.parquet").column_names)
    rejected = {r["id"]: r["reason"] for r in pq.read_table(view / "rejected.parquet").to_pylist()}
    disagree = {i for i in first if first[i] != second[i]}
    assert disagree and disagree - {i for i, why in rejected.items() if why == "near_duplicate"} == {
        i for i, why in rejected.items() if why == "judges_disagree"
    }
    meta = json.loads((view / "view.json").read_text())
    a = np.array([first[i] for i in sorted(first)])
    b = np.array([second[i] for i in sorted(first)])
    assert meta["judge2"] == HeuristicJudge.name
    assert meta["agreement"] == {
        "judged_by_both": len(rows),
        "both_keep": int(np.sum(a & b)),
        "both_drop": int(np.sum(~a & ~b)),
        "only_first_keeps": int(np.sum(a & ~b)),
        "only_second_keeps": int(np.sum(~a & b)),
        "kappa": round(cohen_kappa(a, b), 4),
    }
    run_json = json.loads((run_dir / "run.json").read_text())
    assert (
        run_json["judge"]["judge2"] == {"name": HeuristicJudge.name}
        and run_json["judge"]["usage"]["http_requests"] == 0
    )

    _filter(str(run_dir), "--view", "one-again")  # one judge: the manifests hold only its scores again
    assert not set(JUDGE2_COLUMNS) & set(_rows(run_dir)[0])


def test_the_same_judge_twice_is_refused(run_dir: Path) -> None:
    result = CliRunner().invoke(main, ["filter", str(run_dir), "--judge2", "heuristic"])
    assert result.exit_code == 2 and f"the two judges are the same ({HeuristicJudge.name})" in result.output
    result = CliRunner().invoke(main, ["filter", str(run_dir), "--judge2", "openai"])
    assert result.exit_code == 2 and "--judge2 openai needs --judge2-url" in result.output
