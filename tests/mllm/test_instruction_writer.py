"""The instruction writer against the scripted local server."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from annotators.mllm.client import MLLMClient, MLLMConfig
from annotators.mllm.parse import extract_json_object, parse_score_pair
from annotators.mllm.scripted_server import Reply, ScriptedServer, request_images, request_text
from annotators.mllm.writer import NoInstruction, agreement_scores, describe_context, write_instructions

EN = ["Make it look like sunset.", "Make the photo look like sunset.", "Add a purple sky."]
ZH = ["把照片调成日落时分的暖色调。", "调成日落时分的暖色调。", "Make it look like sunset."]


def _is_zh(body: dict) -> bool:
    return "中文" in request_text(body)


def _script(en: list[str], zh: list[str]) -> Callable[[dict], Reply]:
    en_answers, zh_answers = itertools.cycle(en), itertools.cycle(zh)

    def script(body: dict) -> Reply:
        text = next(zh_answers) if _is_zh(body) else next(en_answers)
        return Reply(text=f'{{"instruction": "{text}"}}')

    return script


def _client(server: ScriptedServer, tmp_path: Path) -> MLLMClient:
    return MLLMClient(MLLMConfig(base_url=server.url, model="writer-test", cache_dir=str(tmp_path / "c")))


def test_writes_both_languages_natively_and_picks_by_agreement(
    tmp_path: Path, source_jpeg: bytes, target_jpeg: bytes
) -> None:
    context = {"params": {"operation": "golden_hour"}, "variant": "golden_hour:0.8", "bbox": None}
    with ScriptedServer(_script(EN, ZH)) as server:
        out = write_instructions(
            _client(server, tmp_path), source_jpeg, target_jpeg, "tone_transformation", context
        )
    # The six questions go out at once, so which candidate gets which scripted answer is not fixed; the
    # outcome is: the outlier ("Add a purple sky.") loses the vote to the two that agree.
    assert out["en"] in EN[:2]
    # The English answer in the Chinese slot is rejected, not used.
    assert out["zh"] in ZH[:2]
    en_cands = [c for c in out["candidates"] if c["language"] == "en"]
    zh_cands = [c for c in out["candidates"] if c["language"] == "zh"]
    assert sorted(c["text"] for c in en_cands) == sorted(EN) and all(c["valid"] for c in en_cands)
    assert {c["text"]: c["valid"] for c in zh_cands} == {ZH[0]: True, ZH[1]: True, ZH[2]: False}
    agreement = {c["text"]: c["agreement"] for c in en_cands}
    assert agreement[EN[0]] == agreement[EN[1]] > agreement[EN[2]] == 0.0
    assert len(server.requests) == 6
    # Each language was asked in its own language, with both images and sampling on.
    en_body = next(r["body"] for r in server.requests if not _is_zh(r["body"]))
    zh_body = next(r["body"] for r in server.requests if _is_zh(r["body"]))
    assert "natural English" in request_text(en_body) and "natural English" not in request_text(zh_body)
    assert "golden_hour" in request_text(zh_body)
    assert len(request_images(zh_body)) == 2 and zh_body["temperature"] == 0.7


def test_candidates_are_asked_concurrently(tmp_path: Path, source_jpeg: bytes, target_jpeg: bytes) -> None:
    delay = 0.4
    script = _script(EN, ZH)
    with ScriptedServer(lambda body: replace(script(body), delay_s=delay)) as server:
        start = time.perf_counter()
        write_instructions(_client(server, tmp_path), source_jpeg, target_jpeg, "tone_transformation", {})
        elapsed = time.perf_counter() - start
    assert server.max_in_flight > 1
    assert elapsed < 6 * delay  # one after the other would take at least 6 x the server's latency


def test_candidates_are_cached_per_index(tmp_path: Path, source_jpeg: bytes, target_jpeg: bytes) -> None:
    with ScriptedServer(_script(EN, ZH)) as server:
        client = _client(server, tmp_path)
        first = write_instructions(client, source_jpeg, target_jpeg, "tone_transformation", {})
        second = write_instructions(client, source_jpeg, target_jpeg, "tone_transformation", {})
    assert len(server.requests) == 6  # three distinct candidates per language, then all from the cache
    assert first == second


def test_no_valid_candidate_raises(tmp_path: Path, source_jpeg: bytes, target_jpeg: bytes) -> None:
    with (
        ScriptedServer(_script(EN, ["Make it warm.", "I cannot help with that."])) as server,
        pytest.raises(NoInstruction, match="zh"),
    ):
        write_instructions(_client(server, tmp_path), source_jpeg, target_jpeg, "tone_transformation", {})


def test_context_describes_the_edit_region() -> None:
    context = {"labels": ["cat"], "bbox": [0, 0, 100, 50], "size": [400, 400]}
    text = describe_context("subject_removal", context)
    facts = extract_json_object(text)
    assert facts is not None
    assert facts["labels"] == ["cat"]
    assert facts["edit_region"] == {"position": "top left", "area_fraction": 0.031}
    mask = np.zeros((300, 400), bool)
    mask[200:280, 300:380] = True  # bottom right
    facts = extract_json_object(describe_context("subject_removal", {"mask": mask}))
    assert facts is not None
    assert facts["edit_region"] == {"position": "bottom right", "area_fraction": round(80 * 80 / 120000, 3)}


def test_agreement_scores() -> None:
    en = agreement_scores(EN, "en")
    assert en[0] == en[1] > en[2] == 0.0
    zh = agreement_scores(ZH[:2], "zh")
    assert zh[0] == zh[1] > 0.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"score": [3, 4.5], "reasoning": "x"}', ([3.0, 4.5], "x")),
        ('prefix {"a": {"b": 1}} then {"score": ["7", 8]} suffix', None),  # first object has no score
        ('{"score": [true, 8]}', None),
        ('{"score": [7]}', None),
        ('{"score": [7, -1]}', None),
        ('```json\n{"score": [10, 0]}\n```', ([10.0, 0.0], "")),
    ],
)
def test_parse_score_pair(text: str, expected: tuple[list[float], str] | None) -> None:
    assert parse_score_pair(text) == expected
