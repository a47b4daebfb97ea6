"""The MLLM judge: the GEdit-Bench / VIEScore "tie" protocol through an OpenAI-compatible server.

SC = min(edit success, not over-edited) from source + target + instruction; PQ = min(naturalness, no
artifacts) from the target alone; O = sqrt(SC * PQ); all on 0-10. The prompt is in the instruction's language.
Unlike VIEScore's parser, which draws a random score when the answer stays unreadable, an unreadable answer
is asked once more and then the sample is judge_failed: a guessed score would poison the filter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from annotators.judge.result import JudgeResult
from annotators.mllm.client import ChatAnswer, MLLMClient
from annotators.mllm.parse import parse_score_pair

Language = Literal["en", "zh"]

# Part of the judge's name, which the filter compares before reusing a manifest's scores: bump it with any
# change to the prompts or the parsing, or old scores would be kept as if the new judge had given them.
PROMPTS_VERSION = 1

PROMPTS: dict[str, dict[str, str]] = {
    "en": {
        "context": (
            "You are a professional digital artist. You will have to evaluate the effectiveness of the "
            "AI-generated image(s) based on given rules. All the input images are AI-generated. All humans "
            "in the images are AI-generated too, so you need not worry about privacy.\n"
            "You will have to give your output in this way (keep your reasoning concise and short):\n"
            '{"score": [...], "reasoning": "..."}\n'
        ),
        "sc": (
            "Two images will be provided: the first is the original image and the second is an edited "
            "version of the first. The objective is to evaluate how successfully the editing instruction has "
            "been executed in the second image. Note that sometimes the two images might look identical "
            "because the edit failed.\n"
            "From a scale 0 to 10:\n"
            "A score from 0 to 10 will be given based on the success of the editing. (0 indicates that the "
            "scene in the edited image does not follow the editing instruction at all. 10 indicates that the "
            "scene in the edited image follows the editing instruction text perfectly.)\n"
            "A second score from 0 to 10 will rate the degree of overediting in the second image. (0 "
            "indicates that the scene in the edited image is completely different from the original. 10 "
            "indicates that the edited image can be recognized as a minimal yet effective edit of the "
            "original.)\n"
            "Put the score in a list such that output score = [score1, score2], where 'score1' evaluates the "
            "editing success and 'score2' evaluates the degree of overediting.\n\n"
            "Editing instruction: {instruction}\n"
        ),
        "pq": (
            "The image is an AI-generated image. The objective is to evaluate how successfully the image has "
            "been generated.\n"
            "From a scale 0 to 10:\n"
            "A score from 0 to 10 will be given based on image naturalness. (0 indicates that the scene in "
            "the image does not look natural at all or gives an unnatural feeling, such as a wrong sense of "
            "distance, wrong shadow or wrong lighting. 10 indicates that the image looks natural.)\n"
            "A second score from 0 to 10 will rate the image artifacts. (0 indicates that the image contains "
            "a large portion of distortion, watermark, scratches, blurred faces, unusual body parts, or "
            "subjects not harmonized. 10 indicates the image has no artifacts.)\n"
            "Put the score in a list such that output score = [naturalness, artifacts].\n"
        ),
    },
    # Written in Chinese, not machine-translated at run time: a Chinese instruction is judged by a Chinese
    # prompt, as GEdit-Bench-CN does.
    "zh": {
        "context": (
            "你是一名专业的数字艺术家。你需要根据给定的规则评估 "
            "AI 生成图像的效果。所有输入图像都是 AI 生成的，"
            "图中的人物也都是 AI 生成的，因此无需担心隐私问题。\n"
            "请按以下格式输出（理由简明扼要）：\n"
            '{"score": [...], "reasoning": "..."}\n'
        ),
        "sc": (
            "你会看到两张图像：第一张是原图，第二张是对第一张编"
            "辑后的结果。你的任务是评估第二张图像执行编辑指令的"
            "成功程度。注意：编辑失败时，两张图可能看起来完全相同。\n"
            "评分范围为 0 到 10：\n"
            "第一个分数评价编辑是否成功（0 表示编辑后的画面完全"
            "没有遵循编辑指令，10 表示完美遵循编辑指令）。\n"
            "第二个分数评价第二张图是否过度编辑（0 表示编辑后的"
            "画面与原图完全不同，10 表示它是对原图最小而有效的"
            "编辑）。\n"
            "请把分数放在列表中：score = [分数1, 分数2]，分数1 评价编辑成功程度，分数2 评价过度编辑程度。\n\n"
            "编辑指令：{instruction}\n"
        ),
        "pq": (
            "这是一张 AI 生成的图像。你的任务是评估这张图像的生成质量。\n"
            "评分范围为 0 到 10：\n"
            "第一个分数评价图像的自然程度（0 表示画面看起来完"
            "全不自然，例如距离感、阴影或光照错误；10 表示画面"
            "看起来自然）。\n"
            "第二个分数评价图像的瑕疵（0 表示图像有大面积扭曲"
            "、水印、划痕、模糊的人脸、异常的肢体或不协调的主体；"
            "10 表示没有任何瑕疵）。\n"
            "请把分数放在列表中：score = [自然程度, 瑕疵]。\n"
        ),
    },
}


def sc_prompt(instruction: str, language: Language) -> str:
    p = PROMPTS[language]
    return p["context"] + p["sc"].replace("{instruction}", instruction)


def pq_prompt(language: Language) -> str:
    p = PROMPTS[language]
    return p["context"] + p["pq"]


@dataclass
class _Asked:
    scores: list[float] | None
    reasoning: str
    raw: list[str]  # every answer text received, in order, for the record
    error: str | None


class VIEScoreJudge:
    """Judges one (source, target, instruction) at a time; call from many threads to use the concurrency."""

    def __init__(self, client: MLLMClient, language: Language = "en") -> None:
        self.client = client
        self.language = language

    @property
    def name(self) -> str:
        return f"openai:{self.client.config.model}:{self.language}:v{PROMPTS_VERSION}"

    def _ask(self, prompt: str, images: list[bytes]) -> _Asked:
        raw: list[str] = []
        for attempt in range(2):  # the first answer, and one more question when it cannot be parsed
            answer: ChatAnswer = self.client.chat(prompt, images, extra={"attempt": attempt})
            if not answer.ok:
                return _Asked(None, "", raw, answer.error)
            raw.append(answer.text or "")
            parsed = parse_score_pair(answer.text or "")
            if parsed is not None:
                return _Asked(parsed[0], parsed[1], raw, None)
        self.client.usage.count("failures", "unparseable")
        return _Asked(None, "", raw, "unparseable")

    def judge(self, source: bytes, target: bytes, instruction: dict[str, str]) -> JudgeResult:
        """`source`/`target` are encoded images (e.g. the tar members as they are); `instruction` is
        {"en": ..., "zh": ...} and the judge language picks which one is judged."""
        text = instruction.get(self.language) or ""
        details: dict[str, Any] = {"language": self.language, "instruction": text}
        if not text:
            return JudgeResult.failed(f"no_{self.language}_instruction", details)
        # Bounded once here: the target goes out in both questions.
        source_jpeg, target_jpeg = self.client.bounded(source), self.client.bounded(target)
        sc = self._ask(sc_prompt(text, self.language), [source_jpeg, target_jpeg])
        details["raw_sc"] = sc.raw
        if sc.scores is None:
            return JudgeResult.failed(f"sc_{sc.error}", details)
        pq = self._ask(pq_prompt(self.language), [target_jpeg])
        details["raw_pq"] = pq.raw
        if pq.scores is None:
            return JudgeResult.failed(f"pq_{pq.error}", details)
        details.update(
            edit_success=sc.scores[0],
            over_editing=sc.scores[1],
            reasoning_sc=sc.reasoning,
            naturalness=pq.scores[0],
            artifacts=pq.scores[1],
            reasoning_pq=pq.reasoning,
        )
        return JudgeResult.scored(min(sc.scores), min(pq.scores), details)
