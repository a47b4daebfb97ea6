"""The one result type every judge returns, whatever it measures."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

JudgeStatus = Literal["ok", "judge_failed"]


def overall_score(sc: float, pq: float) -> float:
    """GEdit-Bench / VIEScore overall: the geometric mean, so a zero in either axis sinks the sample."""
    return math.sqrt(sc * pq)


@dataclass
class JudgeResult:
    status: JudgeStatus
    sc: float | None = None  # semantic consistency, 0-10
    pq: float | None = None  # perceptual quality, 0-10
    o: float | None = None  # sqrt(sc * pq), or its mean over the judge's passes
    reason: str | None = None  # why judge_failed: "unparseable", "timeout", "http_500", ...
    # The judge's own sub-scores and measurements (edit_success, over_editing, psnr_outside, ...).
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def scored(cls, sc: float, pq: float, details: dict[str, Any], o: float | None = None) -> JudgeResult:
        """`o` defaults to sqrt(sc * pq); a judge that averages several passes gives its own (the mean of
        the per-pass O is not the O of the mean SC and PQ)."""
        return cls(status="ok", sc=sc, pq=pq, o=overall_score(sc, pq) if o is None else o, details=details)

    @classmethod
    def failed(cls, reason: str, details: dict[str, Any]) -> JudgeResult:
        return cls(status="judge_failed", reason=reason, details=details)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)
