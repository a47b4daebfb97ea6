"""`step1x-data filter RUN`: judge every committed sample of a run, score it in the manifests, write a view.

Steps, one job each: read the manifests and tars; judge each sample (heuristic or MLLM, threads bounded) and
flag near-duplicates across the run; write the judge columns into every shard manifest (replaced whole,
images untouched); keep or drop each sample at the thresholds, counting every drop reason; write the view.

Changing thresholds never calls the judge again: rows already scored by the same judge are reused from the
manifest, and the MLLM judge's answers are in its on-disk cache. Rows that failed are judged again (a timeout
may have passed; an unparseable answer comes back from the cache at no cost).
"""

from __future__ import annotations

import io
import json
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import click
import numpy as np
import pyarrow as pa
import yaml
from PIL import Image
from rich.console import Console

from annotators.judge.heuristic import HeuristicJudge, NearDuplicateIndex, Signature
from annotators.judge.result import JudgeResult
from annotators.mllm.client import MLLMClient, MLLMConfig, served_model
from annotators.mllm.judge import VIEScoreJudge
from pipelines.shards import RunFolder
from pipelines.views import (
    commit_json,
    commit_parquet,
    iter_tar_samples,
    manifest_paths,
    read_table,
    write_view,
)

JUDGE_COLUMNS = ["judge", "sc", "pq", "o", "judge_status", "judge_reason", "judge_details", "near_dup_of"]
JUDGE_SCHEMA = pa.schema(
    [
        ("judge", pa.string()),
        ("sc", pa.float64()),
        ("pq", pa.float64()),
        ("o", pa.float64()),
        ("judge_status", pa.string()),
        ("judge_reason", pa.string()),
        ("judge_details", pa.string()),
        ("near_dup_of", pa.string()),
    ]
)
REJECTED_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("shard", pa.string()),
        ("task", pa.string()),
        ("reason", pa.string()),
        ("sc", pa.float64()),
        ("pq", pa.float64()),
        ("o", pa.float64()),
    ]
)

console = Console(stderr=True)
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Thresholds:
    min_sc: float = 0.0
    min_pq: float = 0.0
    min_o: float = 0.0


@dataclass
class ThresholdTable:
    """CLI thresholds as the default, overridden key by key per task from a YAML file:

    default: {min_o: 6.0}            # optional, overrides the CLI's values for every task
    tone_transformation: {min_sc: 5.0, min_pq: 6.5}
    """

    default: Thresholds
    per_task: dict[str, Thresholds] = field(default_factory=dict)

    @classmethod
    def load(cls, default: Thresholds, path: Path | None) -> ThresholdTable:
        if path is None:
            return cls(default)
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise click.BadParameter(f"{path}: expected a mapping of task -> thresholds")
        fields = set(Thresholds.__dataclass_fields__)

        def parse(task: str, values: object, base: Thresholds) -> Thresholds:
            if not isinstance(values, dict) or not set(values) <= fields:
                raise click.BadParameter(f"{path}: {task}: keys must be among {sorted(fields)}")
            return replace(base, **{k: float(v) for k, v in values.items()})

        base = parse("default", data.pop("default"), default) if "default" in data else default
        return cls(base, {task: parse(task, values, base) for task, values in data.items()})

    def for_task(self, task: str) -> Thresholds:
        return self.per_task.get(task, self.default)

    def to_record(self) -> dict[str, Any]:
        return {"default": asdict(self.default), **{t: asdict(v) for t, v in self.per_task.items()}}


# The heuristic judge's thresholds per task, calibrated against pairs labelled by eye (bench/RESULTS.md).
CALIBRATED_THRESHOLDS = Path(__file__).resolve().parents[1] / "annotators" / "judge" / "thresholds.yaml"


def thresholds_file(option: str | None, judge_kind: str) -> Path | None:
    """The YAML that --thresholds names; by default the calibrated one, for the heuristic judge when no
    --min-* was given on the command line (those then apply to every task, as the user asked)."""
    if option is not None:
        if option == "none":
            return None
        path = Path(option)
        if not path.is_file():
            raise click.BadParameter(f"{option}: no such file", param_hint="--thresholds")
        return path
    context = click.get_current_context()
    explicit = any(
        context.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
        for name in ("min_sc", "min_pq", "min_o")
    )
    return CALIBRATED_THRESHOLDS if judge_kind == "heuristic" and not explicit else None


