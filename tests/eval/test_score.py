"""`step1x-eval score / report / compare` on the tiny model's edits, with a scripted judge per protocol."""

from __future__ import annotations

import base64
import io
import json
import math
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from gedit_inputs import eval_cli
from PIL import Image

from annotators.judge.heuristic import HeuristicJudge
from annotators.mllm.protocols import editscore_prompts, gedit_prompts
from annotators.mllm.scripted_server import Reply, ScriptedServer, request_images, request_text
from model.eval.cli import main

# The scripted VIEScore judge: SC by the instruction it is shown, PQ by the size of the image (which names
# the photo: every edit keeps its input's size); the scores of every row are known in advance.
SC_ANSWERS = {
    "Change the background to a beach.": "[8, 6]",
    "把背景换成海滩。": "[7, 7]",
    "Make the cup red.": "[4, 9]",
    "把杯子变成红色。": "[5, 5]",
    "Remove the cat.": "[9, 8]",
    "移除猫。": "[6, 9]",
    "Remove the camera.": "[2, 3]",
    "调成日落的效果。": "[10, 10]",
}  # "Make it look like sunset." gets no readable answer
PQ_BY_SIZE = {(512, 512): "[9, 8]", (627, 418): "[6, 7]", (627, 417): "[5, 9]", (626, 418): "[8, 9]"}


def _sizes(body: dict) -> list[tuple[int, int]]:
    urls = request_images(body)
    return [Image.open(io.BytesIO(base64.b64decode(u.split(",", 1)[1]))).size for u in urls]


def _instruction(body: dict) -> str:
    return request_text(body).rsplit("Editing instruction: ", 1)[1].strip()


def viescore_script(body: dict) -> Reply:
    sizes = _sizes(body)
    if len(sizes) == 1:
        return Reply(text=f'{{"score": {PQ_BY_SIZE[sizes[0]]}, "reasoning": "looks fine"}}')
    answer = SC_ANSWERS.get(_instruction(body))
    return Reply(text=f'{{"score": {answer}, "reasoning": "ok"}}' if answer else "I cannot judge this.")


def _score(out: Path, url: str, *args: str) -> str:
    return eval_cli("score", str(out), "--judge", "openai", "--judge-url", url, "--concurrency", "4", *args)


def test_gedit_protocol_tables_and_resume(eval_dir: Path) -> None:
    with ScriptedServer(viescore_script, models=("gpt-4.1-scripted",)) as server:
        output = _score(eval_dir, server.url)
        asked = len(server.requests)
        again = _score(eval_dir, server.url)
        assert len(server.requests) == asked  # every answer is cached or reused
    assert "9 judged now, 0 reused" in output and "1 judged now, 8 reused" in again  # the failed row again
    # The reference's inputs: both images at about 512x512 of area with their own aspect ratio, source first,
    # text first; Chinese instructions inside the same English prompt.
    sc_requests = [r["body"] for r in server.requests if len(request_images(r["body"])) == 2]
    for body in sc_requests:
        assert body["messages"][0]["content"][0]["type"] == "text"
        assert request_text(body) == gedit_prompts()["sc"].replace("<instruction>", _instruction(body))
        assert len(set(_sizes(body))) == 1 and _sizes(body)[0] in PQ_BY_SIZE
    assert {_instruction(b) for b in sc_requests} == {*SC_ANSWERS, "Make it look like sunset."}

    folder = eval_dir / "scores" / "gedit-gpt-4.1-scripted"
    rows = {(r["key"], r["language"]): r for r in pq.read_table(folder / "scores.parquet").to_pylist()}
    assert rows[("bg1", "en")]["judge"] == "gedit:gpt-4.1-scripted:en:v1"
    assert rows[("bg1", "cn")]["judge"] == "gedit:gpt-4.1-scripted:zh:prompt-en:v1"
    assert json.loads(rows[("bg1", "en")]["details"])["served_model"] == "gpt-4.1-scripted"
    failed = rows[("tone1", "en")]
    assert (failed["status"], failed["reason"], failed["sc"]) == ("judge_failed", "sc_unparseable", None)
    judge = json.loads((folder / "judge.json").read_text())
    assert judge["model"] == "gpt-4.1-scripted" and judge["protocol"] == "gedit"
    assert judge["prefix"] == "G" and judge["comparable_to_published"] is True

    agg = json.loads((folder / "report.json").read_text())["aggregate"]
    en, cn = agg["en"], agg["cn"]
    # By hand, from the script: EN full = background 6/8, colour 4/6, removal (8/5 and 2/8), tone failed.
    assert en["full"]["categories"]["subject-remove"]["sc"] == 5.0
    assert en["full"]["categories"]["subject-remove"]["pq"] == 6.5
    assert en["full"]["categories"]["tone_transfer"] == {
        "rows": 1, "n": 0, "failed": 1, "missing": 0, "sc": None, "pq": None, "o": None
    }  # fmt: skip
    assert en["full"]["overall"]["sc"] == pytest.approx((6 + 4 + 5) / 3)
    assert en["full"]["overall"]["pq"] == pytest.approx((8 + 6 + 6.5) / 3)
    removal_o = (math.sqrt(8 * 5) + math.sqrt(2 * 8)) / 2
    assert en["full"]["overall"]["o"] == pytest.approx((math.sqrt(48) + math.sqrt(24) + removal_o) / 3)
    assert en["intersection"]["overall"]["sc"] == pytest.approx((6 + 5) / 2)
    assert en["intersection"]["overall"]["pq"] == pytest.approx((8 + 6.5) / 2)
    assert cn["full"]["overall"]["sc"] == pytest.approx((7 + 5 + 6 + 10) / 4)
    assert cn["full"]["overall"]["pq"] == pytest.approx((8 + 6 + 5 + 8) / 4)
    assert cn["intersection"]["overall"]["sc"] == pytest.approx((7 + 6) / 2)
    assert "| eval (tiny random model) | 5.500 | 7.250 |" in output
    assert "| tone_transfer | 1 | 0 | 1 | 0 | — | — | — |" in output
    assert (folder / "report.md").read_text().count("| GEdit-Bench-") == 2


