"""The pipeline's steps, each a small callable with one job: load (or expand a video), annotate, edit+encode.

The same step objects run inside Ray Data (pipelines.graph) and in a plain loop (pipelines.graph's local
executor and the benchmarks), so the two paths cannot drift apart. A step decides about an item by
rejecting it (a reason for the rejects table) or by marking it already done; an exception it did not mean is
a bug, carried to the driver as the item's `error` (pipelines.runner stops the run, or counts it under
--max-error-rate). Finished items pass through later steps untouched.

Nothing here names a category or an annotator: the steps come from the task's declarations
(tasks.contract) and the plug-ins it names (annotators.registry).
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import cv2
import numpy as np
from PIL import Image

from annotators.registry import Annotator, Plugin, Resources, combined_resources, resolve
from pipelines.config import PIPELINE_VERSION, RunConfig, sample_id, source_seed
from pipelines.decode import DecodeError
from pipelines.instruct import InstructStep
from pipelines.items import EncodedSample, StepError, WorkItem
from pipelines.load import load_source
from pipelines.resume import is_done, location_key
from pipelines.video import frame_pair_items
from tasks.contract import frame_pairs
from tasks.records import Candidate, Skip, SourceSample
from tasks.registry import GEDIT_KEYS, load_task
from tasks.tools import Tools

log = logging.getLogger(__name__)

CHANGE_THRESHOLD = 8  # a pixel counts as changed when a channel moved by more than this (of 255)


def is_out_of_memory(error: BaseException) -> bool:
    """A CUDA (or other accelerator) allocation failure, told apart from bugs without importing torch."""
    return type(error).__name__ == "OutOfMemoryError" or "out of memory" in str(error).lower()


def free_accelerator_memory() -> None:
    import sys

    torch = sys.modules.get("torch")  # only a process that already uses torch can hold its memory
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _downscale(source: SourceSample, max_side: int) -> None:
    longest = max(source.width, source.height)
    if longest <= max_side:
        return
    scale = max_side / longest
    size = (round(source.width * scale), round(source.height * scale))
    source.image = cv2.resize(source.image, size, interpolation=cv2.INTER_AREA)
    for label in source.labels:
        if label.mask is not None:
            label.mask = cv2.resize(label.mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        label.bbox = tuple(round(v * scale) for v in label.bbox)
    source.notes.append(f"downscaled_from_{longest}")


class LoadStep:
    """Read, hash, decode and normalise the source (and its partners); attach labels; downscale oversize
    photos. A source whose content is already committed in the run folder is marked done, whatever its
    path: resume is keyed on (content hash, task)."""

    def __init__(self, config: RunConfig, done: frozenset[int]) -> None:
        self.config = config
        self.done = done

    def _load(self, ref: dict[str, Any]) -> SourceSample:
        source = load_source(ref, self.config.decode)
        _downscale(source, self.config.max_side)
        return source

    def __call__(self, item: WorkItem) -> WorkItem:
        try:
            source = self._load(item.ref)
        except DecodeError as error:
            item.sha256 = error.sha256
            if is_done(error.sha256 or location_key(item.ref["uri"]), self.done):
                item.already_done = True
                return item
            return item.reject(error.reason, error.detail)
        item.sha256 = source.sha256
        if is_done(source.sha256, self.done):
            item.already_done = True
            return item
        for partner in item.ref.get("partners", []):
            try:
                source.partners.append(self._load(partner))
            except DecodeError as error:  # the task sees fewer partners; the partner's own item says why
                source.notes.append(f"partner_unreadable_{error.reason}")
        item.source = source
        return item


class ExpandStep:
    """For frame_pair tasks: a video or frame folder becomes one work item per chosen frame pair."""

    def __init__(self, config: RunConfig, done: frozenset[int]) -> None:
        self.config = config
        self.done = done
        self.spec = frame_pairs(load_task(config.task))

    def __call__(self, item: WorkItem) -> Iterator[WorkItem]:
        yield from frame_pair_items(item.ref, self.spec, self.config.decode, self.config.max_side, self.done)


class AnnotateStep:
    """One annotator over a batch of items (each source and its partners).

    A batch that fails is split in halves and each half tried again: an out-of-memory then succeeds at a
    smaller size, and an exception is narrowed down to the item that raises it. One item alone that runs
    out of memory is rejected (`oom`); one that raises is an error.
    """

    def __init__(self, name: str, backend: str, models_dir: str | None) -> None:
        self.name = name
        self.annotator: Annotator = resolve(name, backend)(models_dir)

    def __call__(self, items: list[WorkItem]) -> list[WorkItem]:
        todo = [item for item in items if not item.finished]
        started = time.perf_counter()
        self._annotate(todo)
        if todo:
            record_step(f"annotate:{self.name}", todo, time.perf_counter() - started)
        return items

    def _annotate(self, items: list[WorkItem]) -> None:
        if not items:
            return
        try:
            self.annotator.annotate([s for item in items for s in (item.source, *item.source.partners)])
        except Exception as error:  # noqa: BLE001 - narrowed down below, then rejected or reported
            if is_out_of_memory(error):
                free_accelerator_memory()
            if len(items) > 1:
                half = len(items) // 2
                self._annotate(items[:half])
                self._annotate(items[half:])
            elif is_out_of_memory(error):
                items[0].reject("oom", f"annotate:{self.name} ran out of memory on one source: {error}")
            else:
                items[0].error = _step_error(f"annotate:{self.name}", items[0], error)
                items[0].source = None
            return
        for item in items:
            item.annotators[self.name] = self.annotator.describe_source(item.source)


def encode_image(image: np.ndarray, image_format: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    if image_format == "jpg":
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality, subsampling=0)
    else:
        Image.fromarray(image).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def changed_ratio(source: np.ndarray, target: np.ndarray) -> float:
    difference = cv2.absdiff(source, target)
    # Channel slices, not .max(axis=2): numpy reduces a length-3 last axis an order of magnitude slower.
    largest = np.maximum(np.maximum(difference[..., 0], difference[..., 1]), difference[..., 2])
    return float(np.count_nonzero(largest > CHANGE_THRESHOLD)) / largest.size


class _PairCache:
    """Per item: each array encoded once, each pair measured once.

    Keyed by identity, which is safe because the arrays stay alive in the task's candidates while the
    item is encoded.
    """

    def __init__(self, image_format: str, quality: int) -> None:
        self.image_format, self.quality = image_format, quality
        self._bytes: dict[int, bytes] = {}
        self._ratios: dict[frozenset[int], float] = {}

    def encode(self, image: np.ndarray) -> bytes:
        if id(image) not in self._bytes:
            self._bytes[id(image)] = encode_image(image, self.image_format, self.quality)
        return self._bytes[id(image)]

    def changed_ratio(self, source: np.ndarray, target: np.ndarray) -> float:
        key = frozenset((id(source), id(target)))  # symmetric: an inverse pair is its forward pair swapped
        if key not in self._ratios:
            self._ratios[key] = changed_ratio(source, target)
        return self._ratios[key]


# How many items an edit actor whose tools hold a model works on at once: two, so that one item's CPU work
# (the task's logic, its fill checks, encoding) runs while the other's model call keeps the GPU busy.
MODEL_EDIT_CALLS = 2


class _TakingTurns:
    """A tool shared by the threads of one edit actor: one call at a time (a diffusers pipeline keeps
    per-call state on itself, MediaPipe's tasks are not thread-safe, two model calls would only contend
    for the GPU); everything else passed through. Different tools still run at once."""

    def __init__(self, tool: Any) -> None:
        self._tool = tool
        self._turn = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._turn:
            return self._tool(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tool, name)


class EditStep:
    """The task's own logic, then encoding: what leaves this step is bytes, ready to be written.

    ``calls`` > 1: the step is called from that many threads at once, so each of its tools takes turns."""

    def __init__(self, config: RunConfig, calls: int = 1) -> None:
        self.config = config
        self.task = load_task(config.task)
        self.params = config.task_params_resolved()
        self.config_hash = config.config_hash()
        tools = {}
        for name in self.task.TOOLS:
            tool = resolve(name, config.backend)(config.models_dir)
            tools[name] = _TakingTurns(tool) if calls > 1 else tool
        self.tools = Tools(**tools)
        self.tool_records = {name: tool.describe() for name, tool in self.tools.items()}

    def _make_pairs(self, source: SourceSample, seed: int) -> list[Candidate] | Skip:
        """The task's pairs; an out-of-memory in a tool is tried once more with the cache emptied."""
        try:
            return self.task.make_pairs(source, self.params, self.tools, seed)
        except Exception as error:
            if not is_out_of_memory(error):
                raise
        free_accelerator_memory()
        try:
            return self.task.make_pairs(source, self.params, self.tools, seed)
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            free_accelerator_memory()
            return Skip("oom", f"{type(error).__name__}: {error}")

    def __call__(self, item: WorkItem) -> WorkItem:
        source = item.source
        seed = source_seed(self.config.seed, source.sha256, self.config.task)
        result = self._make_pairs(source, seed)
        if isinstance(result, Skip):
            return item.reject(result.reason, result.detail)
        if not result:
            return item.reject("no_candidates", "the task produced no pair")
        # Tasks reuse arrays across pairs (the original is every forward pair's source, an inverse pair is
        # its forward pair swapped): encode each array once and measure each pair once.
        cache = _PairCache(self.config.image_format, self.config.jpeg_quality)
        item.samples = [self.encode(source, candidate, item.annotators, seed, cache) for candidate in result]
        item.source = None  # the pixels are in the encoded samples now; do not ship them twice
        return item

    def encode(
        self,
        source: SourceSample,
        candidate: Candidate,
        annotators: dict[str, Any],
        seed: int,
        cache: _PairCache,
    ) -> EncodedSample:
        cfg = self.config
        sid = sample_id(source.sha256, cfg.task, candidate.variant, self.config_hash)
        height, width = candidate.target.shape[:2]
        if candidate.source.shape != candidate.target.shape:
            sizes = f"{candidate.source.shape} and {candidate.target.shape}"
            raise ValueError(f"{cfg.task} made a pair of different sizes: {sizes}")
        mask_bytes = None
        if candidate.mask is not None:
            mask_bytes = encode_image((candidate.mask * 255).astype(np.uint8), "png", 0)
        record = {
            "id": sid,
            "task": cfg.task,
            "gedit_key": GEDIT_KEYS[cfg.task],
            "variant": candidate.variant,
            "instruction": candidate.instruction,
            "source": _source_record(source),
            "width": width,
            "height": height,
            "edit": {
                "bbox": list(candidate.bbox) if candidate.bbox else None,
                "has_mask": candidate.mask is not None,
                "changed_ratio": round(cache.changed_ratio(candidate.source, candidate.target), 5),
                "params": candidate.params,
            },
            "annotators": {**annotators, **self.tool_records},
            "backend": cfg.backend,
            "seed": seed,
            "config_hash": self.config_hash,
            "pipeline_version": PIPELINE_VERSION,
            "src_ext": cfg.image_format,
            "tgt_ext": cfg.image_format,
        }
        if source.partners:
            record["partners"] = [_source_record(partner) for partner in source.partners]
        json.dumps(record)  # fail here, in the worker, on anything a reader could not parse
        return EncodedSample(
            id=sid,
            record=record,
            src=cache.encode(candidate.source),
            tgt=cache.encode(candidate.target),
            mask=mask_bytes,
        )