def decision(row: dict[str, Any], limits: Thresholds, keep_near_dups: bool) -> str | None:
    """None to keep the sample, else the reason it is dropped."""
    if row["judge_status"] != "ok":
        return "judge_failed"
    if row["near_dup_of"] and not keep_near_dups:
        return "near_duplicate"
    for score, limit in (("sc", limits.min_sc), ("pq", limits.min_pq), ("o", limits.min_o)):
        if row[score] < limit:
            return f"below_min_{score}"
    return None


def _decode(data: bytes, mode: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert(mode))


def _member(members: dict[str, Any], stem: str) -> bytes:
    for ext in ("jpg", "png"):
        if f"{stem}.{ext}" in members:
            return members[f"{stem}.{ext}"]
    raise KeyError(f"sample {members['__key__']} has no {stem}.jpg or {stem}.png")


@dataclass
class Sample:
    """One sample of a shard: its tar members as stored, and its images decoded once (the near-duplicate
    signature needs them for every sample, the heuristic judge again)."""

    members: dict[str, Any]
    source: np.ndarray  # HxWx3 uint8 RGB
    target: np.ndarray

    @classmethod
    def read(cls, members: dict[str, Any]) -> Sample:
        source = _decode(_member(members, "src"), "RGB")
        target = _decode(_member(members, "tgt"), "RGB")
        if source.shape != target.shape:
            raise ValueError(f"source {source.shape} and target {target.shape} differ in size")
        return cls(members, source, target)

    @property
    def key(self) -> str:
        return self.members["__key__"]


class SampleJudge(Protocol):
    name: str

    def __call__(self, sample: Sample) -> JudgeResult: ...


class HeuristicSampleJudge:
    def __init__(self) -> None:
        self._judge = HeuristicJudge()
        self.name = self._judge.name

    def __call__(self, sample: Sample) -> JudgeResult:
        instruction = json.loads(sample.members["json"]).get("instruction") or {}
        return self._judge.judge(sample.source, sample.target, instruction)


class MLLMSampleJudge:
    def __init__(self, client: MLLMClient, language: str) -> None:
        self._judge = VIEScoreJudge(client, language=language)  # type: ignore[arg-type]
        self.name = self._judge.name

    def __call__(self, sample: Sample) -> JudgeResult:
        # The stored files go as they are; the client re-encodes them to its bounded JPEG only if needed.
        instruction = json.loads(sample.members["json"]).get("instruction") or {}
        return self._judge.judge(_member(sample.members, "src"), _member(sample.members, "tgt"), instruction)


