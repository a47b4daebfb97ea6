"""`run --instruction-writer openai`: an MLLM (a real local HTTP server with scripted answers) writes the
instructions; answers it cannot use leave the task's templates in place, with the reason recorded."""

from __future__ import annotations

import json
import re
from pathlib import Path

from engine_inputs import PHOTOS, manifest_rows

from annotators.mllm.scripted_server import Reply, ScriptedServer, request_text
from pipelines.config import RunConfig
from pipelines.runner import run


def language_aware(body: dict) -> Reply:
    """Answers in the language the prompt is written in, naming the edit the prompt's facts describe."""
    prompt = request_text(body)
    operation = re.search(r'"operation": "(\w+)"', prompt)
    name = operation.group(1) if operation else "edit"
    if re.search(r"[\u4e00-\u9fff]{10}", prompt):
        return Reply(text=json.dumps({"instruction": "把这张照片的色调调整一下。"}, ensure_ascii=False))
    return Reply(text=f'Sure! {{"instruction": "Apply a {name} adjustment to the photo."}}')


def config(out: Path, url: str, **extra: object) -> RunConfig:
    return RunConfig(
        task="tone_transformation",
        source=str(PHOTOS / "rocket.jpg"),
        out=str(out),
        instruction_writer="openai",
        writer_url=url,
        writer_model="scripted-vl",
        writer_candidates=2,
        task_params={"per_image": 1},
        **extra,
    )


def test_written_instructions_replace_the_templates(tmp_path: Path) -> None:
    with ScriptedServer(language_aware) as server:
        summary = run(config(tmp_path / "run", server.url), executor="local")
        requests = len(server.requests)
    written = manifest_rows(tmp_path / "run")
    assert len(written) == 2 and requests == 2 * 2 * 2  # samples x languages x candidates
    for row in written:
        record = json.loads(row["json"])
        operation = record["edit"]["params"]["operation"]
        assert row["instruction_en"] == f"Apply a {operation} adjustment to the photo."
        assert row["instruction_zh"] == "把这张照片的色调调整一下。"
        assert record["instruction_writer"]["backend"] == "openai"
        assert record["instruction_writer"]["template"]["en"] != row["instruction_en"]
    run_json = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run_json["counts"]["instruction_writer"]["calls"] == requests
    assert summary.writer_usage["tokens_in"] > 0
    assert run_json["content_settings"]["instructions"]["writer"] == "openai"


def test_unusable_answers_keep_the_template_and_say_why(tmp_path: Path) -> None:
    with ScriptedServer(lambda body: Reply(text="I cannot help with that.")) as server:
        run(config(tmp_path / "run", server.url), executor="local")
    for row in manifest_rows(tmp_path / "run"):
        record = json.loads(row["json"])
        assert record["instruction_writer"]["backend"] == "templates"
        assert "no valid" in record["instruction_writer"]["fallback_reason"]
        assert row["instruction_en"] == record["instruction_writer"]["template"]["en"]
