"""What flows through the pipeline: one work item per source, carrying its encoded samples or its reject."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tasks.records import SourceSample


@dataclass
class EncodedSample:
    id: str
    record: dict[str, Any]
    src: bytes
    tgt: bytes
    mask: bytes | None

    @property
    def nbytes(self) -> int:
        return len(self.src) + len(self.tgt) + len(self.mask or b"") + 1024


@dataclass
class WorkItem:
    ref: dict[str, Any]
    source: SourceSample | None = None
    sha256: str | None = None
    reject_reason: str | None = None
    reject_detail: str = ""
    annotators: dict[str, dict[str, str]] = field(default_factory=dict)
    samples: list[EncodedSample] = field(default_factory=list)
    usage: dict[str, float] = field(default_factory=dict)  # MLLM requests and tokens spent on this item
    already_done: bool = False  # its (content hash, task) is committed in the run folder: nothing to do
    error: StepError | None = None  # a bug, not a decision: the run stops or counts it (--max-error-rate)
    timings: dict[str, float] = field(default_factory=dict)  # seconds each step took, in step order
    rejected_at: str | None = None  # the step that rejected the item (None: not rejected by a step)

    @property
    def finished(self) -> bool:
        """Nothing more happens to this item in later steps."""
        return self.reject_reason is not None or self.already_done or self.error is not None

    @property
    def rejected(self) -> bool:
        return self.reject_reason is not None

    def reject(self, reason: str, detail: str) -> WorkItem:
        self.reject_reason, self.reject_detail, self.source = reason, detail, None
        return self


@dataclass
class StepError:
    """An unexpected exception in a step, carried to the driver with the source that raised it."""

    step: str
    uri: str
    traceback: str

    def __str__(self) -> str:
        return f"step {self.step!r} failed on {self.uri}:\n{self.traceback}"
