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
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from annotators.registry import PluginUnavailable, resolve
from pipelines.config import PIPELINE_VERSION, RunConfig
from pipelines.graph import iterate_local, iterate_ray
from pipelines.items import WorkItem
from pipelines.lock import RunLock, RunLocked
from pipelines.pairing import assign_partners, hash_refs_local, hash_refs_ray
from pipelines.resume import ERROR_REASON_PREFIX, done_key, location_key, scan_run
from pipelines.shards import RejectWriter, RunFolder, ShardWriter
from pipelines.sources import Listing, SourceError, list_sources, store_access
from tasks.contract import partner_count
from tasks.registry import load_task

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
    errors: int = 0  # items a step failed on (a bug, not a decision), counted under --max-error-rate
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
            "errors": self.errors,
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


def check_plugins(config: RunConfig) -> None:
    """Every annotator and tool of the run can be built here with its backend: packages present, model
    folders present. Fails with one line naming what is missing, before any work starts."""
    task = load_task(config.task)
    for name in (*task.ANNOTATORS, *task.TOOLS):
        try:
            resolve(name, config.backend).check(config.models_dir)
        except PluginUnavailable as error:
            raise RunError(str(error)) from None


def check_out_outlives_job(out: str) -> None:
    """Under `ray job submit --working-dir`, the job runs in the cluster's copy of that folder, deleted
    with the cluster: a relative --out would resolve into it and be lost."""
    job = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    if not job or "://" in out or os.path.isabs(out):
        return
    if json.loads(job).get("runtime_env", {}).get("working_dir"):
        raise RunError(
            f"--out {out} is a relative path, and this Ray job runs in a temporary copy of its working "
            f"directory ({os.getcwd()}) that is deleted with the cluster: give an absolute path on storage "
            "that outlives the job (/mnt/shared/runs/r1) or a URL (s3://bucket/runs/r1)"
        )


def prepare(config: RunConfig) -> tuple[RunFolder, Listing]:
    """All the checks that must fail before any work: task, backend, source, output folder, config."""
    check_out_outlives_job(config.out)
    try:
        config.config_hash()  # validates the task and its parameters
    except ValueError as error:
        raise RunError(str(error)) from None
    check_plugins(config)
    videos = load_task(config.task).INPUTS == "frame_pair"
    try:
        listing = list_sources(config.source, config.labels, config.licence, videos=videos)
    except SourceError as error:
        raise RunError(str(error)) from None
    except (OSError, ValueError) as error:
        raise RunError(f"cannot list source {config.source}: {error}") from None
    try:
        with store_access("--out", config.out):
            folder = RunFolder(config.out)
            folder.ensure_writable()
            previous = _previous_run(folder)
    except SourceError as error:
        raise RunError(str(error)) from None
    except OSError as error:
        raise RunError(f"--out {config.out} cannot be written: {error}") from None
    if previous and (
        previous.get("task") != config.task or previous.get("config_hash") != config.config_hash()
    ):
        raise RunError(
            f"--out {config.out} holds a run of {previous.get('task')} with config hash "
            f"{previous.get('config_hash')}; this run is {config.task} with {config.config_hash()}. "
            "Resume needs the same task and content settings: choose another --out."
        )
    return folder, listing


def _previous_run(folder: RunFolder) -> dict[str, Any] | None:
    path = folder.path("run.json")
    if not folder.fs.exists(path):
        return None
    with folder.fs.open(path, "rt") as handle:
        return json.load(handle)


def _init_ray(config: RunConfig) -> None:
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # an embedded local Ray needs no token
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    address = config.address or os.environ.get("RAY_ADDRESS")
    try:
        if address:
            ray.init(address=address, **kwargs)  # a cluster, or inside `ray job submit`
        else:
            ray.init(address="local", include_dashboard=False, **kwargs)
    except Exception as error:  # noqa: BLE001 - Ray raises many types here; each becomes one line
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if address:
            raise RunError(
                f"cannot connect to the Ray cluster at {address} ({reason}): check that it is running "
                "(`ray status --address ...`), or leave --address and RAY_ADDRESS unset for a local Ray"
            ) from None
        raise RunError(
            f"the local Ray did not start ({type(error).__name__}: {reason}). Try again on a less loaded "
            "machine, start one yourself with `ray start --head` and pass --address auto, or run without "
            "Ray: --executor local"
        ) from None
    import ray.data

    # Imported, ray.data configures its own loggers; quiet them after that: the runner reports progress.
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the runner shows one progress line of its own


