"""The VIEScore judge and the client against a real local chat-completions server with scripted answers."""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotators.mllm.client import MLLMClient, MLLMConfig, prepare_image, served_model
from annotators.mllm.judge import VIEScoreJudge
from annotators.mllm.scripted_server import Reply, ScriptedServer, request_images, request_text

INSTRUCTION = {"en": "Give the photo a warm golden-hour tone.", "zh": "把照片调成温暖的黄昏色调。"}


def _is_sc(body: dict) -> bool:
    return len(request_images(body)) == 2


def _client(server: ScriptedServer, tmp_path: Path, **overrides: object) -> MLLMClient:
    cfg = {
        "base_url": server.url,
        "model": "qwen2.5-vl-test",
        "timeout_s": 5.0,
        "max_retries": 2,
        "cache_dir": str(tmp_path / "cache"),
        **overrides,
    }
    return MLLMClient(MLLMConfig(**cfg))  # type: ignore[arg-type]


def test_good_json(tmp_path: Path, source_jpeg: bytes, target_jpeg: bytes) -> None:
    def script(body: dict) -> Reply:
        if _is_sc(body):
            return Reply(text='{"score": [8, 6], "reasoning": "warmer, same scene"}', prompt_tokens=900)
        return Reply(text='{"score": [9, 7], "reasoning": "natural"}', prompt_tokens=500)

    with ScriptedServer(script) as server, _client(server, tmp_path) as client:
        result = VIEScoreJudge(client).judge(source_jpeg, target_jpeg, INSTRUCTION)
    assert result.status == "ok"
    assert (result.sc, result.pq) == (6.0, 7.0)
    assert result.o == pytest.approx(math.sqrt(42))
    assert result.details["edit_success"] == 8.0 and result.details["artifacts"] == 7.0
    assert result.details["reasoning_sc"] == "warmer, same scene"
    # SC sees source then target; PQ sees the target only, as VIEScore.
    sc_body, pq_body = (r["body"] for r in server.requests)
    assert len(request_images(sc_body)) == 2 and len(request_images(pq_body)) == 1
    assert INSTRUCTION["en"] in request_text(sc_body)
    usage = client.usage.to_record()
    assert usage["http_requests"] == 2 and usage["tokens_in"] == 1400 and usage["tokens_out"] == 40
    assert usage["retries"] == 0 and usage["failures"] == {}


def test_json_wrapped_in_prose(tmp_path: Path, source_jpeg: bytes, target_jpeg: bytes) -> None:
    text = 'Here is my evaluation:\n```json\n{"score": [7, 9], "reasoning": "ok"}\n```\nLet me know.'
    with ScriptedServer(lambda body: Reply(text=text)) as server, _client(server, tmp_path) as client:
        result = VIEScoreJudge(client).judge(source_jpeg, target_jpeg, INSTRUCTION)
    assert result.status == "ok" and (result.sc, result.pq) == (7.0, 7.0)
    assert len(server.requests) == 2


def test_garbage_is_asked_once_more_then_judge_failed(
    tmp_path: Path, source_jpeg: bytes, target_jpeg: bytes
) -> None:
    with ScriptedServer(lambda body: Reply(text="The edit looks great, 10/10!")) as server:
        with _client(server, tmp_path) as client:
            result = VIEScoreJudge(client).judge(source_jpeg, target_jpeg, INSTRUCTION)
        assert result.status == "judge_failed" and result.reason == "sc_unparseable"
        assert result.sc is None and result.pq is None and result.o is None  # never a guessed score
        assert result.details["raw_sc"] == ["The edit looks great, 10/10!"] * 2
        assert len(server.requests) == 2  # the question and one more; PQ not asked for a failed sample
        assert client.usage.to_record()["failures"] == {"unparseable": 1}
        # The failure is stable: a re-run answers from the cache and asks nothing.
        with _client(server, tmp_path) as again:
            repeat = VIEScoreJudge(again).judge(source_jpeg, target_jpeg, INSTRUCTION)
        assert repeat.reason == "sc_unparseable"
        assert len(server.requests) == 2


