"""The pipeline's steps, each a small callable with one job: load → annotate → edit+encode.

The same step objects run inside Ray Data (pipelines.graph) and in a plain loop (pipelines.graph's local
executor and the benchmarks), so the two paths cannot drift apart. `apply_step` passes rejected items
through untouched; the first step that rejects an item records why.
"""

from __future__ import annotations

import io
import json
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import cv2
import numpy as np
from PIL import Image

from annotators.inpaint import ClassicalInpainter
from annotators.objects import ObjectAnnotator
from pipelines.config import PIPELINE_VERSION, RunConfig, sample_id, source_seed
from pipelines.decode import DecodeError
from pipelines.instruct import InstructStep
from pipelines.items import EncodedSample, WorkItem
from pipelines.load import load_source
from tasks.records import Candidate, Skip, SourceSample
from tasks.registry import GEDIT_KEYS, load_task
from tasks.tools import Tools

log = logging.getLogger(__name__)

CHANGE_THRESHOLD = 8  # a pixel counts as changed when a channel moved by more than this (of 255)


class LoadStep:
    """Read, hash, decode and normalise the source; attach labels; downscale oversize photos."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config

    def __call__(self, item: WorkItem) -> WorkItem:
        try:
            source = load_source(item.ref, self.config.decode)
        except DecodeError as error:
            item.sha256 = error.sha256
            return item.reject(error.reason, error.detail)
        item.sha256 = source.sha256
        longest = max(source.width, source.height)
        if longest > self.config.max_side:
            scale = self.config.max_side / longest
            size = (round(source.width * scale), round(source.height * scale))
            source.image = cv2.resize(source.image, size, interpolation=cv2.INTER_AREA)
            for label in source.labels:
                if label.mask is not None:
                    label.mask = (
                        cv2.resize(label.mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
                    )
                label.bbox = tuple(round(v * scale) for v in label.bbox)
            source.notes.append(f"downscaled_from_{longest}")
        item.source = source
        return item


class AnnotateStep:
    """Run one annotator over the source (the offline backend: labels, else saliency + GrabCut)."""

    def __init__(self, name: str) -> None:
        if name != "objects":
            raise ValueError(f"unknown annotator {name!r}")
        self.name = name
        self.annotator = ObjectAnnotator()

    def __call__(self, item: WorkItem) -> WorkItem:
        item.annotators[self.name] = self.annotator.describe(item.source)
        self.annotator(item.source)
        return item


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


class EditStep:
    """The task's own logic, then encoding: what leaves this step is bytes, ready to be written."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.task = load_task(config.task)
        self.params = config.task_params_resolved()
        self.config_hash = config.config_hash()
        self.tools = Tools(inpaint=ClassicalInpainter())

    def __call__(self, item: WorkItem) -> WorkItem:
        source = item.source
        seed = source_seed(self.config.seed, source.sha256, self.config.task)
        result = self.task.make_pairs(source, self.params, self.tools, seed)
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
        mask_bytes = None
        if candidate.mask is not None:
            mask_bytes = encode_image((candidate.mask * 255).astype(np.uint8), "png", 0)
        record = {
            "id": sid,
            "task": cfg.task,
            "gedit_key": GEDIT_KEYS[cfg.task],
            "variant": candidate.variant,
            "instruction": candidate.instruction,
            "source": {
                "uri": source.uri,
                "sha256": source.sha256,
                "licence": source.licence,
                "width": source.width,
                "height": source.height,
                # A string, not a list: readers that infer a schema from the first rows (datasets)
                # would type an empty list as null and then fail on the first non-empty one.
                "conversions": ",".join(source.notes),
            },
            "width": width,
            "height": height,
            "edit": {
                "bbox": list(candidate.bbox) if candidate.bbox else None,
                "has_mask": candidate.mask is not None,
                "changed_ratio": round(cache.changed_ratio(candidate.source, candidate.target), 5),
                "params": candidate.params,
            },
            "annotators": {
                **annotators,
                **(
                    {"inpaint": {"backend": self.tools.inpaint.name, "version": self.tools.inpaint.version}}
                    if candidate.mask is not None
                    else {}
                ),
            },
            "backend": cfg.backend,
            "seed": seed,
            "config_hash": self.config_hash,
            "pipeline_version": PIPELINE_VERSION,
            "src_ext": cfg.image_format,
            "tgt_ext": cfg.image_format,
        }
        json.dumps(record)  # fail here, in the worker, on anything a reader could not parse
        return EncodedSample(
            id=sid,
            record=record,
            src=cache.encode(candidate.source),
            tgt=cache.encode(candidate.target),
            mask=mask_bytes,
        )


Step = Callable[[WorkItem], WorkItem]


def apply_step(name: str, step: Step, item: WorkItem) -> WorkItem:
    """Run one step; an unexpected error on one item becomes that item's reject, not the run's end.

    The reason names the step (`edit_error`, ...) and the detail holds the exception, so such rejects are
    counted in the summary and can be found in the rejects table.
    """
    if item.rejected:
        return item
    started = time.perf_counter()
    try:
        item = step(item)
    except Exception as error:  # noqa: BLE001 - deliberately broad: one photo must not stop the run
        reason = name.split(":")[0] + "_error"
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()
        log.warning("%s failed on %s: %s", name, item.ref.get("uri"), detail)
        item = item.reject(reason, detail)
    # per-stage progress (pipelines.progress): what each step cost, and which one rejected the item
    item.timings[name] = time.perf_counter() - started
    if item.rejected:
        item.rejected_at = name
    return item


@dataclass(frozen=True)
class StepSpec:
    """A step not yet built: the driver plans the graph from these without loading any model."""

    name: str
    make: Callable[[], Step]
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    run_key: str = ""  # identifies the run, so a worker process reuses a built step across blocks
    actor: bool = False  # holds a model or a connection pool: build once per actor, not per process


def step_specs(config: RunConfig) -> list[StepSpec]:
    """The ordered steps for a run's task: load, one per annotator the task reads, edit."""
    task = load_task(config.task)
    run_key = f"{config.config_hash()}|{config.out}"
    annotate = [
        StepSpec(
            f"annotate:{name}",
            partial(AnnotateStep, name),
            ObjectAnnotator.resources.num_cpus,
            ObjectAnnotator.resources.num_gpus,
            run_key,
            actor=True,
        )
        for name in task.ANNOTATORS
    ]
    specs = [
        StepSpec("load", partial(LoadStep, config), run_key=run_key),
        *annotate,
        StepSpec("edit", partial(EditStep, config), run_key=run_key),
    ]
    if config.instruction_writer == "openai":
        # Network-bound: a fraction of a CPU, one client (and its concurrency limit) per actor.
        specs.append(StepSpec("instruct", partial(InstructStep, config), 0.25, 0.0, run_key, actor=True))
    return specs
