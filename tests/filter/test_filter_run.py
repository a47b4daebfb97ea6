"""`step1x-data filter` on a real run folder produced by `step1x-data run` inside the test session."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import fsspec
import numpy as np
import pyarrow.parquet as pq
import pytest
import webdataset as wds
import yaml
from click.testing import CliRunner
from PIL import Image

from annotators.judge.heuristic import HeuristicJudge
from annotators.mllm.scripted_server import Reply, ScriptedServer, request_images, request_text
from pipelines.cli import main
from pipelines.filter import CALIBRATED_THRESHOLDS, JUDGE_COLUMNS
from pipelines.shards import RunFolder
from pipelines.views import manifest_paths, read_table, read_view_ids

CLI = Path(sys.executable).with_name("step1x-data")  # the installed console script


def _filter(*args: str) -> str:
    """`step1x-data filter ARGS`, through the project's click group."""
    result = CliRunner().invoke(main, ["filter", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _rows(run: Path) -> list[dict]:
    return [r for m in _manifests(run) for r in pq.read_table(m).to_pylist()]


def _manifests(run: Path) -> list[Path]:
    return [Path(m) for m in manifest_paths(RunFolder(str(run)))]


def _view_ids(run: Path, name: str) -> list[str]:
    return read_view_ids(RunFolder(str(run)), name)


def _samples_in(shards: Path) -> dict[str, dict]:
    return {
        s["__key__"]: s
        for tar in sorted(shards.glob("*.tar"))
        for s in wds.WebDataset(str(tar), shardshuffle=False, empty_check=False)
    }


def _samples(run: Path) -> dict[str, dict]:
    return _samples_in(run / "shards")


def _tar_digests(run: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (run / "shards").glob("*.tar")}


def test_heuristic_filter_scores_manifests_and_writes_view(run_dir: Path) -> None:
    before_rows = _rows(run_dir)
    before_tars = _tar_digests(run_dir)
    assert len(_manifests(run_dir)) > 1 and len(before_rows) > 10
    _filter(str(run_dir), "--judge", "heuristic", "--view", "all")
    o_values = sorted(r["o"] for r in _rows(run_dir))
    # A threshold in the middle of the run's own score distribution: some samples are kept, some are not.
    threshold = o_values[len(o_values) // 2]
    _filter(str(run_dir), "--judge", "heuristic", "--min-o", str(threshold), "--view", "half")

    rows = _rows(run_dir)
    assert _tar_digests(run_dir) == before_tars  # images are never rewritten
    assert [r["id"] for r in rows] == [r["id"] for r in before_rows]
    for r in rows:
        assert set(JUDGE_COLUMNS) <= set(r)
        assert r["judge"] == HeuristicJudge.name and r["judge_status"] == "ok"
        assert 0 <= r["sc"] <= 10 and 0 <= r["pq"] <= 10
        assert r["o"] == np.sqrt(r["sc"] * r["pq"])
        details = json.loads(r["judge_details"])
        assert {"changed_frac", "structure", "edit_success", "no_artifacts"} <= set(details)
        # The manifest's own columns are untouched.
        before = next(b for b in before_rows if b["id"] == r["id"])
        assert {k: r[k] for k in before} == before

    kept = set(_view_ids(run_dir, "half"))
    expected = {r["id"] for r in rows if r["o"] >= threshold and not r["near_dup_of"]}
    assert kept == expected and 0 < len(kept) < len(rows)
    rejected = pq.read_table(run_dir / "views" / "half" / "rejected.parquet").to_pylist()
    assert {r["id"] for r in rejected} | kept == {r["id"] for r in rows}
    assert all(r["reason"] in {"below_min_o", "near_duplicate"} for r in rejected)
    meta = json.loads((run_dir / "views" / "half" / "view.json").read_text())
    assert meta["read"] == len(rows) == meta["kept"] + sum(meta["dropped"].values())
    assert meta["thresholds"]["default"]["min_o"] == threshold
    run_json = json.loads((run_dir / "run.json").read_text())
    assert run_json["judge"]["name"] == HeuristicJudge.name and run_json["judge"]["view"] == "half"
    assert run_json["counts"]  # the pipeline's own keys survive


def test_the_calibrated_thresholds_are_the_default(run_dir: Path) -> None:
    """Without --min-* the heuristic judge keeps by the calibrated per-task thresholds; --min-o alone, or
    --thresholds none, puts the command line's values in charge of every task."""
    calibrated = yaml.safe_load(CALIBRATED_THRESHOLDS.read_text())
    assert calibrated["tone_transformation"]["min_o"] > 0
    assert "no threshold" not in _filter(str(run_dir), "--view", "calibrated")
    meta = json.loads((run_dir / "views" / "calibrated" / "view.json").read_text())
    assert meta["thresholds"]["tone_transformation"]["min_o"] == calibrated["tone_transformation"]["min_o"]
    kept = set(_view_ids(run_dir, "calibrated"))
    limit = calibrated["tone_transformation"]["min_o"]
    assert kept == {r["id"] for r in _rows(run_dir) if r["o"] >= limit and not r["near_dup_of"]}
    _filter(str(run_dir), "--min-o", "1", "--view", "explicit")
    meta = json.loads((run_dir / "views" / "explicit" / "view.json").read_text())
    assert set(meta["thresholds"]) == {"default"} and meta["thresholds"]["default"]["min_o"] == 1


def test_a_task_the_thresholds_file_leaves_out_is_named(run_dir: Path, tmp_path: Path) -> None:
    """The run's tone pairs, filtered by a file with thresholds for removal only: they are kept at the
    command line's values, and the user is told so."""
    removal_only = tmp_path / "removal_only.yaml"
    removal_only.write_text("subject_removal: {min_o: 9.5}\n")
    output = _filter(str(run_dir), "--min-o", "0.5", "--thresholds", str(removal_only), "--view", "only")
    assert (
        "tone_transformation: no threshold in the thresholds file, kept at min_sc 0.0, min_pq 0.0, min_o 0.5"
        in " ".join(output.split())
    )
    assert "subject_removal: no threshold" not in output
    kept = set(_view_ids(run_dir, "only"))
    assert kept == {r["id"] for r in _rows(run_dir) if r["o"] >= 0.5 and not r["near_dup_of"]}


def test_new_thresholds_reuse_scores(run_dir: Path, tmp_path: Path) -> None:
    _filter(str(run_dir), "--view", "first")
    scored = {r["id"]: (r["sc"], r["pq"], r["o"]) for r in _rows(run_dir)}
    assert json.loads((run_dir / "run.json").read_text())["judge"]["judged"] == len(scored)
    per_task = tmp_path / "per_task.yaml"
    median_sc = float(np.median([v[0] for v in scored.values()]))
    per_task.write_text(f"default: {{min_pq: 1.0}}\ntone_transformation: {{min_sc: {median_sc}}}\n")
    mtimes = {m: m.stat().st_mtime_ns for m in _manifests(run_dir)}
    _filter(str(run_dir), "--min-o", "0.5", "--thresholds", str(per_task), "--view", "second")
    assert json.loads((run_dir / "run.json").read_text())["judge"]["judged"] == 0  # no judge call at all
    assert {m: m.stat().st_mtime_ns for m in _manifests(run_dir)} == mtimes  # nor a manifest rewrite
    assert {r["id"]: (r["sc"], r["pq"], r["o"]) for r in _rows(run_dir)} == scored
    rows = _rows(run_dir)
    expected = {
        r["id"]
        for r in rows
        if r["sc"] >= median_sc and r["pq"] >= 1.0 and r["o"] >= 0.5 and not r["near_dup_of"]
    }
    assert set(_view_ids(run_dir, "second")) == expected
    meta = json.loads((run_dir / "views" / "second" / "view.json").read_text())
    assert meta["thresholds"]["tone_transformation"] == {"min_sc": median_sc, "min_pq": 1.0, "min_o": 0.5}


def test_reshard_copies_kept_samples_byte_for_byte(run_dir: Path) -> None:
    originals = _samples(run_dir)
    _filter(str(run_dir), "--min-pq", "5", "--reshard", "--shard-size", "5", "--view", "hq")
    kept = _view_ids(run_dir, "hq")
    view_shards = run_dir / "views" / "hq" / "shards"
    tars = sorted(view_shards.glob("shard-*.tar"))
    assert len(tars) == -(-len(kept) // 5) and len(kept) > 0
    seen = []
    for tar in tars:
        manifest = pq.read_table(tar.with_suffix(".parquet")).to_pylist()
        samples = list(wds.WebDataset(str(tar), shardshuffle=False, empty_check=False))
        assert [s["__key__"] for s in samples] == [r["id"] for r in manifest]
        for s, row in zip(samples, manifest, strict=True):
            original = originals[s["__key__"]]
            for member in ("src.jpg", "tgt.jpg", "mask.png"):
                assert s.get(member) == original.get(member)
            record = json.loads(s["json"])
            assert record["judge"]["pq"] == row["pq"] >= 5
            assert row["shard"] == tar.name
            seen.append(row["id"])
    assert seen == kept


def test_openai_judge_on_real_run(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-filter-test-0123456789abcdef"
    monkeypatch.setenv("STEP1X_TEST_JUDGE_KEY", secret)
    rows = _rows(run_dir)
    # The scripted judge scores by the instruction it is shown, so the outcome per sample is known in advance.
    garbage_instruction = rows[0]["instruction_en"]

    def script(body: dict) -> Reply:
        text = request_text(body)
        if len(request_images(body)) == 1:
            return Reply(text='{"score": [8, 7], "reasoning": "natural"}')
        if garbage_instruction in text:
            return Reply(text="I think it is fine.")
        if "rain" in text.lower():
            return Reply(text='Result: {"score": [3, 9], "reasoning": "rain barely visible"}')
        return Reply(text='{"score": [9, 8], "reasoning": "done"}')

    cache = tmp_path / "cache"
    with ScriptedServer(script) as server:
        args = [
            str(run_dir),
            "--judge",
            "openai",
            "--judge-url",
            server.url,
            "--judge-model",
            "scripted-vl",
            "--api-key-env",
            "STEP1X_TEST_JUDGE_KEY",
            "--cache-dir",
            str(cache),
            "--concurrency",
            "4",
            "--min-sc",
            "5",
            "--view",
            "mllm",
        ]
        output = _filter(*args)
        asked = len(server.requests)
        output += _filter(*args[:-4], "--min-sc", "2", "--view", "lenient")
        assert len(server.requests) == asked  # thresholds changed: the judge is not called again

    judged = _rows(run_dir)
    failed = [r for r in judged if r["instruction_en"] == garbage_instruction]
    assert failed and all(r["judge_status"] == "judge_failed" and r["sc"] is None for r in failed)
    assert all(r["judge_reason"] == "sc_unparseable" for r in failed)
    for r in judged:
        if r["judge_status"] != "ok":
            continue
        assert r["judge"] == "openai:scripted-vl:en:v1"
        assert (r["sc"], r["pq"]) == ((3.0, 7.0) if "rain" in r["instruction_en"].lower() else (8.0, 7.0))
        details = json.loads(r["judge_details"])
        assert details["raw_sc"] and details["reasoning_pq"] == "natural"
    ok = [r for r in judged if r["judge_status"] == "ok"]
    strict = {r["id"] for r in ok if r["sc"] >= 5 and not r["near_dup_of"]}
    assert set(_view_ids(run_dir, "mllm")) == strict
    assert set(_view_ids(run_dir, "lenient")) == {r["id"] for r in ok if not r["near_dup_of"]}

    usage = json.loads((run_dir / "run.json").read_text())["judge"]["usage"]
    assert usage["http_requests"] == 0 and usage["cache_hits"] > 0  # the second filter's own accounting
    sc_asked = [r for r in server.requests[:asked] if len(request_images(r["body"])) == 2]
    assert len(sc_asked) == len(ok) + 2 * len(failed)  # a failed sample is asked once more, then given up
    # PQ sees the target only; the inverse pairs of one photo share their target, and it is asked once.
    pq_asked = [
        request_images(r["body"])[0] for r in server.requests[:asked] if len(request_images(r["body"])) == 1
    ]
    targets = _samples(run_dir)
    assert len(pq_asked) == len(set(pq_asked)) == len({targets[r["id"]]["tgt.jpg"] for r in ok})
    assert secret not in output
    for path in [
        run_dir / "run.json",
        *_manifests(run_dir),
        *cache.rglob("*.json"),
        *(run_dir / "views").rglob("*.json"),
    ]:
        assert secret not in path.read_text(encoding="utf-8", errors="replace")


def test_judge_agreement_between_runs_and_with_human_labels(run_dir: Path, tmp_path: Path) -> None:
    _filter(str(run_dir))
    rows = _rows(run_dir)
    # "Human" labels that rank the samples exactly as the judge does, on another scale: rho is 1 whatever
    # the values; the kappa at threshold 6 depends on how many labels cross it on each side.
    labels = tmp_path / "human.csv"
    labels.write_text("id,sc,o\n" + "".join(f"{r['id']},{r['sc'] / 2 + 1},{r['o'] / 2 + 5}\n" for r in rows))
    result = CliRunner().invoke(main, ["judge-agreement", str(run_dir), str(labels), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n_common"] == len(rows)
    assert set(report["scores"]) == {"sc", "o"}  # pq is not labelled in the CSV
    o_stats = report["scores"]["o"]
    assert len({r["o"] for r in rows}) > 1  # else rho is undefined and this test would prove nothing
    assert o_stats["spearman"] == pytest.approx(1.0)
    judge_keep = np.array([r["o"] >= 6 for r in rows])
    human_keep = np.array([r["o"] / 2 + 5 >= 6 for r in rows])
    assert o_stats["keep_agreement"] == np.mean(judge_keep == human_keep)

    result = CliRunner().invoke(main, ["judge-agreement", str(run_dir), str(run_dir), "--json"])
    same = json.loads(result.output)["scores"]
    assert all(s["keep_agreement"] == 1.0 for s in same.values())


def test_judge_agreement_between_two_judges_of_one_run(run_dir: Path, tmp_path: Path) -> None:
    _filter(str(run_dir), "--view", "heuristic")
    heuristic = {r["id"]: r for r in _rows(run_dir)}

    def script(body: dict) -> Reply:
        # A scripted MLLM whose SC follows the instruction's length: varied, and known per sample.
        if len(request_images(body)) == 1:
            return Reply(text='{"score": [8, 8]}')
        instruction = request_text(body).rsplit("Editing instruction: ", 1)[1].strip()
        return Reply(text=f'{{"score": [{len(instruction) % 11}, 10]}}')

    with ScriptedServer(script) as server:
        _filter(str(run_dir), "--judge", "openai", "--judge-url", server.url, "--view", "mllm")
    mllm = {r["id"]: r for r in _rows(run_dir)}  # the manifests now hold the MLLM's scores
    result = CliRunner().invoke(
        main,
        ["judge-agreement", str(run_dir / "views" / "heuristic"), str(run_dir / "views" / "mllm"), "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n_common"] == len(heuristic) == len(mllm)
    sc = report["scores"]["sc"]
    assert sc["mean_a"] == pytest.approx(np.mean([r["sc"] for r in heuristic.values()]))
    assert sc["mean_b"] == pytest.approx(np.mean([len(r["instruction_en"]) % 11 for r in mllm.values()]))
    keep_a = np.array([heuristic[i]["sc"] >= 6 for i in sorted(heuristic)])
    keep_b = np.array([mllm[i]["sc"] >= 6 for i in sorted(heuristic)])
    assert sc["keep_agreement"] == pytest.approx(np.mean(keep_a == keep_b))


def test_console_script_on_local_edits(produced_removal_run: Path, tmp_path: Path) -> None:
    """The installed `step1x-data filter` end to end on masked samples, with reshard; the agreement table."""
    run_dir = Path(shutil.copytree(produced_removal_run, tmp_path / "run"))
    originals = _samples(run_dir)
    assert originals and all("mask.png" in s for s in originals.values())
    done = subprocess.run(
        [str(CLI), "filter", str(run_dir), "--reshard", "--view", "local"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = _rows(run_dir)
    for r in rows:
        details = json.loads(r["judge_details"])
        # Judged as a removal from the instruction alone, its region found in the pixels, not the mask.
        assert details["intent"] == "remove" and {"psnr_outside", "localised", "target_novel"} <= set(details)
    kept = _view_ids(run_dir, "local")
    resharded = _samples_in(run_dir / "views" / "local" / "shards")
    assert list(resharded) == kept
    assert all(resharded[k]["mask.png"] == originals[k]["mask.png"] for k in kept)

    table = CliRunner().invoke(main, ["judge-agreement", str(run_dir), str(run_dir)])
    assert table.exit_code == 0, table.output
    assert "spearman" in table.output and f"({len(rows)} common samples)" in table.output


def test_openai_judge_defaults_model_and_cache(run_dir: Path) -> None:
    with ScriptedServer(lambda body: Reply(text='{"score": [7, 7]}'), models=("served-vl",)) as server:
        _filter(str(run_dir), "--judge", "openai", "--judge-url", server.url)
    assert {r["judge"] for r in _rows(run_dir)} == {"openai:served-vl:en:v1"}
    assert len(list((run_dir / "cache" / "judge").rglob("*.json"))) == len(server.requests)
    with ScriptedServer(lambda body: Reply(text="{}"), models=("a", "b")) as server:
        result = CliRunner().invoke(
            main, ["filter", str(run_dir), "--judge", "openai", "--judge-url", server.url]
        )
    assert result.exit_code == 2 and "serves 2 models (a, b)" in result.output


def test_unreadable_samples_are_judge_failed_not_fatal(run_dir: Path) -> None:
    tar = sorted((run_dir / "shards").glob("*.tar"))[0]
    samples = list(wds.WebDataset(str(tar), shardshuffle=False, empty_check=False))
    broken, resized = samples[0]["__key__"], samples[1]["__key__"]
    samples[0]["tgt.jpg"] = b"not an image"
    small = io.BytesIO()
    Image.open(io.BytesIO(samples[1]["tgt.jpg"])).resize((64, 48)).save(small, format="JPEG")
    samples[1]["tgt.jpg"] = small.getvalue()
    with wds.TarWriter(str(tar)) as sink:  # this test's own copy of the run
        for s in samples:
            sink.write({k: v for k, v in s.items() if not k.startswith("__") or k == "__key__"})
    _filter(str(run_dir), "--view", "v")
    rows = {r["id"]: r for r in _rows(run_dir)}
    for key in (broken, resized):
        assert (
            rows[key]["judge_status"] == "judge_failed" and rows[key]["judge_reason"] == "unreadable_sample"
        )
        assert rows[key]["sc"] is None
    assert "differ in size" in json.loads(rows[resized]["judge_details"])["error"]
    others = [r for k, r in rows.items() if k not in (broken, resized)]
    assert others and all(r["judge_status"] == "ok" for r in others)
    rejected = {
        r["id"]: r["reason"] for r in pq.read_table(run_dir / "views" / "v" / "rejected.parquet").to_pylist()
    }
    assert rejected[broken] == rejected[resized] == "judge_failed"


def test_trainer_reads_the_view_and_its_shards(run_dir: Path) -> None:
    """The contract with model/: a view's ids select samples of the run's shards, and resharded tars load."""
    from model.data import DataFilter, expand_shards, read_manifests  # torch: imported only here

    _filter(str(run_dir), "--min-pq", "5", "--reshard", "--view", "train")
    kept = set(_view_ids(run_dir, "train"))
    assert kept
    selected = read_manifests(
        expand_shards([str(run_dir / "shards" / "*.tar")]), DataFilter(view_ids=run_dir / "views" / "train")
    )
    assert {i for refs in selected.values() for i in refs} == kept
    resharded = read_manifests(
        expand_shards([str(run_dir / "views" / "train" / "shards" / "*.tar")]), DataFilter()
    )
    assert {i for refs in resharded.values() for i in refs} == kept


def test_remote_run_folder_through_fsspec(produced_run: Path, tmp_path: Path) -> None:
    """A run on an fsspec store (here the in-process memory:// one, as s3:// or gs:// on a cluster)."""
    fs = fsspec.filesystem("memory")
    url = f"memory://runs/{tmp_path.name}"
    fs.put(f"{produced_run}/", url, recursive=True)
    _filter(url, "--min-pq", "5", "--reshard", "--view", "remote", "--cache-dir", str(tmp_path / "c"))
    folder = RunFolder(url)
    rows = [r for m in manifest_paths(folder) for r in read_table(folder, m).to_pylist()]
    assert rows and all(r["judge"] == HeuristicJudge.name for r in rows)
    kept = read_view_ids(folder, "remote")
    assert kept and kept == [r["id"] for r in rows if r["pq"] >= 5 and not r["near_dup_of"]]
    assert json.loads(fs.cat_file(f"{url}/run.json"))["judge"]["view"] == "remote"
    resharded = fs.glob(f"{url}/views/remote/shards/shard-*.tar")
    assert len(resharded) == 1 and fs.exists(f"{url}/views/remote/shards/shard-000000.parquet")
    assert [k for k in _samples_in_memory(fs, resharded[0])] == kept
    # A second filter replaces the view whole.
    _filter(url, "--min-pq", "11", "--view", "remote")
    assert read_view_ids(folder, "remote") == [] and not fs.exists(f"{url}/views/remote/shards")
    report = CliRunner().invoke(main, ["judge-agreement", f"{url}/views/remote", url, "--json"])
    assert report.exit_code == 0, report.output
    assert json.loads(report.output)["n_common"] == len(rows)


def _samples_in_memory(fs: fsspec.AbstractFileSystem, tar: str) -> list[str]:
    """Sample keys in tar order, read with the standard library rather than the code under test."""
    with fs.open(tar, "rb") as stream, tarfile.open(fileobj=stream) as archive:
        return list(dict.fromkeys(name.split(".", 1)[0] for name in archive.getnames()))
