"""One run: check inputs, resume, stream items through the graph, commit shards and rejects, account.

Every listed source item ends either as samples in a committed shard or as a row in a rejects table;
`run.json` holds the resolved config and its hash, package versions, counts and timings.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from pipelines.config import PIPELINE_VERSION, RunConfig
from pipelines.graph import iterate_local, iterate_ray
from pipelines.items import WorkItem
from pipelines.resume import scan_run
from pipelines.shards import RejectWriter, RunFolder, ShardWriter
from pipelines.sources import Listing, SourceError, list_sources

log = logging.getLogger(__name__)

VERSIONED_PACKAGES = (
    "numpy",
    "pillow",
    "opencv-contrib-python-headless",
    "ray",
    "webdataset",
    "pyarrow",
    "fsspec",
    "pycocotools",
)


class RunError(Exception):
    """A problem found before any work starts; its message is the one line a user sees."""


@dataclass
class RunSummary:
    out: str
    listed: int = 0
    already_done: int = 0
    read: int = 0
    kept_sources: int = 0
    samples: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    shards: list[str] = field(default_factory=list)
    seconds: float = 0.0
    total_samples: int = 0  # in the folder, this run and earlier ones
    total_rejects: int = 0
    writer_usage: Counter[str] = field(default_factory=Counter)  # instruction-writer requests and tokens

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "listed": self.listed,
            "already_done": self.already_done,
            "read": self.read,
            "kept_sources": self.kept_sources,
            "samples_written": self.samples,
            "rejected": sum(self.rejects.values()),
            "rejects_by_reason": dict(sorted(self.rejects.items())),
            "shards_committed": self.shards,
            "folder_total_samples": self.total_samples,
            "folder_total_rejects": self.total_rejects,
            "instruction_writer": dict(self.writer_usage),
        }


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "step1x-data": PIPELINE_VERSION}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _check_backend(config: RunConfig) -> None:
    if config.backend == "models":
        raise RunError(
            f"backend 'models' is not available for {config.task} in this release; use --backend offline"
        )


def prepare(config: RunConfig) -> tuple[RunFolder, Listing]:
    """All the checks that must fail before any work: task, backend, source, output folder, config."""
    try:
        config.config_hash()  # validates the task and its parameters
    except ValueError as error:
        raise RunError(str(error)) from None
    _check_backend(config)
    try:
        listing = list_sources(config.source, config.labels, config.licence)
    except SourceError as error:
        raise RunError(str(error)) from None
    except (OSError, ValueError) as error:
        raise RunError(f"cannot list source {config.source}: {error}") from None
    folder = RunFolder(config.out)
    try:
        folder.ensure_writable()
    except OSError as error:
        raise RunError(f"--out {config.out} cannot be written: {error}") from None
    run_json = folder.path("run.json")
    if folder.fs.exists(run_json):
        with folder.fs.open(run_json, "rt") as handle:
            previous = json.load(handle)
        if previous.get("task") != config.task or previous.get("config_hash") != config.config_hash():
            raise RunError(
                f"--out {config.out} holds a run of {previous.get('task')} with config hash "
                f"{previous.get('config_hash')}; this run is {config.task} with {config.config_hash()}. "
                "Resume needs the same task and content settings: choose another --out."
            )
    return folder, listing


def _init_ray(config: RunConfig) -> None:
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # an embedded local Ray needs no token
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if config.address:
        ray.init(address=config.address, **kwargs)
    elif os.environ.get("RAY_ADDRESS"):
        ray.init(**kwargs)  # inside `ray job submit`, or a cluster named by the environment
    else:
        ray.init(address="local", include_dashboard=False, **kwargs)
    import ray.data

    # Imported, ray.data configures its own loggers; quiet them after that: the runner reports progress.
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the runner shows one progress line of its own


def _write_run_json(
    folder: RunFolder, config: RunConfig, summary: RunSummary, started: float, status: str, executor: str
) -> None:
    path = folder.path("run.json")
    history: list[dict[str, Any]] = []
    if folder.fs.exists(path):
        with folder.fs.open(path, "rt") as handle:
            history = json.load(handle).get("runs", [])
    if status == "running":
        # An entry still "running" when a new run starts belongs to a run that was killed.
        history = [{**e, "status": "interrupted"} if e.get("status") == "running" else e for e in history]
    elif history and history[-1].get("status") == "running":
        history = history[:-1]  # this run's own "running" entry, replaced by its result
    entry = {
        "status": status,
        "executor": executor,
        "host": platform.node(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(summary.seconds, 3),
        "samples_per_second": round(summary.samples_per_second, 3),
        "counts": summary.as_dict(),
    }
    document = {
        "task": config.task,
        "config_hash": config.config_hash(),
        "config": config.to_dict(),
        "content_settings": config.content_settings(),
        "versions": package_versions(),
        "counts": summary.as_dict(),
        "runs": [*history, entry],
    }
    staged = folder.staging_file("run.json")
    staged.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=list), encoding="utf-8")
    folder.commit(staged, "run.json")


def _reject_row(item: WorkItem, task: str) -> dict[str, Any]:
    return {
        "source_uri": item.ref["uri"],
        "source_sha256": item.sha256,
        "task": task,
        "reason": item.reject_reason,
        "detail": item.reject_detail[:2000],
    }


def run(
    config: RunConfig,
    executor: str = "ray",
    on_progress: Callable[[RunSummary, int], None] | None = None,
    on_item: Callable[[WorkItem, RunSummary, int], None] | None = None,
) -> RunSummary:
    """`on_progress(summary, todo)` after each item; `on_item(item, summary, todo)` too, with the item
    itself (its step timings: pipelines.progress)."""
    started = time.time()
    folder, listing = prepare(config)
    state = scan_run(folder)
    summary = RunSummary(out=config.out, listed=len(listing.refs) + len(listing.rejects))
    refs = [ref for ref in listing.refs if ref["uri"] not in state.done_uris]
    listing_rejects = [row for row in listing.rejects if row["source_uri"] not in state.done_uris]
    summary.already_done = summary.listed - len(refs) - len(listing_rejects)
    if config.limit is not None:
        refs = refs[: config.limit]
    todo = len(refs) + len(listing_rejects)

    shards = ShardWriter(folder, state.next_shard, config.shard_max_samples, config.shard_max_bytes)
    rejects = RejectWriter(folder, state.next_rejects)
    for row in listing_rejects:
        rejects.add({**row, "source_sha256": None, "task": config.task})
        summary.rejects[row["reason"]] += 1
        summary.read += 1
    _write_run_json(folder, config, summary, started, "running", executor)

    items: Iterator[WorkItem]
    if executor == "ray":
        _init_ray(config)
        items = iterate_ray(refs, config) if refs else iter(())
    elif executor == "local":
        items = iterate_local(refs, config)
    else:
        raise RunError(f"unknown executor {executor!r} (ray or local)")

    seen_ids = set(state.sample_ids)
    for item in items:
        summary.read += 1
        summary.writer_usage.update(item.usage)
        if not item.rejected:
            fresh = [sample for sample in item.samples if sample.id not in seen_ids]
            if not fresh:
                item.reject("duplicate_content", "every sample of this source was already written")
        if item.rejected:
            rejects.add(_reject_row(item, config.task))
            summary.rejects[item.reject_reason] += 1
        else:
            committed_before = len(shards.committed)
            shards.add_source(fresh)
            seen_ids.update(sample.id for sample in fresh)
            summary.kept_sources += 1
            summary.samples += len(fresh)
            if len(shards.committed) > committed_before:
                rejects.flush()  # keep the rejects as durable as the shards they sit beside
        summary.seconds = time.time() - started
        if on_item:
            on_item(item, summary, todo)
        if on_progress:
            on_progress(summary, todo)
    shards.commit()
    rejects.flush()
    summary.shards = shards.committed
    summary.seconds = time.time() - started
    summary.total_samples = state.samples + summary.samples
    summary.total_rejects = state.rejects + sum(summary.rejects.values())
    _write_run_json(folder, config, summary, started, "finished", executor)
    return summary
