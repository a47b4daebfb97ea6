"""Judges of an edit triplet: the offline pixel heuristic (here) and the MLLM judge (annotators.mllm)."""

from annotators.judge.result import JudgeResult, overall_score

__all__ = ["JudgeResult", "overall_score"]
