"""The stage graph on Ray Data, and the same steps in a plain loop.

read refs → load (or expand a video into frame pairs) → annotate (one actor pool per annotator, sized by
the resources the annotator declares, called on batches of its declared size) → edit+encode (an actor
pool with the declared GPUs when the task's tools hold models) → instruct (an actor pool, when an MLLM
writes the instructions), streamed to the driver, which writes shards (pipelines.runner). Annotators run
in actors so a model loads once per actor, not once per task; load and a model-free edit are stateless and
run as Ray tasks, which Ray Data fuses with their neighbours (no object-store hop between them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

import numpy as np

from pipelines.config import RunConfig
from pipelines.crashes import CrashGuard, new_ledger
from pipelines.items import WorkItem
from pipelines.stages import StepSpec, apply_step, expand_item, step_specs

# One instance of each step per worker process: built on first use, reused for every row after that.
_STEP_CACHE: dict[tuple[str, str], Any] = {}


def _cached(spec: StepSpec) -> Any:
    key = (spec.run_key, spec.name)
    step = _STEP_CACHE.get(key)
    if step is None:
        step = _STEP_CACHE[key] = spec.make()
    return step


def _row_function(spec: StepSpec, ledger: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    guard = CrashGuard(ledger, spec.name)

    def apply(row: dict[str, Any]) -> dict[str, Any]:
        return {"item": guard.one(row["item"], partial(apply_step, spec.name, _cached(spec)))}

    return apply


def _expand_function(spec: StepSpec, ledger: Any) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    guard = CrashGuard(ledger, spec.name)

    def expand(row: dict[str, Any]) -> list[dict[str, Any]]:
        items = guard.one(row["item"], partial(expand_item, _cached(spec)))
        return [{"item": item} for item in (items if isinstance(items, list) else [items])]

    return expand


class _ActorStep:
    """A step in its own actor pool: built once per actor, so a model loads once."""

    def __init__(self, spec: StepSpec, ledger: Any) -> None:
        self.name = spec.name
        self.step = spec.make()
        self.guard = CrashGuard(ledger, spec.name)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"item": self.guard.one(row["item"], partial(apply_step, self.name, self.step))}


class _ActorBatchStep:
    """An annotator in its own actor pool, called on batches of items."""

    def __init__(self, spec: StepSpec, ledger: Any) -> None:
        self.step = spec.make()
        self.guard = CrashGuard(ledger, spec.name)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = self.guard.batch(list(batch["item"]), self.step)
        column = np.empty(len(items), dtype=object)
        column[:] = items
        return {"item": column}


MAX_ROWS_PER_BLOCK = 8


def block_count(items: int, cpus: int) -> int:
    """How many blocks (Ray tasks) the sources are cut into.

    A block is the unit Ray schedules, retries and streams back. One source per block starts results
    flowing soonest and keeps every CPU busy on a small run, but each task costs Ray tens of milliseconds
    (about 40 % of a 1024 px tone source, measured in bench/engine_throughput.py); 8 sources per block make
    that cost negligible. So: blocks of up to 8 sources, while leaving at least 4 blocks per CPU.
    """
    rows_per_block = max(1, min(MAX_ROWS_PER_BLOCK, items // (4 * max(cpus, 1))))
    return max(1, -(-items // rows_per_block))


def _actor_pool_bounds(spec: StepSpec) -> tuple[int, int]:
    """An autoscaling pool: one actor at first, as many as the cluster's resources can hold."""
    import ray

    resources = ray.cluster_resources()
    if spec.resources.num_gpus > 0:
        most = resources.get("GPU", 0.0) / spec.resources.num_gpus
    else:
        most = resources.get("CPU", 1.0) / max(spec.resources.num_cpus, 0.01)
    return 1, max(1, int(most))


def _actor_pool(spec: StepSpec, workers: int | None) -> Any:
    """The actor pool of a one-item step: ``workers`` actors if given, else autoscaling; each actor runs
    the step's declared number of calls at once, in threads."""
    from ray.data import ActorPoolStrategy

    low, high = (workers, workers) if workers else _actor_pool_bounds(spec)
    return ActorPoolStrategy(
        min_size=low,
        max_size=high,
        max_concurrent_calls_per_actor=spec.calls_per_actor,
        enable_true_multi_threading=spec.calls_per_actor > 1,
    )


def _cluster_cpus() -> int:
    import ray

    return int(ray.cluster_resources().get("CPU", 1))


def _ray_resources(spec: StepSpec) -> dict[str, Any]:
    options: dict[str, Any] = {"num_cpus": spec.resources.num_cpus}
    if spec.resources.num_gpus:
        options["num_gpus"] = spec.resources.num_gpus
    if spec.resources.memory_gb:
        options["memory"] = int(spec.resources.memory_gb * 2**30)
    return options


def build_dataset(refs: list[dict[str, Any]], config: RunConfig, done: frozenset[int]) -> Any:
    import ray.data

    items = [{"item": WorkItem(ref=ref)} for ref in refs]
    dataset = ray.data.from_items(items, override_num_blocks=block_count(len(items), _cluster_cpus()))
    ledger = new_ledger()  # bounds the retries of a source that crashes its worker (pipelines.crashes)
    for spec in step_specs(config, done):
        options = _ray_resources(spec)
        if spec.kind == "expand":
            dataset = dataset.flat_map(_expand_function(spec, ledger), concurrency=config.workers, **options)
        elif spec.kind == "batch":
            dataset = dataset.map_batches(
                _ActorBatchStep,
                fn_constructor_args=(spec, ledger),
                batch_size=spec.resources.batch_size,
                batch_format="numpy",
                concurrency=config.workers or _actor_pool_bounds(spec),
                **options,
            )
        elif spec.actor:
            dataset = dataset.map(
                _ActorStep,
                fn_constructor_args=(spec, ledger),
                compute=_actor_pool(spec, config.workers),
                **options,
            )
        else:
            dataset = dataset.map(_row_function(spec, ledger), concurrency=config.workers, **options)
    return dataset


def iterate_ray(refs: list[dict[str, Any]], config: RunConfig, done: frozenset[int]) -> Iterator[WorkItem]:
    for row in build_dataset(refs, config, done).iter_rows():
        yield row["item"]


def iterate_local(refs: list[dict[str, Any]], config: RunConfig, done: frozenset[int]) -> Iterator[WorkItem]:
    """The same steps in this process, annotators in batches of their declared size (benchmarks,
    debugging, `--executor local`)."""
    stream: Iterable[WorkItem] = (WorkItem(ref=ref) for ref in refs)
    for spec in step_specs(config, done):
        stream = _local_stage(spec, spec.make(), stream)
    yield from stream


def _local_stage(spec: StepSpec, step: Any, items: Iterable[WorkItem]) -> Iterator[WorkItem]:
    if spec.kind == "expand":
        for item in items:
            yield from expand_item(step, item)
    elif spec.kind == "batch":
        batch: list[WorkItem] = []
        for item in items:
            batch.append(item)
            if len(batch) == spec.resources.batch_size:
                yield from step(batch)
                batch = []
        yield from step(batch)
    else:
        for item in items:
            yield apply_step(spec.name, step, item)
