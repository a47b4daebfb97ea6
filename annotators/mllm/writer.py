"""The MLLM instruction writer: a native English and a native Chinese instruction for an edit pair.

Each language has its own prompt, written in that language, and its own requests: the Chinese instruction is
written by looking at the images, not by translating the English one. Several candidates are sampled per
language and the one that agrees most with the others is kept (the paper's redundancy-enhanced annotation: an
instruction that several independent samples converge on is less likely to describe a hallucinated detail).
The offline default stays the task templates; the pipeline calls `write_instructions` per sample when the
writer is switched on, and keeps the template when it raises `NoInstruction`.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from annotators.mllm.client import ChatAnswer, MLLMClient
from annotators.mllm.parse import extract_json_object

# How instructions of each category read, in each language (GEdit-Bench style: short, imperative, concrete).
TASK_STYLE: dict[str, dict[str, str]] = {
    "subject_addition": {"en": "Add <object> <where>.", "zh": "在<位置>添加<物体>。"},
    "subject_removal": {"en": "Remove the <object> <where>.", "zh": "移除<位置>的<物体>。"},
    "subject_replacement": {"en": "Replace the <object> with <new object>.", "zh": "把<物体>换成<新物体>。"},
    "background_change": {"en": "Change the background to <scene>.", "zh": "把背景换成<场景>。"},
    "color_alteration": {"en": "Make the <object> <colour>.", "zh": "把<物体>变成<颜色>。"},
    "material_modification": {
        "en": "Make the <object> look like <material>.",
        "zh": "把<物体>变成<材质>质感。",
    },
    "text_modification": {"en": "Change the text '<old>' to '<new>'.", "zh": "把文字“<旧>”改成“<新>”。"},
    "motion_change": {"en": "Make the <subject> <action>.", "zh": "让<主体><动作>。"},
    "portrait_beautification": {"en": "Smooth the skin and brighten the face.", "zh": "磨皮并提亮面部。"},
    "style_transfer": {"en": "Turn the photo into <style>.", "zh": "把照片变成<风格>。"},
    "tone_transformation": {
        "en": "Make it look like <time / season / weather / light>.",
        "zh": "调成<时间/季节/天气/光线>的效果。",
    },
}

PROMPTS: dict[str, str] = {
    "en": (
        "You are writing training data for an image-editing model. The first image is the original, the "
        "second is the result of an edit of category '{task}'. Write the one instruction a user would type "
        "to get the second image from the first, in natural English. Describe only what changed, concretely "
        '(objects, colours, positions), in one short imperative sentence like: "{style}". Do not mention '
        "'the first image' or 'the second image'.\nWhat the pipeline knows about the edit: {context}\n"
        'Answer with JSON only: {{"instruction": "..."}}'
    ),
    "zh": (
        "你在为图像编辑模型编写训练数据。第一张图是原图，第二张图是对它进行“{task}”类编辑后的结果。请用地道、自然的"
        "中文写出用户为了从第一张图得到第二张图会输入的一条编辑指令。只描述发生变化的内容，要具体（物体、颜色、"
        "位置），用一句简短的祈使句，例如：“{style}”。不要提到“第一张图”或“第二张图”。\n"
        "流程已知的编辑信息：{context}\n"
        '只用 JSON 回答：{{"instruction": "..."}}'
    ),
}

_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")
_WORD = re.compile(r"[a-z0-9']+")
_EN_STOP = frozenset(
    {"a", "an", "the", "to", "of", "in", "on", "at", "and", "it", "its", "this", "that", "make", "please"}
)


class NoInstruction(Exception):
    """No valid candidate in one language; the caller keeps its template instruction."""


@dataclass
class WriterConfig:
    candidates: int = 3  # per language
    temperature: float = 0.7  # sampling gives independent candidates; 0 would give n copies of one
    max_words_en: int = 40
    max_chars_zh: int = 60


def describe_context(task: str, context: dict[str, Any]) -> str:
    """The facts the pipeline has (labels, where the mask is, task parameters), as compact JSON."""
    facts: dict[str, Any] = {"task": task}
    for key in ("labels", "params", "variant"):
        if context.get(key):
            facts[key] = context[key]
    bbox, size = context.get("bbox"), context.get("size")
    mask = context.get("mask")
    if mask is not None and np.any(mask):
        # The mask's box is what the sentence can use ("on the left"); the pixels themselves are not text.
        ys, xs = np.nonzero(mask)
        bbox = bbox or (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        size = size or (mask.shape[1], mask.shape[0])
    if bbox and size:
        x0, y0, x1, y1 = bbox
        w, h = size
        cx, cy = (x0 + x1) / 2 / w, (y0 + y1) / 2 / h
        horizontal = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
        vertical = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
        facts["edit_region"] = {
            "position": f"{vertical} {horizontal}",
            "area_fraction": round((x1 - x0) * (y1 - y0) / (w * h), 3),
        }
    return json.dumps(facts, ensure_ascii=False, default=str)


def _valid(text: str, language: str, cfg: WriterConfig) -> bool:
    if not text.strip():
        return False
    if language == "en":
        return not _CJK.search(text) and len(text.split()) <= cfg.max_words_en
    cjk, latin = len(_CJK.findall(text)), len(_LATIN.findall(text))
    # Object names or quoted text may stay Latin in a Chinese sentence, but the sentence must be Chinese.
    return cjk > 0 and cjk >= latin and len(text) <= cfg.max_chars_zh


def _tokens(text: str, language: str) -> set[str]:
    if language == "en":
        return {w for w in _WORD.findall(text.lower()) if w not in _EN_STOP}
    chars = [c for c in text if _CJK.match(c) or c.isalnum()]
    return {a + b for a, b in zip(chars, chars[1:], strict=False)} or set(chars)


def agreement_scores(texts: list[str], language: str) -> list[float]:
    """Mean Jaccard similarity of each text to the others (English words, Chinese character bigrams)."""
    toks = [_tokens(t, language) for t in texts]
    scores = []
    for i, a in enumerate(toks):
        sims = [len(a & b) / len(a | b) if a | b else 0.0 for j, b in enumerate(toks) if j != i]
        scores.append(sum(sims) / len(sims) if sims else 1.0)
    return scores


def write_instructions(
    client: MLLMClient,
    source_jpeg: bytes,
    target_jpeg: bytes,
    task: str,
    context: dict[str, Any],
    config: WriterConfig | None = None,
) -> dict[str, Any]:
    """-> {"en": ..., "zh": ..., "candidates": [{"language", "text", "valid", "agreement"}, ...]}.

    `source_jpeg`/`target_jpeg` are encoded images, e.g. the tar members as they are: they are bounded to
    the client's JPEG size once here.
    `context` may hold "labels" (object names), "bbox" and "size" (pixels) or "mask" (HxW array, nonzero =
    edited), "params" and "variant" (the task's), all optional. Raises NoInstruction when a language has no
    valid candidate.
    """
    cfg = config or WriterConfig()
    images = [client.bounded(source_jpeg), client.bounded(target_jpeg)]
    facts = describe_context(task, context)
    style = TASK_STYLE.get(task, {"en": "<what to change>.", "zh": "<修改内容>。"})
    asks = [(language, k) for language in ("en", "zh") for k in range(cfg.candidates)]

    def ask(language: str, k: int) -> ChatAnswer:
        prompt = PROMPTS[language].format(task=task, style=style[language], context=facts)
        return client.chat(prompt, images, extra={"candidate": k}, temperature=cfg.temperature)

    # All candidates of both languages at once (the client's concurrency limit still applies): a sample
    # costs one model latency instead of 2 x candidates of them.
    with ThreadPoolExecutor(max_workers=len(asks)) as pool:
        answers = list(pool.map(lambda lk: ask(*lk), asks))
    result: dict[str, Any] = {"candidates": []}
    for (language, _), answer in zip(asks, answers, strict=True):
        obj = extract_json_object(answer.text or "") if answer.ok else None
        text = obj.get("instruction") if obj else None
        text = text.strip() if isinstance(text, str) else ""
        result["candidates"].append(
            {
                "language": language,
                "text": text,
                "valid": _valid(text, language, cfg),
                "error": answer.error,
                "agreement": None,
            }
        )
    for language in ("en", "zh"):
        valid = [c for c in result["candidates"] if c["language"] == language and c["valid"]]
        if not valid:
            raise NoInstruction(f"no valid {language} instruction among {cfg.candidates} candidates")
        scores = agreement_scores([c["text"] for c in valid], language)
        for cand, score in zip(valid, scores, strict=True):
            cand["agreement"] = round(score, 4)
        # The most agreed-on candidate; among equals, the first asked.
        result[language] = valid[max(range(len(valid)), key=lambda i: (scores[i], -i))]["text"]
    return result
