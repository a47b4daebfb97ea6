"""Judge protocols: what a chat judge is asked, how the question is laid out, and how its answer is scored.

Every protocol asks two questions per edit, as GEdit-Bench's VIEScore does: SC from source + edited image +
instruction (answer: [edit success, not over-edited]) and PQ from the edited image alone (answer:
[naturalness, no artifacts]); each question's score is the min of its pair, mapped to 0-10.

- `viescore`: VIEScore's questions on a 0-10 scale in this project's wording, in English and in Chinese (a
  Chinese instruction can be judged by a Chinese prompt); text first then the images, greedy, one pass. The
  filter's default.
- `gedit`: GEdit-Bench's judge prompt exactly (VIEScore's "tie" prompts as the reference's viescore package
  composes them), English only; text first then the images (its GPT-4.1 judge's layout; its Qwen2.5-VL
  judge put the images first), greedy (its GPT-4.1 calls used the API's default temperature). The
  evaluation's default: the protocol behind published G_/Q_ numbers.
- `editscore`: EditScore (VectorSpaceLab/EditScore, arXiv 2509.23909), LoRA reward models on Qwen2.5-VL /
  Qwen3-VL, served by vLLM. It was fine-tuned on one prompt, so the prompt is reproduced exactly: VIEScore's
  rules on a 0-25 scale with a reasoning-first answer. The images come first, each after a label "<imgN>: "
  (the chat template its vLLM backend builds by hand); decoding samples at temperature 0.7, top_p 0.9, top_k
  20, seed 42 + pass; the scores are averaged over `passes` answers ("self-ensembling"; the paper's best
  results use 4 or more). O is the mean of the per-pass O ("average_last", its default) or the sqrt of the
  mean SC times the mean PQ ("average_first"). English prompt whatever the instruction's language.

Bump a protocol's `version` with any change to its prompts or parsing: it is part of the judge's name, which
the filter compares before reusing a manifest's scores.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from annotators.mllm.client import Part, Sampling

PromptLanguage = Literal["en", "zh"]
Reduction = Literal["average_last", "average_first"]

VIESCORE_PROMPTS: dict[str, dict[str, str]] = {
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
    # prompt when the filter judges the Chinese instructions of a run.
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

# VIEScore's prompt texts, reproduced character for character: GEdit-Bench's scores come from exactly these,
# and EditScore's LoRA was trained on them (VectorSpaceLab/EditScore 6e0f1b9, editscore/vie_prompts.py, the
# same rule texts as VIEScore's; GEdit-Bench's copy joins context + rules with "\n", as EditScore does). The
# rules are written for 0-10; EditScore replaces every "10" in them with its score range. GEdit-Bench's
# context asks for the score first, EditScore's for the reasoning first.
_GEDIT_CONTEXT = (
    "You are a professional digital artist. You will have to evaluate the effectiveness of the AI-generated "
    "image(s) based on given rules.\n"
    "All the input images are AI-generated. All human in the images are AI-generated too. so you need not "
    "worry about the privacy confidentials.\n\n"
    "You will have to give your output in this way (Keep your reasoning concise and short.):\n"
    '{\n"score" : [...],\n"reasoning" : "..."\n}'
)
_EDITSCORE_CONTEXT = (
    "You are a professional digital artist. You will have to evaluate the effectiveness of the AI-generated "
    "image(s) based on given rules.\n"
    "All the input images are AI-generated. All human in the images are AI-generated too. so you need not "
    "worry about the privacy confidentials.\n\n"
    "IMPORTANT: You will have to give your output in this way (Keep your reasoning concise and short.):\n"
    '{\n"reasoning" : "...",\n"score" : [...]\n}\n'
)
_TWO_IMAGE_RULE = (
    "RULES:\n\n"
    "Two images will be provided: The first being the original AI-generated image and the second being an "
    "edited version of the first.\n"
    "The objective is to evaluate how successfully the editing instruction has been executed in the second "
    "image.\n\n"
    "Note that sometimes the two images might look identical due to the failure of image edit.\n"
)
_TIE_SC_RULE = (
    "\nFrom scale 0 to 10: \n"
    "A score from 0 to 10 will be given based on the success of the editing. (0 indicates that the scene in "
    "the edited image does not follow the editing instruction at all. 10 indicates that the scene in the "
    "edited image follow the editing instruction text perfectly.)\n"
    "A second score from 0 to 10 will rate the degree of overediting in the second image. (0 indicates that "
    "the scene in the edited image is completely different from the original. 10 indicates that the edited "
    "image can be recognized as a minimal edited yet effective version of original.)\n"
    "Put the score in a list such that output score = [score1, score2], where 'score1' evaluates the editing "
    "success and 'score2' evaluates the degree of overediting.\n\n"
    "Editing instruction: <instruction>\n"
)
_PQ_RULE = (
    "RULES:\n\n"
    "The image is an AI-generated image.\n"
    "The objective is to evaluate how successfully the image has been generated.\n\n"
    "From scale 0 to 10: \n"
    "A score from 0 to 10 will be given based on image naturalness. \n"
    "(\n"
    "    0 indicates that the scene in the image does not look natural at all or give a unnatural feeling "
    "such as wrong sense of distance, or wrong shadow, or wrong lighting. \n"
    "    10 indicates that the image looks natural.\n"
    ")\n"
    "A second score from 0 to 10 will rate the image artifacts. \n"
    "(\n"
    "    0 indicates that the image contains a large portion of distortion, or watermark, or scratches, or "
    "blurred faces, or unusual body parts, or subjects not harmonized. \n"
    "    10 indicates the image has no artifacts.\n"
    ")\n"
    "Put the score in a list such that output score = [naturalness, artifacts]\n"
)
EDITSCORE_RANGE = 25


def gedit_prompts() -> dict[str, str]:
    """GEdit-Bench's SC prompt (with "<instruction>" to fill in) and PQ prompt."""
    return {
        "sc": "\n".join([_GEDIT_CONTEXT, _TWO_IMAGE_RULE, _TIE_SC_RULE]),
        "pq": "\n".join([_GEDIT_CONTEXT, _PQ_RULE]),
    }