def bounded_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """Like executor.map, in order, but with at most 2*workers items in flight (images are large)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@dataclass
class FilterReport:
    read: int
    kept: int
    judged: int  # samples sent to the judge this time (the rest reused the manifest's scores)
    dropped: dict[str, int]
    view: str
    seconds: float
    judge: dict[str, Any]


def _judged_row(judge_name: str, result: JudgeResult, near_dup_of: str | None) -> dict[str, Any]:
    return {
        "judge": judge_name,
        "sc": result.sc,
        "pq": result.pq,
        "o": result.o,
        "judge_status": result.status,
        "judge_reason": result.reason,
        "judge_details": json.dumps(result.details, ensure_ascii=False, default=float),
        "near_dup_of": near_dup_of,
    }


def filter_run(
    folder: RunFolder,
    judge: SampleJudge,
    thresholds: ThresholdTable,
    view: str = "kept",
    reshard: bool = False,
    shard_size: int = 1000,
    keep_near_dups: bool = False,
    rejudge: bool = False,
    workers: int = 4,
    client: MLLMClient | None = None,
) -> FilterReport:
    start = time.perf_counter()
    manifests = manifest_paths(folder)
    if not manifests:
        raise click.ClickException(f"{folder.url}: no committed shards (shards/shard-*.parquet)")
    dups = NearDuplicateIndex()
    kept_tables: list[pa.Table] = []
    rejected: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    read = judged = 0
    for manifest_path in manifests:
        manifest_name = manifest_path.rsplit("/", 1)[-1]
        table = read_table(folder, manifest_path)
        rows = table.to_pylist()
        previous = {
            r["id"]: r for r in rows if r.get("judge") == judge.name and r.get("judge_status") == "ok"
        }
        tar_path = manifest_path.removesuffix(".parquet") + ".tar"
        by_id: dict[str, dict[str, Any]] = {}

        def work(
            members: dict[str, Any], previous: dict[str, dict[str, Any]] = previous
        ) -> tuple[str, Signature | None, JudgeResult | None]:
            try:
                sample = Sample.read(members)
            except (OSError, ValueError, KeyError) as err:
                # A member that is missing or does not decode, or images of two sizes: a verdict on this
                # sample (judge_failed, with the reason), not a reason to stop judging the run.
                detail = {"error": f"{type(err).__name__}: {err}"}
                return members["__key__"], None, JudgeResult.failed("unreadable_sample", detail)
            signature = Signature.of(sample.source, sample.target)
            if sample.key in previous and not rejudge:
                return sample.key, signature, None
            return sample.key, signature, judge(sample)

        samples = iter_tar_samples(folder, tar_path) if rows else iter(())
        for key, signature, result in bounded_map(work, samples, workers):
            # Signatures are registered in tar order, so "the first of a duplicate group" is stable.
            dup_of = dups.add(key, signature) if signature is not None else None
            if result is None:
                by_id[key] = {c: previous[key][c] for c in JUDGE_COLUMNS} | {"near_dup_of": dup_of}
            else:
                judged += 1
                by_id[key] = _judged_row(judge.name, result, dup_of)
        missing = [r["id"] for r in rows if r["id"] not in by_id]
        if missing:
            raise click.ClickException(
                f"{manifest_path}: {len(missing)} manifest ids missing from the tar, e.g. {missing[0]}"
            )
        judge_table = pa.Table.from_pylist([by_id[r["id"]] for r in rows], schema=JUDGE_SCHEMA)
        base = table.drop_columns([c for c in JUDGE_COLUMNS if c in table.column_names])
        for name in JUDGE_COLUMNS:
            base = base.append_column(JUDGE_SCHEMA.field(name), judge_table.column(name))
        if not base.equals(table):  # a re-filter at new thresholds leaves the manifests untouched
            commit_parquet(folder, base, "shards", manifest_name)
        keep_mask = []
        for row in base.to_pylist():
            read += 1
            reason = decision(row, thresholds.for_task(row["task"]), keep_near_dups)
            keep_mask.append(reason is None)
            if reason is not None:
                dropped[reason] += 1
                rejected.append({k: reason if k == "reason" else row[k] for k in REJECTED_SCHEMA.names})
        kept_tables.append(base.filter(pa.array(keep_mask, pa.bool_())))
        console.log(f"{manifest_name}: {len(rows)} samples, {sum(keep_mask)} kept")

    kept = pa.concat_tables(kept_tables, promote_options="permissive")
    judge_record: dict[str, Any] = {"name": judge.name, "view": view, "judged": judged}
    if client is not None:
        judge_record |= {"config": client.config.to_record(), "usage": client.usage.to_record()}
    seconds = time.perf_counter() - start
    meta = {
        "judge": judge.name,
        "thresholds": thresholds.to_record(),
        "keep_near_dups": keep_near_dups,
        "read": read,
        "kept": kept.num_rows,
        "dropped": dict(dropped),
        "seconds": round(seconds, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    view_dir = write_view(
        folder, view, kept, pa.Table.from_pylist(rejected, schema=REJECTED_SCHEMA), meta, reshard, shard_size
    )
    _record_in_run_json(folder, judge_record | {"seconds": round(seconds, 3)})
    return FilterReport(
        read=read,
        kept=kept.num_rows,
        judged=judged,
        dropped=dict(dropped),
        view=view_dir,
        seconds=seconds,
        judge=judge_record,
    )


def default_cache_dir(folder: RunFolder) -> Path:
    """RUN/cache/judge beside the instruction writer's RUN/cache/writer; the answer cache is a local
    directory of small files, so a remote run's cache stays on this machine."""
    if folder.local:
        return Path(folder.path("cache", "judge"))
    return Path.home() / ".cache" / "step1x-data" / "judge"


def _record_in_run_json(folder: RunFolder, judge_record: dict[str, Any]) -> None:
    path = folder.path("run.json")
    data = json.loads(folder.fs.cat_file(path)) if folder.fs.exists(path) else {}
    data["judge"] = judge_record
    commit_json(folder, data, "run.json")