def test_second_answer_rescues_a_bad_first(tmp_path: Path, source_jpeg: bytes, target_jpeg: bytes) -> None:
    answers = iter(['{"score": [11, 3]}', '{"score": [5, 6], "reasoning": "r"}', '{"score": [8, 8]}'])
    with ScriptedServer(lambda body: Reply(text=next(answers))) as server:
        client = _client(server, tmp_path)
        result = VIEScoreJudge(client).judge(source_jpeg, target_jpeg, INSTRUCTION)
    # 11 is outside 0-10: unreadable, not clipped; the second answer is used.
    assert result.status == "ok" and (result.sc, result.pq) == (5.0, 8.0)
    assert len(result.details["raw_sc"]) == 2


def test_429_then_success(tmp_path: Path, source_jpeg: bytes, target_jpeg: bytes) -> None:
    seen = {"n": 0}

    def script(body: dict) -> Reply:
        seen["n"] += 1
        if seen["n"] == 1:
            return Reply(status=429, headers={"Retry-After": "0.1"})
        return Reply(text='{"score": [6, 6]}')

    with ScriptedServer(script) as server, _client(server, tmp_path) as client:
        result = VIEScoreJudge(client).judge(source_jpeg, target_jpeg, INSTRUCTION)
    assert result.status == "ok" and result.sc == 6.0
    usage = client.usage.to_record()
    assert usage["http_status"] == {"429": 1, "200": 2}
    assert usage["retries"] == 1 and usage["http_requests"] == 3


def test_hang_past_timeout(tmp_path: Path, source_jpeg: bytes, target_jpeg: bytes) -> None:
    hang = {"on": True}

    def script(body: dict) -> Reply:
        return Reply(hang_s=30.0) if hang["on"] else Reply(text='{"score": [7, 7]}')

    with ScriptedServer(script) as server:
        with _client(server, tmp_path, timeout_s=0.3, max_retries=1) as client:
            start = time.perf_counter()
            result = VIEScoreJudge(client).judge(source_jpeg, target_jpeg, INSTRUCTION)
            elapsed = time.perf_counter() - start
        assert result.status == "judge_failed" and result.reason == "sc_timeout"
        assert elapsed < 5.0  # two attempts of 0.3 s plus backoff, not the 30 s hang
        assert len(server.requests) == 2
        assert client.usage.to_record()["failures"] == {"timeout": 1}
        # A transport failure is not cached: once the server recovers, the sample is judged.
        hang["on"] = False
        with _client(server, tmp_path) as again:
            assert VIEScoreJudge(again).judge(source_jpeg, target_jpeg, INSTRUCTION).status == "ok"


def test_500_exhausts_retries(tmp_path: Path, source_jpeg: bytes, target_jpeg: bytes) -> None:
    with ScriptedServer(lambda body: Reply(status=500)) as server:
        client = _client(server, tmp_path, max_retries=2)
        result = VIEScoreJudge(client).judge(source_jpeg, target_jpeg, INSTRUCTION)
    assert result.status == "judge_failed" and result.reason == "sc_http_500"
    assert len(server.requests) == 3  # first try + max_retries
    assert client.usage.to_record()["http_status"] == {"500": 3}


def test_cache_key_is_model_prompt_and_images(tmp_path: Path, source_jpeg: bytes, target_jpeg: bytes) -> None:
    with ScriptedServer(lambda body: Reply(text='{"score": [7, 8]}')) as server:
        with _client(server, tmp_path) as client:
            first = VIEScoreJudge(client).judge(source_jpeg, target_jpeg, INSTRUCTION)
            again = VIEScoreJudge(client).judge(source_jpeg, target_jpeg, INSTRUCTION)
            assert len(server.requests) == 2 and first.sc == again.sc
            assert client.usage.to_record()["cache_hits"] == 2
            VIEScoreJudge(client).judge(source_jpeg, source_jpeg, INSTRUCTION)  # other target image
            assert len(server.requests) == 4
            VIEScoreJudge(client).judge(source_jpeg, target_jpeg, {"en": "Make it warm."})  # other prompt
            assert len(server.requests) == 5  # the PQ prompt has no instruction: still cached
        with _client(server, tmp_path, model="another-model") as other:
            VIEScoreJudge(other).judge(source_jpeg, target_jpeg, INSTRUCTION)
        assert len(server.requests) == 7


