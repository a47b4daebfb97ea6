"""The contract between the engine and a task module: what a task declares, and the one function it provides.

A task module (tasks/<category>.py) is pure logic. It declares

- ``NAME`` and ``GEDIT_KEY``: its category and the GEdit-Bench key stored with every sample;
- ``ANNOTATORS``: names of the annotators (annotators/<name>.py) that must have looked at the source, and at
  its partners, before ``make_pairs`` runs;
- ``TOOLS``: names of the pixel tools (annotators/<name>.py, see tasks.tools) ``make_pairs`` calls;
- ``INPUTS``: what one work item holds: ``image`` (one photo), ``image+partner`` (a photo and ``PARTNERS``
  other photos of the run, chosen by the engine from the content hashes; an int, or a mapping from backend to
  int) or ``frame_pair`` (two frames of one video shot, chosen by the engine by ``FRAME_PAIRS``);
- ``LOCAL``: whether its edits are local (every candidate then carries the mask of the edited region);
- ``Params``: a frozen dataclass of its parameters (overridden per run with ``--param key=value``);

and ``make_pairs(source, params, tools, seed) -> list[Candidate] | Skip``.

The engine builds the whole run graph from these declarations; it never names a category or an annotator.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

from tasks.records import SourceSample, TaskResult
from tasks.tools import Tools

INPUT_KINDS = ("image", "image+partner", "frame_pair")


@dataclass(frozen=True)
class FramePairs:
    """How the engine cuts a video into frame-pair work items for a ``frame_pair`` task.

    Frames are looked at every ``stride_s`` seconds; a pair is two of those frames ``gap_s`` apart (each gap
    in the tuple is tried), both inside one shot (the engine detects cuts, so no pair spans one). At most
    ``max_pairs`` pairs per video, spread evenly over it.
    """

    stride_s: float = 0.5
    gaps_s: tuple[float, ...] = (1.0, 2.0)
    max_pairs: int = 12
    max_frames: int = 2400  # frames looked at per video; longer videos are sampled more sparsely


@runtime_checkable
class TaskModule(Protocol):
    NAME: str
    GEDIT_KEY: str
    ANNOTATORS: tuple[str, ...]
    TOOLS: tuple[str, ...]
    INPUTS: str
    LOCAL: bool
    Params: type

    def make_pairs(self, source: SourceSample, params: Any, tools: Tools, seed: int) -> TaskResult: ...


def partner_count(task: ModuleType, backend: str) -> int:
    """How many partner photos an ``image+partner`` task is handed under ``backend``: ``PARTNERS``, an int or
    a mapping backend -> int (a model backend that paints from a prompt may need none), default 1."""
    if task.INPUTS != "image+partner":
        return 0
    declared = getattr(task, "PARTNERS", 1)
    return int(declared.get(backend, 1) if isinstance(declared, dict) else declared)


def frame_pairs(task: ModuleType) -> FramePairs:
    return getattr(task, "FRAME_PAIRS", FramePairs())


def contract_problems(task: ModuleType, name: str, gedit_key: str) -> list[str]:
    """Everything about a task module's declarations that breaks the contract (empty when it holds)."""
    if not isinstance(task, TaskModule):
        missing = [
            a
            for a in ("NAME", "GEDIT_KEY", "ANNOTATORS", "TOOLS", "INPUTS", "LOCAL", "Params", "make_pairs")
            if not hasattr(task, a)
        ]
        return [f"missing {', '.join(missing)}"]
    problems = []
    if name != task.NAME:
        problems.append(f"NAME is {task.NAME!r}, its module is {name!r}")
    if gedit_key != task.GEDIT_KEY:
        problems.append(f"GEDIT_KEY is {task.GEDIT_KEY!r}, the category's key is {gedit_key!r}")
    if task.INPUTS not in INPUT_KINDS:
        problems.append(f"INPUTS is {task.INPUTS!r}, not one of {INPUT_KINDS}")
    if not (dataclasses.is_dataclass(task.Params) and task.Params.__dataclass_params__.frozen):
        problems.append("Params is not a frozen dataclass")
    for field in ("ANNOTATORS", "TOOLS"):
        value = getattr(task, field)
        if not (isinstance(value, tuple) and all(isinstance(v, str) for v in value)):
            problems.append(f"{field} is not a tuple of names")
    if task.INPUTS == "image+partner" and partner_count(task, "offline") < 1:
        problems.append("PARTNERS must be at least 1 for the offline backend")
    return problems