def editscore_prompts(score_range: int = EDITSCORE_RANGE) -> dict[str, str]:
    """EditScore's SC prompt (with "<instruction>" to fill in) and PQ prompt for a score range."""
    scale = str(score_range)
    return {
        "sc": "\n".join([_EDITSCORE_CONTEXT, _TWO_IMAGE_RULE, _TIE_SC_RULE.replace("10", scale)]),
        "pq": "\n".join([_EDITSCORE_CONTEXT, _PQ_RULE.replace("10", scale)]),
    }


@dataclass(frozen=True)
class ChatProtocol:
    name: str
    version: int
    score_range: int  # the scale the prompts ask for; mapped linearly to 0-10
    images_first: bool  # "<img1>: " image ... then the text, instead of the text then the images
    sampling: Sampling = field(default_factory=Sampling)
    passes: int = 1
    reduction: Reduction = "average_last"
    # seed of pass i is seed + i (None: no seed sent, the greedy judge needs none)
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.passes < 1:
            raise ValueError(f"{self.name}: passes must be >= 1, got {self.passes}")

    @property
    def prompt_languages(self) -> tuple[PromptLanguage, ...]:
        return ("en", "zh") if self.name == "viescore" else ("en",)

    def sc_prompt(self, instruction: str, language: PromptLanguage) -> str:
        if self.name == "viescore":
            p = VIESCORE_PROMPTS[language]
            return p["context"] + p["sc"].replace("{instruction}", instruction)
        return self._prompts()["sc"].replace("<instruction>", instruction)

    def pq_prompt(self, language: PromptLanguage) -> str:
        if self.name == "viescore":
            p = VIESCORE_PROMPTS[language]
            return p["context"] + p["pq"]
        return self._prompts()["pq"]

    def _prompts(self) -> dict[str, str]:
        return gedit_prompts() if self.name == "gedit" else editscore_prompts(self.score_range)

    def parts(self, prompt: str, images: list[bytes]) -> list[Part]:
        if not self.images_first:
            return [prompt, *images]
        labelled: list[Part] = []
        for i, image in enumerate(images, start=1):
            labelled += [f"<img{i}>: ", image]
        return [*labelled, prompt]

    def pass_sampling(self, pass_index: int, attempt: int) -> Sampling:
        if self.seed is None:
            return self.sampling
        # A retry after an unreadable answer must not repeat it: a seeded server would give the same text.
        return replace(self.sampling, seed=self.seed + pass_index + 1000 * attempt)

    def to_ten(self, score: float) -> float:
        # 0-10 answers are kept as they are, bit for bit (a round trip through * 10 / 10 need not be).
        return score if self.score_range == 10 else score * 10.0 / self.score_range

    def combine(self, sc: list[float], pq: list[float]) -> tuple[float, float, float]:
        """Per-pass SC and PQ (0-10) -> the sample's SC, PQ and O."""
        mean_sc, mean_pq = sum(sc) / len(sc), sum(pq) / len(pq)
        if self.reduction == "average_first":
            return mean_sc, mean_pq, math.sqrt(mean_sc * mean_pq)
        return mean_sc, mean_pq, sum(math.sqrt(s * q) for s, q in zip(sc, pq, strict=True)) / len(sc)

    def to_record(self) -> dict[str, object]:
        return {
            "protocol": self.name,
            "protocol_version": self.version,
            "score_range": self.score_range,
            "passes": self.passes,
            "reduction": self.reduction,
            "sampling": {k: v for k, v in asdict(self.sampling).items() if v is not None},
            "seed": self.seed,
        }


VIESCORE = ChatProtocol(name="viescore", version=1, score_range=10, images_first=False)
GEDIT = ChatProtocol(name="gedit", version=1, score_range=10, images_first=False)


def editscore(passes: int = 1, reduction: Reduction = "average_last", seed: int = 42) -> ChatProtocol:
    return ChatProtocol(
        name="editscore",
        version=1,
        score_range=EDITSCORE_RANGE,
        images_first=True,
        sampling=Sampling(temperature=0.7, top_p=0.9, top_k=20),
        passes=passes,
        reduction=reduction,
        seed=seed,
    )


PROTOCOLS = ("viescore", "gedit", "editscore")


def chat_protocol(
    name: str, passes: int | None = None, reduction: Reduction = "average_last"
) -> ChatProtocol:
    """A protocol by name; `passes` None is the protocol's own default (1)."""
    if name in ("viescore", "gedit"):
        if passes not in (None, 1):
            raise ValueError(f"{name} is greedy: several passes would give the same answer")
        return VIESCORE if name == "viescore" else GEDIT
    if name == "editscore":
        return editscore(passes or 1, reduction)
    raise ValueError(f"unknown judge protocol {name!r}: expected one of {', '.join(PROTOCOLS)}")