def _source_record(source: SourceSample) -> dict[str, Any]:
    record: dict[str, Any] = {
        "uri": source.uri,
        "sha256": source.sha256,
        "licence": source.licence,
        "width": source.width,
        "height": source.height,
        # A string, not a list: readers that infer a schema from the first rows (datasets) would type an
        # empty list as null and then fail on the first non-empty one.
        "conversions": ",".join(source.notes),
    }
    if source.frame is not None:
        record.update(frame=source.frame, timestamp=source.timestamp, video_sha256=source.video_sha256)
    return record


def _step_error(name: str, item: WorkItem, error: BaseException) -> StepError:
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    log.error("%s failed on %s: %s", name, item.ref.get("uri"), text)
    return StepError(name, str(item.ref.get("uri")), text)


Step = Callable[[WorkItem], WorkItem]


def apply_step(name: str, step: Step, item: WorkItem) -> WorkItem:
    """Run one step on one item. An exception the step did not decide on is a bug: it becomes the item's
    `error` (with the traceback and the source), and the driver decides whether the run stops."""
    if item.finished:
        return item
    started = time.perf_counter()
    try:
        item = step(item)
    except Exception as error:  # noqa: BLE001 - carried to the driver, never swallowed
        item.error = _step_error(name, item, error)
        item.source = None
    record_step(name, [item], time.perf_counter() - started)
    return item