def _write_run_json(
    folder: RunFolder,
    config: RunConfig,
    summary: RunSummary,
    started: float,
    status: str,
    executor: str,
    first: bool = False,
) -> None:
    """Record this run in run.json: `first` appends its entry, later calls (progress after each commit,
    the result) replace it. The folder's lock makes the last entry this run's own."""
    path = folder.path("run.json")
    history: list[dict[str, Any]] = []
    if folder.fs.exists(path):
        with folder.fs.open(path, "rt") as handle:
            history = json.load(handle).get("runs", [])
    if first:
        # An entry still "running" when a new run starts belongs to a run that was killed.
        history = [{**e, "status": "interrupted"} if e.get("status") == "running" else e for e in history]
    elif history:
        history = history[:-1]
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
    try:
        staged.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=list), encoding="utf-8")
        folder.commit(staged, "run.json")
    except OSError:
        staged.unlink(missing_ok=True)
        raise


class WriteFailed(Exception):
    """An OSError from writing the run folder, told apart from errors of the executor it runs beside."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


@contextmanager
def _writing() -> Iterator[None]:
    try:
        yield
    except OSError as error:
        raise WriteFailed(error) from error


class OutputError(RunError):
    """The run folder stopped taking writes (a full disk, a quota, a lost mount)."""


def output_error(config: RunConfig, error: OSError) -> OutputError:
    where = f" ({error.filename})" if error.filename else ""
    reason = error.strerror or f"{type(error).__name__}: {error}"
    return OutputError(
        f"cannot write to --out {config.out}: {reason}{where}. Every shard committed before this is kept and "
        "nothing is half-committed; make room (or fix the folder) and run the same command again to resume."
    )


def _reject_row(item: WorkItem, task: str) -> dict[str, Any]:
    return {
        "source_uri": item.ref["uri"],
        "source_sha256": item.sha256,
        "task": task,
        "reason": item.reject_reason,
        "detail": item.reject_detail[:2000],
    }


def work_items(
    refs: list[dict[str, Any]], config: RunConfig, executor: str, done: frozenset[int]
) -> Iterator[WorkItem]:
    """The run's work items through its graph, on Ray or in this process, partners assigned first."""
    task = load_task(config.task)
    if executor == "ray":
        _init_ray(config)
    partners = partner_count(task, config.backend)
    if partners and refs:
        hash_refs = hash_refs_ray if executor == "ray" else hash_refs_local
        refs = assign_partners(refs, partners, config.seed, hash_refs)
    if executor == "ray":
        return iterate_ray(refs, config, done) if refs else iter(())
    return iterate_local(refs, config, done)


def run(
    config: RunConfig,
    executor: str = "ray",
    on_progress: Callable[[RunSummary, int], None] | None = None,
    on_item: Callable[[WorkItem, RunSummary, int], None] | None = None,
) -> RunSummary:
    """Make the run's samples. Raises RunError before any work for bad settings or a folder another run
    holds, and after committing everything already made when a step fails on a source (or, under
    --max-error-rate, when errors exceed that rate at the end) or when the folder stops taking writes.
    `on_progress(summary, todo)` after each new item; `on_item(item, summary, todo)` too, with the item
    itself (its step timings, for pipelines.progress)."""
    started = time.time()
    if executor not in ("ray", "local"):
        raise RunError(f"unknown executor {executor!r} (ray or local)")
    folder, listing = prepare(config)
    lock = RunLock(folder)
    try:
        lock.acquire()
    except RunLocked as error:
        raise RunError(str(error)) from None
    try:
        return _run_locked(config, executor, on_progress, on_item, folder, listing, started)
    finally:
        lock.release()


