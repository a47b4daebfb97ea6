"""The stage graph on Ray Data, and the same steps in a plain loop.

read refs → load → annotate (one actor pool per annotator, sized by the resources the annotator
declares) → edit+encode (→ instruct, an actor pool, when an MLLM writes the instructions), streamed to
the driver, which writes shards (pipelines.runner). Annotators run in actors so a model loads once per
actor, not once per task; load and edit are stateless and run as Ray tasks, which Ray Data fuses with
their neighbours (no object-store hop between them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pipelines.config import RunConfig
from pipelines.items import WorkItem
from pipelines.stages import Step, StepSpec, apply_step, step_specs

# One instance of each step per worker process: built on first use, reused for every row after that.
_STEP_CACHE: dict[tuple[str, str], Step] = {}


def _row_function(spec: StepSpec) -> Callable[[dict[str, Any]], dict[str, Any]]:
    key = (spec.run_key, spec.name)

    def apply(row: dict[str, Any]) -> dict[str, Any]:
        step = _STEP_CACHE.get(key)
        if step is None:
            step = _STEP_CACHE[key] = spec.make()
        return {"item": apply_step(spec.name, step, row["item"])}

    return apply


class _ActorStep:
    """A step in its own actor pool: built once per actor, so a model loads once."""

    def __init__(self, spec: StepSpec) -> None:
        self.name = spec.name
        self.step = spec.make()

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"item": apply_step(self.name, self.step, row["item"])}


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
    if spec.num_gpus > 0:
        most = resources.get("GPU", 0.0) / spec.num_gpus
    else:
        most = resources.get("CPU", 1.0) / max(spec.num_cpus, 0.01)
    return 1, max(1, int(most))


def _cluster_cpus() -> int:
    import ray

    return int(ray.cluster_resources().get("CPU", 1))


def build_dataset(refs: list[dict[str, Any]], config: RunConfig) -> Any:
    import ray.data

    items = [{"item": WorkItem(ref=ref)} for ref in refs]
    dataset = ray.data.from_items(items, override_num_blocks=block_count(len(items), _cluster_cpus()))
    for spec in step_specs(config):
        if spec.num_gpus > 0 or spec.actor:
            dataset = dataset.map(
                _ActorStep,
                fn_constructor_args=(spec,),
                concurrency=config.workers or _actor_pool_bounds(spec),
                num_cpus=spec.num_cpus,
                num_gpus=spec.num_gpus,
            )
        else:
            dataset = dataset.map(_row_function(spec), num_cpus=spec.num_cpus, concurrency=config.workers)
    return dataset


def iterate_ray(refs: list[dict[str, Any]], config: RunConfig) -> Iterator[WorkItem]:
    for row in build_dataset(refs, config).iter_rows():
        yield row["item"]


def iterate_local(refs: list[dict[str, Any]], config: RunConfig) -> Iterator[WorkItem]:
    """The same steps, one item at a time, in this process (benchmarks, debugging)."""
    steps = [(spec.name, spec.make()) for spec in step_specs(config)]
    for ref in refs:
        item = WorkItem(ref=ref)
        for name, step in steps:
            item = apply_step(name, step, item)
        yield item
