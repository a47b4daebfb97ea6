"""The MLLM judge: SC and PQ questions to an OpenAI-compatible server, under a protocol (protocols.py).

SC = min(edit success, not over-edited) from source + target + instruction; PQ = min(naturalness, no
artifacts) from the target alone; O = sqrt(SC * PQ) per pass; all on 0-10 (the protocol maps its own scale).
Unlike VIEScore's parser, which draws a random score when the answer stays unreadable, an unreadable answer
is asked once more and then the sample is judge_failed: a guessed score would poison the filter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from annotators.judge.result import JudgeResult
from annotators.mllm.client import MLLMClient
from annotators.mllm.parse import parse_score_pair
from annotators.mllm.protocols import VIESCORE, ChatProtocol, PromptLanguage


@dataclass
class _Asked:
    scores: list[float] | None  # on the protocol's own scale
    reasoning: str
    raw: list[str]  # every answer text received, in order, for the record
    error: str | None
    served_model: str | None = None


class ChatJudge:
    """Judges one (source, target, instruction) at a time; call from many threads to use the concurrency.

    `language` picks which instruction of a sample is judged ({"en": ..., "zh": ...}); the prompt is in that
    language when the protocol has one in it, else in `prompt_language` (English by default).
    """

    def __init__(
        self,
        client: MLLMClient,
        protocol: ChatProtocol = VIESCORE,
        language: PromptLanguage = "en",
        prompt_language: PromptLanguage | None = None,
    ) -> None:
        self.client = client
        self.protocol = protocol
        self.language = language
        if prompt_language is None:
            prompt_language = language if language in protocol.prompt_languages else "en"
        if prompt_language not in protocol.prompt_languages:
            raise ValueError(f"{protocol.name} has no {prompt_language} prompt")
        self.prompt_language = prompt_language

    @property
    def name(self) -> str:
        model = self.client.config.model
        prompt = "" if self.prompt_language == self.language else f":prompt-{self.prompt_language}"
        p = self.protocol
        if p.name == "viescore":
            # The name scores were written under before protocols existed: manifests keep their meaning.
            return f"openai:{model}:{self.language}{prompt}:v{p.version}"
        passes = f":x{p.passes}-{p.reduction}" if p.seed is not None else ""  # sampled: passes matter
        return f"{p.name}:{model}:{self.language}{prompt}{passes}:v{p.version}"

    def with_language(
        self, language: PromptLanguage, prompt_language: PromptLanguage | None = None
    ) -> ChatJudge:
        """The same client and protocol judging another language's instructions."""
        return ChatJudge(self.client, self.protocol, language, prompt_language)

    def to_record(self) -> dict[str, Any]:
        """What is recorded with every score: the judge's name, model, server and protocol settings."""
        config = self.client.config
        return {
            "name": self.name,
            "model": config.model,
            "base_url": config.base_url,
            "language": self.language,
            "prompt_language": self.prompt_language,
            "max_area": config.max_area,
            **self.protocol.to_record(),
        }

    def _ask(self, prompt: str, images: list[bytes], pass_index: int) -> _Asked:
        raw: list[str] = []
        served = None
        for attempt in range(2):  # the first answer, and one more question when it cannot be parsed
            extra: dict[str, Any] = {"attempt": attempt}
            if self.protocol.passes > 1:
                extra["pass"] = pass_index
            answer = self.client.ask(
                self.protocol.parts(prompt, images), extra, self.protocol.pass_sampling(pass_index, attempt)
            )
            if not answer.ok:
                return _Asked(None, "", raw, answer.error)
            raw.append(answer.text or "")
            served = answer.served_model or served
            parsed = parse_score_pair(answer.text or "", max_score=self.protocol.score_range)
            if parsed is not None:
                return _Asked(parsed[0], parsed[1], raw, None, served)
        self.client.usage.count("failures", "unparseable")
        return _Asked(None, "", raw, "unparseable", served)

    def judge(self, source: bytes, target: bytes, instruction: dict[str, str]) -> JudgeResult:
        """`source`/`target` are encoded images (e.g. the tar members as they are); `instruction` is
        {"en": ..., "zh": ...} and the judge language picks which one is judged."""
        text = instruction.get(self.language) or ""
        if not text:
            details = {"language": self.language, "instruction": text}
            return JudgeResult.failed(f"no_{self.language}_instruction", details)
        return self.judge_text(source, target, text)

    def judge_text(self, source: bytes, target: bytes, text: str) -> JudgeResult:
        """Judge the edit of `source` into `target` by the instruction `text` (in `self.language`)."""
        p = self.protocol
        details: dict[str, Any] = {"language": self.language, "instruction": text}
        # Bounded once here: the target goes out in every question.
        source_jpeg, target_jpeg = self.client.bounded(source), self.client.bounded(target)
        sc_prompt = p.sc_prompt(text, self.prompt_language)
        pq_prompt = p.pq_prompt(self.prompt_language)
        details["raw_sc"], details["raw_pq"] = [], []
        passes: list[dict[str, Any]] = []
        served: set[str] = set()
        for i in range(p.passes):
            sc = self._ask(sc_prompt, [source_jpeg, target_jpeg], i)
            details["raw_sc"] += sc.raw
            if sc.scores is None:
                return JudgeResult.failed(f"sc_{sc.error}", details)
            pq = self._ask(pq_prompt, [target_jpeg], i)
            details["raw_pq"] += pq.raw
            if pq.scores is None:
                return JudgeResult.failed(f"pq_{pq.error}", details)
            served |= {m for m in (sc.served_model, pq.served_model) if m}
            s1, s2 = (p.to_ten(s) for s in sc.scores)
            n1, n2 = (p.to_ten(s) for s in pq.scores)
            passes.append(
                {
                    "edit_success": s1,
                    "over_editing": s2,
                    "naturalness": n1,
                    "artifacts": n2,
                    "reasoning_sc": sc.reasoning,
                    "reasoning_pq": pq.reasoning,
                }
            )
        for name in ("edit_success", "over_editing", "naturalness", "artifacts"):
            details[name] = sum(q[name] for q in passes) / len(passes)
        details["reasoning_sc"], details["reasoning_pq"] = (
            passes[0]["reasoning_sc"],
            passes[0]["reasoning_pq"],
        )
        if p.passes > 1:
            details["passes"] = passes
        details["served_model"] = ",".join(sorted(served)) or None
        sc_value, pq_value, o_value = p.combine(
            [min(q["edit_success"], q["over_editing"]) for q in passes],
            [min(q["naturalness"], q["artifacts"]) for q in passes],
        )
        return JudgeResult.scored(sc_value, pq_value, details, o=o_value)


class VIEScoreJudge(ChatJudge):
    """The GEdit-Bench judge (the `viescore` protocol)."""

    def __init__(self, client: MLLMClient, language: PromptLanguage = "en") -> None:
        super().__init__(client, VIESCORE, language)
