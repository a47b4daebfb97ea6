"""Which judge to build, as `step1x-data filter` and `step1x-eval score` take it from the command line.

A judge that reads the instruction is an `EditJudge`: the MLLM judge under a chat protocol (viescore,
editscore) through an OpenAI-compatible server, or EditReward, a reward model run in this process from a
local models folder. The offline heuristic judge reads pixels only and is built by each caller, which holds
the decoded images (and masks) it measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from annotators.judge.result import JudgeResult
from annotators.mllm.client import MLLMClient, MLLMConfig, served_model
from annotators.mllm.judge import ChatJudge
from annotators.mllm.protocols import PromptLanguage, chat_protocol

JudgeKind = Literal["heuristic", "openai", "editreward"]
JUDGE_KINDS: tuple[JudgeKind, ...] = ("heuristic", "openai", "editreward")


class EditJudge(Protocol):
    name: str

    def judge(self, source: bytes, target: bytes, instruction: dict[str, str]) -> JudgeResult: ...

    def judge_text(self, source: bytes, target: bytes, text: str) -> JudgeResult: ...

    def to_record(self) -> dict[str, Any]: ...

    def with_language(self, language: Any, prompt_language: Any = None) -> EditJudge: ...


@dataclass
class JudgeSpec:
    kind: JudgeKind = "heuristic"
    # openai: the server, the model and the protocol
    url: str | None = None
    model: str | None = None
    protocol: str | None = None  # None: the caller's default protocol (an openai judge needs one)
    passes: int | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    timeout_s: float = 60.0
    max_retries: int = 3
    cache_dir: str | None = None
    # editreward: the checkpoint folder, the Qwen2.5-VL folder it was trained from, and where it runs
    model_dir: str | None = None
    base_dir: str | None = None
    device: str | None = None

    def check(self, option: str = "--judge") -> None:
        """A one-line error for what is missing, before any work starts."""
        if self.kind == "openai" and not self.url:
            raise ValueError(f"{option} openai needs {option}-url")
        if self.kind == "editreward" and not self.model_dir:
            raise ValueError(f"{option} editreward needs --editreward-dir (the EditReward checkpoint folder)")
        if self.kind == "openai" and not self.protocol:
            raise ValueError(f"{option} openai needs {option}-protocol")
        if self.kind != "openai" and self.protocol:
            raise ValueError(f"{option}-protocol applies to {option} openai only")


@dataclass
class BuiltJudge:
    judge: EditJudge
    client: MLLMClient | None  # for its usage counters, and to close

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def build_judge(
    spec: JudgeSpec, language: PromptLanguage = "en", prompt_language: PromptLanguage | None = None
) -> BuiltJudge:
    """An `EditJudge` for `spec` (not the heuristic); `language` picks the instruction judged."""
    if spec.kind == "openai":
        assert spec.url is not None and spec.protocol is not None, "JudgeSpec.check() first"
        model = spec.model or served_model(spec.url, spec.api_key_env, spec.timeout_s)
        client = MLLMClient(
            MLLMConfig(
                base_url=spec.url,
                model=model,
                api_key_env=spec.api_key_env,
                timeout_s=spec.timeout_s,
                max_retries=spec.max_retries,
                concurrency=spec.concurrency,
                cache_dir=spec.cache_dir,
            )
        )
        protocol = chat_protocol(spec.protocol, spec.passes)
        return BuiltJudge(ChatJudge(client, protocol, language, prompt_language), client)
    if spec.kind == "editreward":
        from annotators.mllm.editreward import EditRewardJudge  # torch + transformers: only when asked

        assert spec.model_dir is not None, "JudgeSpec.check() first"
        return BuiltJudge(EditRewardJudge.load(spec.model_dir, spec.base_dir, spec.device, language), None)
    raise ValueError(f"judge kind {spec.kind!r} has no EditJudge (the heuristic is built by its caller)")
