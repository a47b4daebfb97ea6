"""A run's configuration, its hash, and the deterministic ids derived from it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pipelines.decode import DecodeLimits
from tasks.registry import GEDIT_KEYS, load_task

PIPELINE_VERSION = "0.1.0"


@dataclass
class RunConfig:
    task: str
    source: str
    out: str
    labels: str | None = None
    licence: str = "unknown"
    backend: str = "offline"  # offline | models
    models_dir: str | None = None
    seed: int = 0
    image_format: str = "jpg"  # jpg | png
    jpeg_quality: int = 95
    max_side: int = 2048  # larger sources are downscaled first: the model trains at ≤ 1024
    shard_max_samples: int = 1000
    shard_max_bytes: int = 1 << 30
    task_params: dict[str, Any] = field(default_factory=dict)
    decode: DecodeLimits = field(default_factory=DecodeLimits)
    workers: int | None = None  # parallelism of each stage; default: what Ray can schedule
    address: str | None = None  # Ray address; None = RAY_ADDRESS or an embedded local Ray
    limit: int | None = None  # process at most this many source items (new ones, after resume)
    # None: the first source a step fails on (a bug, not a reject) stops the run. R: such failures are
    # recorded as rejects and the run goes on, failing at the end if they exceed R of the sources read.
    max_error_rate: float | None = None
    instruction_writer: str = "templates"  # templates | openai
    writer_url: str | None = None
    writer_model: str | None = None
    writer_api_key_env: str = "OPENAI_API_KEY"  # the variable's name; the key is never stored
    writer_candidates: int = 3

    def __post_init__(self) -> None:
        if self.task not in GEDIT_KEYS:
            raise ValueError(f"unknown task {self.task!r}; the categories are: {', '.join(GEDIT_KEYS)}")
        if self.image_format not in ("jpg", "png"):
            raise ValueError(f"image_format must be jpg or png, not {self.image_format!r}")
        if self.backend not in ("offline", "models"):
            raise ValueError(f"backend must be offline or models, not {self.backend!r}")
        if self.instruction_writer not in ("templates", "openai"):
            raise ValueError(
                f"instruction_writer must be templates or openai, not {self.instruction_writer!r}"
            )
        if self.instruction_writer == "openai" and not (self.writer_url and self.writer_model):
            raise ValueError("--instruction-writer openai needs --writer-url and --writer-model")
        if isinstance(self.decode, dict):
            self.decode = DecodeLimits(**self.decode)

    def task_params_resolved(self) -> Any:
        """The task's Params dataclass with this run's overrides; unknown keys are an error."""
        params_type = load_task(self.task).Params
        known = {f.name for f in dataclasses.fields(params_type)}
        unknown = set(self.task_params) - known
        if unknown:
            raise ValueError(f"{self.task} has no parameters {sorted(unknown)}; it has {sorted(known)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in self.task_params.items()}
        return params_type(**values)

    def content_settings(self) -> dict[str, Any]:
        """What decides the content of the samples; paths, parallelism and shard sizes do not."""
        return {
            "task": self.task,
            "backend": self.backend,
            "seed": self.seed,
            "image_format": self.image_format,
            "jpeg_quality": self.jpeg_quality,
            "max_side": self.max_side,
            "task_params": dataclasses.asdict(self.task_params_resolved()),
            "decode": dataclasses.asdict(self.decode),
            "instructions": (
                {"writer": "openai", "model": self.writer_model, "candidates": self.writer_candidates}
                if self.instruction_writer == "openai"
                else {"writer": "templates"}
            ),
        }

    def config_hash(self) -> str:
        blob = json.dumps(self.content_settings(), sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def sample_id(source_sha256: str, task: str, variant: str, config_hash: str) -> str:
    return hashlib.sha256(f"{source_sha256}|{task}|{variant}|{config_hash}".encode()).hexdigest()[:32]


def source_seed(run_seed: int, source_sha256: str, task: str) -> int:
    """Per-source seed: the same photo gets the same random choices in every run with the same seed."""
    return int(hashlib.sha256(f"{run_seed}|{source_sha256}|{task}".encode()).hexdigest()[:8], 16)
