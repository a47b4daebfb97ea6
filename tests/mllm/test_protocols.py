"""Judge protocols through the real client and a scripted server: prompts, scales, passes, cache keys."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

from annotators.mllm.cache import cache_key
from annotators.mllm.client import MLLMClient, MLLMConfig, Sampling
from annotators.mllm.judge import ChatJudge
from annotators.mllm.parse import parse_score_pair
from annotators.mllm.protocols import VIESCORE, chat_protocol, editscore, editscore_prompts, gedit_prompts
from annotators.mllm.scripted_server import Reply, ScriptedServer, request_images

INSTRUCTION = {"en": "Give the photo a warm golden-hour tone.", "zh": "把照片调成温暖的黄昏色调。"}


def _client(server: ScriptedServer, tmp_path: Path) -> MLLMClient:
    return MLLMClient(MLLMConfig(base_url=server.url, model="m", timeout_s=5, cache_dir=str(tmp_path / "c")))


def test_gedit_and_editscore_prompts_share_viescore_rules() -> None:
    gedit = gedit_prompts()
    # GEdit-Bench's judge: score first, 0-10, the rules joined to the context by a newline.
    assert gedit["sc"].startswith("You are a professional digital artist.")
    assert '{\n"score" : [...],\n"reasoning" : "..."\n}\nRULES:' in gedit["sc"]
    assert gedit["sc"].count("0 to 10") == 3 and gedit["sc"].endswith("Editing instruction: <instruction>\n")
    assert gedit["pq"].endswith("Put the score in a list such that output score = [naturalness, artifacts]\n")
    prompts = editscore_prompts()
    assert prompts["sc"].split("RULES:", 1)[1] == gedit["sc"].split("RULES:", 1)[1].replace("10", "25")
    sc, pq = prompts["sc"], prompts["pq"]
    assert sc.startswith("You are a professional digital artist.") and pq.startswith("You are a professional")
    # Reasoning first, then the scores: the answer format the LoRA was trained to give.
    assert '{\n"reasoning" : "...",\n"score" : [...]\n}' in sc
    assert sc.count("0 to 25") == 3 and "10" not in sc and sc.endswith("Editing instruction: <instruction>\n")
    assert "output score = [naturalness, artifacts]" in pq and "0 to 25" in pq and "10" not in pq
    assert editscore_prompts(10)["sc"].count("0 to 10") == 3
    with pytest.raises(ValueError, match="greedy"):
        chat_protocol("viescore", passes=4)
    with pytest.raises(ValueError, match="unknown judge protocol 'gpt'"):
        chat_protocol("gpt")


@pytest.mark.parametrize(
    ("text", "max_score", "expected"),
    [
        ('{"reasoning": "r", "score": [25, 12.5]}', 25, ([25.0, 12.5], "r")),
        ('{"reasoning": "r", "score": [26, 12]}', 25, None),
        ('{"score": [12, 3]}', 10, None),
        (" [6, 8.5]\n", 10, ([6.0, 8.5], "")),  # only the scores: nothing to guess
        ("[6, 8] and more", 10, None),
    ],
)
def test_scores_are_checked_against_the_scale_asked_for(text: str, max_score: int, expected: object) -> None:
    assert parse_score_pair(text, max_score=max_score) == expected


@pytest.mark.parametrize("reduction", ["average_last", "average_first"])
def test_editscore_passes_and_reductions(
    tmp_path: Path, source_jpeg: bytes, target_jpeg: bytes, reduction: str
) -> None:
    def script(body: dict) -> Reply:
        sc = len(request_images(body)) == 2
        answers = {42: ("[25, 20]", "[10, 25]"), 43: ("[5, 15]", "[20, 20]"), 44: ("[20, 20]", "[25, 25]")}
        score = answers[body["seed"]][0 if sc else 1]
        return Reply(text=f'{{"reasoning": "x", "score": {score}}}')

    protocol = editscore(passes=3, reduction=reduction)  # type: ignore[arg-type]
    with ScriptedServer(script) as server, _client(server, tmp_path) as client:
        result = ChatJudge(client, protocol, language="zh").judge(source_jpeg, target_jpeg, INSTRUCTION)
    # Per pass (0-25 -> 0-10): SC = 8, 2, 8; PQ = 4, 8, 10.
    sc, pq = [8.0, 2.0, 8.0], [4.0, 8.0, 10.0]
    assert result.sc == pytest.approx(6.0) and result.pq == pytest.approx(22 / 3)
    if reduction == "average_last":
        assert result.o == pytest.approx(sum(math.sqrt(s * q) for s, q in zip(sc, pq, strict=True)) / 3)
    else:
        assert result.o == pytest.approx(math.sqrt(6.0 * 22 / 3))
    assert result.details["edit_success"] == pytest.approx((10 + 2 + 8) / 3)
    assert len(result.details["passes"]) == 3 and len(server.requests) == 6
    # Chinese instruction, English prompt: EditScore has one prompt.
    assert all("You are a professional digital artist" in json.dumps(r["body"]) for r in server.requests)
    assert INSTRUCTION["zh"] in json.dumps(server.requests[0]["body"], ensure_ascii=False)


def test_unreadable_answer_is_asked_again_with_another_seed(
    tmp_path: Path, source_jpeg: bytes, target_jpeg: bytes
) -> None:
    def script(body: dict) -> Reply:
        if body["seed"] == 42:
            return Reply(text="Score: twenty")
        return Reply(text='{"reasoning": "x", "score": [20, 20]}')

    with ScriptedServer(script) as server, _client(server, tmp_path) as client:
        result = ChatJudge(client, editscore()).judge(source_jpeg, target_jpeg, INSTRUCTION)
    assert result.status == "ok" and result.sc == 8.0
    # A seeded server would repeat the unreadable answer; the retry changes the seed.
    assert [r["body"]["seed"] for r in server.requests][:2] == [42, 1042]


def test_cache_keys(tmp_path: Path, source_jpeg: bytes) -> None:
    with ScriptedServer(lambda body: Reply(text="ok")) as server, _client(server, tmp_path) as client:
        client.chat("describe", [source_jpeg], extra={"attempt": 0})
        # The plain layout keeps the key it had before protocols existed: existing caches stay valid.
        old = cache_key("m", "describe", [hashlib.sha256(source_jpeg).hexdigest()], {"attempt": 0, "t": 0.0})
        assert client.cache is not None and client.cache.get(old) is not None
        assert client.ask(["describe", source_jpeg], {"attempt": 0}).cached
        # Another order, another seed: other questions, asked over HTTP.
        assert not client.ask([source_jpeg, "describe"], {"attempt": 0}).cached
        assert not client.ask(["describe", source_jpeg], {"attempt": 0}, Sampling(seed=1)).cached
        assert len(server.requests) == 3
    assert server.requests[2]["body"]["seed"] == 1 and "top_k" not in server.requests[2]["body"]


def test_judge_names(tmp_path: Path) -> None:
    with ScriptedServer(lambda body: Reply(text="{}")) as server, _client(server, tmp_path) as client:
        assert ChatJudge(client, VIESCORE).name == "openai:m:en:v1"  # the name manifests were scored under
        assert ChatJudge(client, chat_protocol("gedit"), "zh", "en").name == "gedit:m:zh:prompt-en:v1"
        assert ChatJudge(client, VIESCORE, "zh", "en").name == "openai:m:zh:prompt-en:v1"
        assert ChatJudge(client, editscore(4)).name == "editscore:m:en:x4-average_last:v1"
        with pytest.raises(ValueError, match="editscore has no zh prompt"):
            ChatJudge(client, editscore(), "zh", "zh")
