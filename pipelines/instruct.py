"""The instruct step: replace the task's template instructions with ones an MLLM writes from the pair.

Switched on per run (`--instruction-writer openai`); the templates stay the offline default and the
fallback: a sample whose writer found no valid instruction keeps its template, and says why.
"""

from __future__ import annotations

from typing import Any

from annotators.mllm.client import MLLMClient, MLLMConfig
from annotators.mllm.writer import NoInstruction, WriterConfig, write_instructions
from pipelines.config import RunConfig
from pipelines.items import WorkItem

USAGE_FIELDS = ("calls", "cache_hits", "http_requests", "tokens_in", "tokens_out")


def writer_client(config: RunConfig) -> MLLMClient:
    return MLLMClient(
        MLLMConfig(
            base_url=config.writer_url,
            model=config.writer_model,
            api_key_env=config.writer_api_key_env,
            cache_dir=f"{config.out.rstrip('/')}/cache/writer" if "://" not in config.out else None,
        )
    )


class InstructStep:
    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.client = writer_client(config)
        self.writer = WriterConfig(candidates=config.writer_candidates)

    def __call__(self, item: WorkItem) -> WorkItem:
        before = self.client.usage.to_record()
        for sample in item.samples:
            record = sample.record
            context: dict[str, Any] = {
                "variant": record["variant"],
                "size": [record["width"], record["height"]],
                "bbox": record["edit"]["bbox"],
                "params": record["edit"]["params"],
            }
            if "category" in record["edit"]["params"]:
                context["labels"] = [record["edit"]["params"]["category"]]
            writer = {
                "backend": "openai",
                "model": self.config.writer_model,
                "template": record["instruction"],
            }
            try:
                written = write_instructions(
                    self.client, sample.src, sample.tgt, record["task"], context, self.writer
                )
            except NoInstruction as error:
                writer.update(backend="templates", fallback_reason=str(error))
            else:
                record["instruction"] = {"en": written["en"], "zh": written["zh"]}
                writer["candidates"] = written["candidates"]
            record["instruction_writer"] = writer
        after = self.client.usage.to_record()
        for name in USAGE_FIELDS:
            item.usage[name] = item.usage.get(name, 0) + after[name] - before[name]
        failures = sum(after["failures"].values()) - sum(before["failures"].values())
        item.usage["failures"] = item.usage.get("failures", 0) + failures
        return item