def editscore_script(body: dict) -> Reply:
    # Two passes at seeds 42 and 43: different answers per pass, on EditScore's 0-25 scale.
    first = body["seed"] == 42
    if len(request_images(body)) == 2:
        score = "[20, 15]" if first else "[25, 10]"
    else:
        score = "[20, 20]" if first else "[15, 25]"
    return Reply(text=f'{{"reasoning": "r", "score": {score}}}')


def test_editscore_protocol(eval_dir: Path) -> None:
    with ScriptedServer(editscore_script, models=("editscore-7b",)) as server:
        output = _score(
            eval_dir, server.url, "--judge-protocol", "editscore", "--judge-passes", "2", "--language", "en"
        )
    bodies = [r["body"] for r in server.requests]
    assert len(bodies) == 5 * 2 * 2  # 5 English rows, 2 passes, SC and PQ
    assert {b["seed"] for b in bodies} == {42, 43}
    assert all((b["temperature"], b["top_p"], b["top_k"]) == (0.7, 0.9, 20) for b in bodies)
    sc = next(b for b in bodies if len(request_images(b)) == 2)
    parts = sc["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "text", "image_url", "text"]
    assert (parts[0]["text"], parts[2]["text"]) == ("<img1>: ", "<img2>: ")
    assert parts[4]["text"] == editscore_prompts()["sc"].replace("<instruction>", _instruction(sc))
    # Per pass: SC = min/2.5, PQ = min/2.5, O = sqrt(SC*PQ); the sample's O is the mean of the passes' O.
    folder = eval_dir / "scores" / "editscore-editscore-7b"
    rows = pq.read_table(folder / "scores.parquet").to_pylist()
    assert len(rows) == 5 and {r["status"] for r in rows} == {"ok"}
    for r in rows:
        assert (r["sc"], r["pq"]) == (5.0, 7.0)  # (6 + 4) / 2 and (8 + 6) / 2
        assert r["o"] == pytest.approx((math.sqrt(6 * 8) + math.sqrt(4 * 6)) / 2)
        assert r["judge"] == "editscore:editscore-7b:en:x2-average_last:v1"
        assert len(json.loads(r["details"])["passes"]) == 2
    assert "| IS E_SC | IS E_PQ | IS E_O | Full E_SC |" in output
    assert "editscore judged by editscore-7b: not GEdit-Bench's judge" in output


def test_missing_outputs_and_the_offline_judge(eval_dir: Path) -> None:
    (eval_dir / "fullset" / "background_change" / "en" / "bg1.png").unlink()
    output = eval_cli("score", str(eval_dir), "--judge", "heuristic")
    assert "NOT comparable to published GEdit-Bench numbers" in output
    assert "IS H_SC" in output and "| background_change | 1 | 0 | 0 | 1 | — | — | — |" in output
    rows = pq.read_table(eval_dir / "scores" / "heuristic" / "scores.parquet").to_pylist()
    missing = [r for r in rows if r["status"] == "missing_output"]
    assert [(r["key"], r["language"]) for r in missing] == [("bg1", "en")]
    assert {r["judge"] for r in rows if r["status"] == "ok"} == {HeuristicJudge.name}
    assert all(0 <= r["sc"] <= 10 and 0 <= r["pq"] <= 10 for r in rows if r["status"] == "ok")
    report = eval_cli("report", str(eval_dir), "--prefix", "X", "--json")
    assert json.loads(report)["en"]["full"]["categories"]["background_change"]["missing"] == 1


def test_compare_two_runs(eval_dir: Path, tmp_path: Path) -> None:
    other = Path(shutil.copytree(eval_dir, tmp_path / "other"))

    def better(body: dict) -> Reply:  # the other "model" follows colour instructions better
        if len(request_images(body)) == 2 and _instruction(body) == "Make the cup red.":
            return Reply(text='{"score": [9, 9]}')
        return viescore_script(body)

    with ScriptedServer(viescore_script, models=("gpt-4.1-scripted",)) as server:
        _score(eval_dir, server.url, "--language", "en")
    with ScriptedServer(better, models=("gpt-4.1-scripted",)) as server:
        _score(other, server.url, "--language", "en")
    table = eval_cli("compare", str(eval_dir), str(other))
    assert "| color_alter | 4.000 | 9.000 | +5.000 |" in table
    assert "| background_change | 6.000 | 6.000 | +0.000 |" in table
    diff = json.loads(eval_cli("compare", str(eval_dir), str(other), "--json"))["compare"]["en"]
    assert diff["full"]["overall"]["sc_diff"] == pytest.approx(5 / 3)  # one of three scored categories
    assert "color_alter" not in diff["intersection"]  # not in the intersection subset
    result = CliRunner().invoke(main, ["compare", str(eval_dir), str(tmp_path / "nothing")])
    assert result.exit_code == 2