def expand_item(step: ExpandStep, item: WorkItem) -> list[WorkItem]:
    """The items a video expands into; an exception while expanding is that video's error."""
    started = time.perf_counter()
    try:
        items = list(step(item))
    except Exception as error:  # noqa: BLE001 - carried to the driver, never swallowed
        item.error = _step_error("expand", item, error)
        items = [item]
    record_step("expand", items, time.perf_counter() - started)
    return items


def record_step(name: str, items: list[WorkItem], seconds: float) -> None:
    """For per-stage progress (pipelines.progress): the step's time, shared by the items it ran on, and
    the step that stopped an item (a reject or an error)."""
    for item in items:
        item.timings[name] = seconds / len(items)
        if item.rejected_at is None and (item.rejected or item.error is not None):
            item.rejected_at = name


@dataclass(frozen=True)
class StepSpec:
    """A step not yet built: the driver plans the graph from these without loading any model.

    kind: "map" (one item in, one out), "batch" (a list of items, `resources.batch_size` at a time) or
    "expand" (one item in, any number out). actor: holds a model or a connection pool, so it is built once
    per Ray actor, not per task.
    """

    name: str
    make: Callable[[], Any]
    resources: Resources = Resources()
    run_key: str = ""  # identifies the run, so a worker process reuses a built step across blocks
    actor: bool = False
    kind: str = "map"
    calls_per_actor: int = 1  # threads an actor runs the step in (see MODEL_EDIT_CALLS)