@click.command("filter")
@click.argument("run")
@click.option(
    "--judge",
    "judge_kind",
    type=click.Choice(["heuristic", "openai"]),
    default="heuristic",
    show_default=True,
    help="heuristic: offline pixel measurements; openai: VIEScore through an OpenAI-compatible server.",
)
@click.option(
    "--judge-url", envvar="STEP1X_JUDGE_URL", help="Base URL of the server, e.g. http://vllm:8000/v1."
)
@click.option(
    "--judge-model",
    envvar="STEP1X_JUDGE_MODEL",
    help="Model name served there [default: the server's only model].",
)
@click.option(
    "--api-key-env",
    default="OPENAI_API_KEY",
    show_default=True,
    help="Name of the environment variable holding the API key (the key is never stored).",
)
@click.option(
    "--judge-language",
    type=click.Choice(["en", "zh"]),
    default="en",
    show_default=True,
    help="Which instruction is judged; the prompt is in the same language.",
)
@click.option("--concurrency", default=8, show_default=True, help="Requests in flight to the server.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds per request.")
@click.option("--max-retries", default=3, show_default=True, help="Retries on 429/5xx/timeouts.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Judge answer cache [default: RUN/cache/judge; ~/.cache/step1x-data/judge for a remote RUN].",
)
@click.option("--min-sc", default=0.0, show_default=True)
@click.option("--min-pq", default=0.0, show_default=True)
@click.option("--min-o", default=0.0, show_default=True)
@click.option(
    "--thresholds",
    "thresholds_path",
    help="YAML of per-task thresholds overriding the --min-* values, or 'none'. Default for the heuristic "
    "judge when no --min-* is given: the calibrated annotators/judge/thresholds.yaml.",
)
@click.option("--view", default="kept", show_default=True, help="Writes RUN/views/NAME/.")
@click.option("--reshard", is_flag=True, help="Also write tars of the kept samples under the view.")
@click.option("--shard-size", default=1000, show_default=True, help="Samples per tar with --reshard.")
@click.option("--keep-near-dups", is_flag=True, help="Keep samples flagged as near-duplicates.")
@click.option("--rejudge", is_flag=True, help="Judge rows the manifest already scores.")
@click.option("--workers", default=min(8, os.cpu_count() or 1), show_default=True, help="Judge threads.")
def filter_command(
    run: str,
    judge_kind: str,
    judge_url: str | None,
    judge_model: str | None,
    api_key_env: str,
    judge_language: str,
    concurrency: int,
    timeout: float,
    max_retries: int,
    cache_dir: Path | None,
    min_sc: float,
    min_pq: float,
    min_o: float,
    thresholds_path: str | None,
    view: str,
    reshard: bool,
    shard_size: int,
    keep_near_dups: bool,
    rejudge: bool,
    workers: int,
) -> None:
    """Judge the samples of RUN (a folder or an fsspec URL), write scores into its manifests and the kept
    ids into a view."""
    folder = RunFolder(run)
    if not folder.fs.isdir(folder.root):
        raise click.BadParameter(f"{run} is not a run folder", param_hint="RUN")
    thresholds = ThresholdTable.load(
        Thresholds(min_sc, min_pq, min_o), thresholds_file(thresholds_path, judge_kind)
    )
    client: MLLMClient | None = None
    judge: SampleJudge
    if judge_kind == "openai":
        if not judge_url:
            raise click.UsageError("--judge openai needs --judge-url")
        if not judge_model:
            try:
                judge_model = served_model(judge_url, api_key_env, timeout)
            except ValueError as err:
                raise click.UsageError(f"{err} (--judge-model)") from None
        client = MLLMClient(
            MLLMConfig(
                base_url=judge_url,
                model=judge_model,
                api_key_env=api_key_env,
                timeout_s=timeout,
                max_retries=max_retries,
                concurrency=concurrency,
                cache_dir=str(cache_dir or default_cache_dir(folder)),
            )
        )
        judge = MLLMSampleJudge(client, judge_language)
        # Threads beyond the request limit would only wait on it; fewer would leave the server idle.
        workers = max(workers, concurrency)
    else:
        judge = HeuristicSampleJudge()
    try:
        report = filter_run(
            folder,
            judge,
            thresholds,
            view=view,
            reshard=reshard,
            shard_size=shard_size,
            keep_near_dups=keep_near_dups,
            rejudge=rejudge,
            workers=workers,
            client=client,
        )
    finally:
        if client is not None:
            client.close()
    console.print(f"[bold]{report.kept}[/] of {report.read} kept ({report.judged} judged now): {report.view}")
    for reason, n in sorted(report.dropped.items()):
        console.print(f"  dropped {n:6d}  {reason}")
    if client is not None:
        console.print(f"  judge usage: {json.dumps(report.judge['usage'])}")