def _run_locked(
    config: RunConfig,
    executor: str,
    on_progress: Callable[[RunSummary, int], None] | None,
    on_item: Callable[[WorkItem, RunSummary, int], None] | None,
    folder: RunFolder,
    listing: Listing,
    started: float,
) -> RunSummary:
    state = scan_run(folder)
    summary = RunSummary(out=config.out, listed=len(listing.refs) + len(listing.rejects))
    # Listing rejects (an unreadable tar, a link member) have no content hash: they are matched by location.
    listing_rejects = [
        row for row in listing.rejects if location_key(row["source_uri"]) not in state.done_sha256
    ]
    summary.already_done = len(listing.rejects) - len(listing_rejects)
    done = frozenset(done_key(sha) for sha in state.done_sha256)
    todo = len(listing.refs) + len(listing_rejects)

    shards = ShardWriter(folder, state.next_shard, config.shard_max_samples, config.shard_max_bytes)
    rejects = RejectWriter(folder, state.next_rejects)

    def record(status: str, first: bool = False) -> None:
        summary.shards = list(shards.committed)
        summary.seconds = time.time() - started
        summary.total_samples = state.samples + summary.samples
        summary.total_rejects = state.rejects + sum(summary.rejects.values())
        with _writing():
            _write_run_json(folder, config, summary, started, status, executor, first)

    def finish(status: str) -> None:
        with _writing():
            shards.commit()
            rejects.flush()
        record(status)

    items = work_items(listing.refs, config, executor, done)
    seen_ids = set(state.sample_ids)
    new_items = 0
    try:
        for row in listing_rejects:
            with _writing():
                rejects.add({**row, "source_sha256": None, "task": config.task})
            summary.rejects[row["reason"]] += 1
            summary.read += 1
        record("running", first=True)
        for item in items:
            if item.already_done:
                summary.already_done += 1
                continue
            summary.read += 1
            new_items += 1
            summary.writer_usage.update(item.usage)
            if item.error is not None:
                summary.errors += 1
                if config.max_error_rate is None:
                    finish("failed")
                    raise RunError(
                        f"{item.error}\nThe samples made before it are committed; fix the cause and run "
                        "again to resume, or pass --max-error-rate R to record such failures and go on."
                    )
                # Recorded so every source stays accounted for; resume retries them (see pipelines.resume).
                item.reject(f"{ERROR_REASON_PREFIX}{item.error.step}", item.error.traceback)
            elif not item.rejected:
                fresh = [sample for sample in item.samples if sample.id not in seen_ids]
                if not fresh:
                    item.reject("duplicate_content", "every sample of this source was already written")
            if item.rejected:
                with _writing():
                    rejects.add(_reject_row(item, config.task))
                summary.rejects[item.reject_reason] += 1
            else:
                committed_before = len(shards.committed)
                with _writing():
                    shards.add_source(fresh)
                seen_ids.update(sample.id for sample in fresh)
                summary.kept_sources += 1
                summary.samples += len(fresh)
                if len(shards.committed) > committed_before:
                    with _writing():
                        rejects.flush()  # keep the rejects as durable as the shards they sit beside
                    # run.json as of this commit, so that a run killed later leaves its true count.
                    in_open_shard = summary.samples - shards.committed_samples
                    summary.samples -= in_open_shard
                    record("running")
                    summary.samples += in_open_shard
            summary.seconds = time.time() - started
            if on_item:
                on_item(item, summary, todo)
            if on_progress:
                on_progress(summary, todo)
            if config.limit is not None and new_items >= config.limit:
                break
        rate = config.max_error_rate
        failed = rate is not None and summary.errors > rate * max(summary.read, 1)
        finish("failed" if failed else "finished")
    except WriteFailed as failure:
        shards.discard()
        summary.samples = shards.committed_samples  # the open shard's samples were not written
        with suppress(WriteFailed):  # the folder may refuse the record of its own failure too
            record("failed")
        raise output_error(config, failure.error) from None
    finally:
        # Stop the executor now, whether the loop finished, broke off or failed: a stream left open keeps
        # Ray Data's threads and tasks running until the interpreter tears them down.
        close = getattr(items, "close", None)
        if close is not None:
            close()
    if failed:
        raise RunError(
            f"{summary.errors} of {summary.read} sources failed with an error, more than --max-error-rate "
            f"{config.max_error_rate}; their tracebacks are in the rejects table (reason error:STEP)"
        )
    return summary