def _holds_a_model(plugin: type[Plugin]) -> bool:
    return bool(plugin.models) or plugin.resources.num_gpus > 0


def step_specs(config: RunConfig, done: frozenset[int] = frozenset()) -> list[StepSpec]:
    """The ordered steps of a run, from its task's declarations: load (or expand a video), one per
    annotator the task reads, edit (hosting the task's tools), and instruct when an MLLM writes."""
    task = load_task(config.task)
    run_key = f"{config.config_hash()}|{config.out}"
    if task.INPUTS == "frame_pair":
        first = StepSpec("expand", partial(ExpandStep, config, done), run_key=run_key, kind="expand")
    else:
        first = StepSpec("load", partial(LoadStep, config, done), run_key=run_key)
    annotate = []
    for name in task.ANNOTATORS:
        plugin = resolve(name, config.backend)
        annotate.append(
            StepSpec(
                f"annotate:{name}",
                partial(AnnotateStep, name, config.backend, config.models_dir),
                plugin.resources,
                run_key,
                actor=True,
                kind="batch",
            )
        )
    tools = [resolve(name, config.backend) for name in task.TOOLS]
    holds_a_model = any(_holds_a_model(tool) for tool in tools)
    calls = MODEL_EDIT_CALLS if holds_a_model else 1
    edit = StepSpec(
        "edit",
        partial(EditStep, config, calls),
        combined_resources([tool.resources for tool in tools]),
        run_key,
        actor=holds_a_model,
        calls_per_actor=calls,
    )
    specs = [first, *annotate, edit]
    if config.instruction_writer == "openai":
        # Network-bound: a fraction of a CPU, one client (and its concurrency limit) per actor.
        instruct = partial(InstructStep, config)
        specs.append(StepSpec("instruct", instruct, Resources(0.25), run_key, actor=True))
    return specs