def test_chinese_instruction_is_judged_with_chinese_prompt(
    tmp_path: Path, source_jpeg: bytes, target_jpeg: bytes
) -> None:
    with ScriptedServer(lambda body: Reply(text='{"score": [9, 9]}')) as server:
        client = _client(server, tmp_path)
        result = VIEScoreJudge(client, language="zh").judge(source_jpeg, target_jpeg, INSTRUCTION)
    assert result.status == "ok"
    sc_text = request_text(server.requests[0]["body"])
    assert INSTRUCTION["zh"] in sc_text and "编辑指令" in sc_text and INSTRUCTION["en"] not in sc_text


def test_api_key_is_sent_but_never_written_or_logged(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    source_jpeg: bytes,
    target_jpeg: bytes,
) -> None:
    secret = "sk-test-9f8e7d6c5b4a-do-not-leak"
    monkeypatch.setenv("STEP1X_JUDGE_KEY", secret)
    caplog.set_level(logging.DEBUG)  # openai and httpx log requests at DEBUG
    with ScriptedServer(lambda body: Reply(text="no json here")) as server:
        client = _client(server, tmp_path, api_key_env="STEP1X_JUDGE_KEY")
        VIEScoreJudge(client).judge(source_jpeg, target_jpeg, INSTRUCTION)
        records = json.dumps([client.config.to_record(), client.usage.to_record()])
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {secret}"
    assert caplog.records  # the DEBUG logs were on and did capture the requests
    assert secret not in caplog.text
    out, err = capfd.readouterr()
    assert secret not in out + err
    assert secret not in records
    cached = list((tmp_path / "cache").rglob("*.json"))
    assert cached and all(secret not in p.read_text(encoding="utf-8") for p in cached)


def test_images_are_bounded_jpeg(tmp_path: Path, photo: np.ndarray) -> None:
    big_png = io.BytesIO()
    Image.fromarray(photo).resize((2000, 1320)).save(big_png, format="PNG")
    prepared = prepare_image(photo)
    with ScriptedServer(lambda body: Reply(text='{"score": [5, 5]}')) as server:
        # A caller that sends a full-size PNG still sends a bounded JPEG; a prepared one goes as it is.
        # Plain bytes of a small JPEG go as they are too (only their header is read).
        _client(server, tmp_path).chat("describe", [big_png.getvalue(), prepared, bytes(prepared)])
    big_url, prepared_url, plain_url = request_images(server.requests[0]["body"])
    assert big_url.startswith("data:image/jpeg;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(big_url.split(",", 1)[1])))
    assert sent.format == "JPEG"
    assert sent.width * sent.height <= 512 * 512
    assert sent.width / sent.height == pytest.approx(2000 / 1320, rel=0.01)
    assert base64.b64decode(prepared_url.split(",", 1)[1]) == prepared
    assert base64.b64decode(plain_url.split(",", 1)[1]) == prepared


def test_concurrency_limit(tmp_path: Path) -> None:
    with ScriptedServer(lambda body: Reply(text="{}", delay_s=0.15)) as server:
        client = _client(server, tmp_path, concurrency=3, cache_dir=None)
        threads = [threading.Thread(target=client.chat, args=(f"prompt {i}", [])) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(server.requests) == 12
    assert 2 <= server.max_in_flight <= 3  # parallel, but never above the limit


def test_served_model_is_the_only_one_listed() -> None:
    with ScriptedServer(lambda body: Reply(text="{}"), models=("qwen2.5-vl-72b",)) as server:
        assert served_model(server.url) == "qwen2.5-vl-72b"
    with (
        ScriptedServer(lambda body: Reply(text="{}"), models=("a", "b")) as server,
        pytest.raises(ValueError, match=r"serves 2 models \(a, b\): name one"),
    ):
        served_model(server.url)


def test_identical_questions_in_flight_are_asked_once(tmp_path: Path, target_jpeg: bytes) -> None:
    # The answer takes 1 s: ample time for all six threads to join the one question in flight.
    with ScriptedServer(lambda body: Reply(text='{"score": [6, 7]}', delay_s=1.0)) as server:
        client = _client(server, tmp_path, concurrency=8, cache_dir=None)
        answers = []
        threads = [
            threading.Thread(target=lambda: answers.append(client.chat("same question", [target_jpeg])))
            for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(server.requests) == 1
    assert [a.text for a in answers] == ['{"score": [6, 7]}'] * 6
    assert sorted(a.cached for a in answers) == [False] + [True] * 5
    assert client.usage.to_record()["cache_hits"] == 5
