"""`step1x-data filter RUN`: judge every committed sample of a run, score it in the manifests, write a view.

Steps, one job each: read the manifests and tars; judge each sample (heuristic or MLLM, threads bounded) and
flag near-duplicates across the run; write the judge columns into every shard manifest (replaced whole,
images untouched); keep or drop each sample at the thresholds, counting every drop reason; write the view.

Changing thresholds never calls the judge again: rows already scored by the same judge are reused from the
manifest, and the MLLM judge's answers are in its on-disk cache. Rows that failed are judged again (a timeout
may have passed; an unparseable answer comes back from the cache at no cost).

With a second judge (`--judge2`), both score every sample and a sample is kept only when both keep it; one
that only one judge keeps is dropped as `judges_disagree`, and the view counts how often each judge alone
kept a sample. The second judge's scores go into the manifests beside the first's (JUDGE2_COLUMNS).
"""

from __future__ import annotations

import io
import json
import math
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
from annotators.judge.spec import JUDGE_KINDS, BuiltJudge, JudgeSpec, build_judge
from annotators.mllm.protocols import PROTOCOLS
from pipelines.judge_agreement import cohen_kappa
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
# The second judge's columns, written only by a two-judge filter (and dropped by a one-judge filter, so a
# manifest always holds the scores of its last filter).
JUDGE2_COLUMNS = ["judge2", "sc2", "pq2", "o2", "judge2_status", "judge2_reason", "judge2_details"]
JUDGE2_SCHEMA = pa.schema(
    [
        ("judge2", pa.string()),
        ("sc2", pa.float64()),
        ("pq2", pa.float64()),
        ("o2", pa.float64()),
        ("judge2_status", pa.string()),
        ("judge2_reason", pa.string()),
        ("judge2_details", pa.string()),
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

    def to_record(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class HeuristicSampleJudge:
    def __init__(self) -> None:
        self._judge = HeuristicJudge()
        self.name = self._judge.name

    def __call__(self, sample: Sample) -> JudgeResult:
        instruction = json.loads(sample.members["json"]).get("instruction") or {}
        return self._judge.judge(sample.source, sample.target, instruction)

    def to_record(self) -> dict[str, Any]:
        return {"name": self.name}

    def close(self) -> None:
        pass


class EditSampleJudge:
    """A judge that reads the instruction (an MLLM under a protocol, or EditReward)."""

    def __init__(self, built: BuiltJudge) -> None:
        self._built = built
        self.name = built.judge.name

    def __call__(self, sample: Sample) -> JudgeResult:
        # The stored files go as they are; the client re-encodes them to its bounded JPEG only if needed.
        instruction = json.loads(sample.members["json"]).get("instruction") or {}
        source, target = _member(sample.members, "src"), _member(sample.members, "tgt")
        return self._built.judge.judge(source, target, instruction)

    def to_record(self) -> dict[str, Any]:
        record = self._built.judge.to_record()
        if (client := self._built.client) is not None:
            record |= {"config": client.config.to_record(), "usage": client.usage.to_record()}
        return record

    def close(self) -> None:
        self._built.close()


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
    judged: int  # samples sent to the (first) judge this time (the rest reused the manifest's scores)
    dropped: dict[str, int]
    view: str
    seconds: float
    judge: dict[str, Any]
    agreement: dict[str, Any] | None = None  # with two judges: how often they agreed on keeping a sample
    tasks: frozenset[str] = frozenset()  # the tasks of the samples read


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


def _second_row(judge_name: str, result: JudgeResult) -> dict[str, Any]:
    first = _judged_row(judge_name, result, None)
    return {second: first[name] for name, second in zip(JUDGE_COLUMNS, JUDGE2_COLUMNS, strict=False)}


def _below(row: dict[str, Any], limits: Thresholds, suffix: str = "") -> str | None:
    for score, limit in (("sc", limits.min_sc), ("pq", limits.min_pq), ("o", limits.min_o)):
        if row[score + suffix] < limit:
            return f"below_min_{score}"
    return None


def decision(
    row: dict[str, Any], limits: Thresholds, keep_near_dups: bool, two_judges: bool = False
) -> str | None:
    """None to keep the sample, else the reason it is dropped.

    With two judges a sample is kept when both keep it; when only one does, the reason is judges_disagree;
    when neither does, it is the first judge's reason.
    """
    if row["judge_status"] != "ok":
        return "judge_failed"
    if two_judges and row["judge2_status"] != "ok":
        return "judge2_failed"
    if row["near_dup_of"] and not keep_near_dups:
        return "near_duplicate"
    first = _below(row, limits)
    if not two_judges:
        return first
    second = _below(row, limits, "2")
    if (first is None) != (second is None):
        return "judges_disagree"
    return first


def agreement_counts(rows: list[dict[str, Any]], thresholds: ThresholdTable) -> dict[str, Any]:
    """How the two judges' keep/drop decisions compare, over the samples both judged (near-duplicates
    included: this describes the judges, not the view)."""
    first, second = [], []
    for row in rows:
        if row["judge_status"] == "ok" and row["judge2_status"] == "ok":
            limits = thresholds.for_task(row["task"])
            first.append(_below(row, limits) is None)
            second.append(_below(row, limits, "2") is None)
    a, b = np.array(first, bool), np.array(second, bool)
    kappa = cohen_kappa(a, b) if len(a) else float("nan")
    return {
        "judged_by_both": len(a),
        "both_keep": int(np.sum(a & b)),
        "both_drop": int(np.sum(~a & ~b)),
        "only_first_keeps": int(np.sum(a & ~b)),
        "only_second_keeps": int(np.sum(~a & b)),
        # undefined (NaN) when the decisions are constant: written as null, JSON has no NaN
        "kappa": None if math.isnan(kappa) else round(kappa, 4),
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
    judge2: SampleJudge | None = None,
) -> FilterReport:
    start = time.perf_counter()
    manifests = manifest_paths(folder)
    if not manifests:
        raise click.ClickException(f"{folder.url}: no committed shards (shards/shard-*.parquet)")
    if judge2 is not None and judge2.name == judge.name:
        raise click.UsageError(f"the two judges are the same ({judge.name}): they could only agree")
    columns = list(zip(JUDGE_COLUMNS, JUDGE_SCHEMA, strict=True))
    if judge2 is not None:
        columns += list(zip(JUDGE2_COLUMNS, JUDGE2_SCHEMA, strict=True))
    schema = pa.schema([f for _, f in columns])
    dups = NearDuplicateIndex()
    kept_tables: list[pa.Table] = []
    rejected: list[dict[str, Any]] = []
    judged_rows: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    tasks: set[str] = set()
    read = judged = 0
    for manifest_path in manifests:
        manifest_name = manifest_path.rsplit("/", 1)[-1]
        table = read_table(folder, manifest_path)
        rows = table.to_pylist()
        previous = {
            r["id"]: r for r in rows if r.get("judge") == judge.name and r.get("judge_status") == "ok"
        }
        previous2 = {
            r["id"]: r
            for r in rows
            if judge2 is not None and r.get("judge2") == judge2.name and r.get("judge2_status") == "ok"
        }
        tar_path = manifest_path.removesuffix(".parquet") + ".tar"
        by_id: dict[str, dict[str, Any]] = {}

        def work(
            members: dict[str, Any],
            previous: dict[str, dict[str, Any]] = previous,
            previous2: dict[str, dict[str, Any]] = previous2,
        ) -> tuple[str, Signature | None, JudgeResult | None, JudgeResult | None]:
            try:
                sample = Sample.read(members)
            except (OSError, ValueError, KeyError) as err:
                # A member that is missing or does not decode, or images of two sizes: a verdict on this
                # sample (judge_failed, with the reason), not a reason to stop judging the run.
                detail = {"error": f"{type(err).__name__}: {err}"}
                failed = JudgeResult.failed("unreadable_sample", detail)
                return members["__key__"], None, failed, failed
            signature = Signature.of(sample.source, sample.target)
            first = None if sample.key in previous and not rejudge else judge(sample)
            second = None
            if judge2 is not None and (sample.key not in previous2 or rejudge):
                second = judge2(sample)
            return sample.key, signature, first, second

        samples = iter_tar_samples(folder, tar_path) if rows else iter(())
        for key, signature, result, result2 in bounded_map(work, samples, workers):
            # Signatures are registered in tar order, so "the first of a duplicate group" is stable.
            dup_of = dups.add(key, signature) if signature is not None else None
            if result is None:
                by_id[key] = {c: previous[key][c] for c in JUDGE_COLUMNS} | {"near_dup_of": dup_of}
            else:
                judged += 1
                by_id[key] = _judged_row(judge.name, result, dup_of)
            if judge2 is not None:
                reused = result2 is None
                by_id[key] |= (
                    {c: previous2[key][c] for c in JUDGE2_COLUMNS}
                    if reused
                    else _second_row(judge2.name, result2)  # type: ignore[arg-type]
                )
        missing = [r["id"] for r in rows if r["id"] not in by_id]
        if missing:
            raise click.ClickException(
                f"{manifest_path}: {len(missing)} manifest ids missing from the tar, e.g. {missing[0]}"
            )
        judge_table = pa.Table.from_pylist([by_id[r["id"]] for r in rows], schema=schema)
        # The second judge's columns of an earlier two-judge filter go too: a manifest holds the scores of
        # its last filter only.
        base = table.drop_columns([c for c in JUDGE_COLUMNS + JUDGE2_COLUMNS if c in table.column_names])
        for name, field_ in columns:
            base = base.append_column(field_, judge_table.column(name))
        if not base.equals(table):  # a re-filter at new thresholds leaves the manifests untouched
            commit_parquet(folder, base, "shards", manifest_name)
        keep_mask = []
        for row in base.to_pylist():
            read += 1
            tasks.add(row["task"])
            if judge2 is not None:
                judged_rows.append(row)
            reason = decision(row, thresholds.for_task(row["task"]), keep_near_dups, judge2 is not None)
            keep_mask.append(reason is None)
            if reason is not None:
                dropped[reason] += 1
                rejected.append({k: reason if k == "reason" else row[k] for k in REJECTED_SCHEMA.names})
        kept_tables.append(base.filter(pa.array(keep_mask, pa.bool_())))
        console.log(f"{manifest_name}: {len(rows)} samples, {sum(keep_mask)} kept")

    kept = pa.concat_tables(kept_tables, promote_options="permissive")
    judge_record: dict[str, Any] = {"view": view, "judged": judged} | judge.to_record()
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
    agreement = None
    if judge2 is not None:
        agreement = agreement_counts(judged_rows, thresholds)
        judge_record["judge2"] = judge2.to_record()
        meta |= {"judge2": judge2.name, "agreement": agreement}
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
        agreement=agreement,
        tasks=frozenset(tasks),
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


def make_sample_judge(spec: JudgeSpec, language: str, option: str) -> SampleJudge:
    """The filter's judge for a spec; a configuration error is one line naming the option."""
    if spec.kind == "heuristic":
        return HeuristicSampleJudge()
    try:
        spec.check(option)
        return EditSampleJudge(build_judge(spec, language))  # type: ignore[arg-type]
    except (ValueError, FileNotFoundError) as err:
        hint = f" ({option}-model)" if "serves" in str(err) else ""
        raise click.UsageError(f"{err}{hint}") from None


@click.command("filter")
@click.argument("run")
@click.option(
    "--judge",
    "judge_kind",
    type=click.Choice(JUDGE_KINDS),
    default="heuristic",
    show_default=True,
    help="heuristic: offline pixel measurements; openai: an MLLM through an OpenAI-compatible server, "
    "under --judge-protocol; editreward: the EditReward reward model on this machine (--editreward-dir).",
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
    "--judge-protocol",
    type=click.Choice(PROTOCOLS),
    help="[default: viescore] viescore: VIEScore's questions in English or Chinese, 0-10; gedit: "
    "GEdit-Bench's exact English prompt; editscore: EditScore's prompt and sampling (a vLLM server with its "
    "LoRA), 0-25 mapped to 0-10.",
)
@click.option("--judge-passes", type=int, help="Answers averaged per question (editscore) [default: 1].")
@click.option(
    "--judge2",
    "judge2_kind",
    type=click.Choice(JUDGE_KINDS),
    help="A second judge: a sample is kept only when both judges keep it.",
)
@click.option("--judge2-url", help="Server of the second judge [default: --judge-url].")
@click.option("--judge2-model", help="Model of the second judge [default: the server's only model].")
@click.option("--judge2-protocol", type=click.Choice(PROTOCOLS), help="[default: viescore]")
@click.option("--judge2-passes", type=int, help="Answers averaged per question by the second judge.")
@click.option(
    "--editreward-dir",
    type=click.Path(exists=True, file_okay=False),
    help="EditReward checkpoint folder (model.safetensors), for a judge 'editreward'.",
)
@click.option(
    "--editreward-base",
    type=click.Path(exists=True, file_okay=False),
    envvar="STEP1X_EDITREWARD_BASE",
    help="The Qwen2.5-VL-7B-Instruct folder EditReward was trained from (config, tokenizer, processor).",
)
@click.option("--editreward-device", help="Where EditReward runs [default: cuda if available, else cpu].")
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
    help="Which instruction is judged; the prompt is in the same language where the protocol has one.",
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
    help="YAML of per-task thresholds overriding the --min-* values (both judges are held to them), or "
    "'none'. Default for the heuristic judge when no --min-* is given: the calibrated "
    "annotators/judge/thresholds.yaml.",
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
    judge_protocol: str | None,
    judge_passes: int | None,
    judge2_kind: str | None,
    judge2_url: str | None,
    judge2_model: str | None,
    judge2_protocol: str | None,
    judge2_passes: int | None,
    editreward_dir: str | None,
    editreward_base: str | None,
    editreward_device: str | None,
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
    shared: dict[str, Any] = {
        "api_key_env": api_key_env,
        "concurrency": concurrency,
        "timeout_s": timeout,
        "max_retries": max_retries,
        "cache_dir": str(cache_dir or default_cache_dir(folder)),
        "model_dir": editreward_dir,
        "base_dir": editreward_base,
        "device": editreward_device,
    }
    protocol = judge_protocol or ("viescore" if judge_kind == "openai" else None)
    spec = JudgeSpec(judge_kind, judge_url, judge_model, protocol, judge_passes, **shared)  # type: ignore[arg-type]
    judges = [make_sample_judge(spec, judge_language, "--judge")]
    if judge2_kind is not None:
        url2 = judge2_url or judge_url
        protocol2 = judge2_protocol or ("viescore" if judge2_kind == "openai" else None)
        spec2 = JudgeSpec(judge2_kind, url2, judge2_model, protocol2, judge2_passes, **shared)  # type: ignore[arg-type]
        judges.append(make_sample_judge(spec2, judge_language, "--judge2"))
    if "openai" in (judge_kind, judge2_kind):
        # Threads beyond the request limit would only wait on it; fewer would leave the server idle.
        workers = max(workers, concurrency)
    try:
        report = filter_run(
            folder,
            judges[0],
            thresholds,
            view=view,
            reshard=reshard,
            shard_size=shard_size,
            keep_near_dups=keep_near_dups,
            rejudge=rejudge,
            workers=workers,
            judge2=judges[1] if len(judges) > 1 else None,
        )
    finally:
        for judge in judges:
            judge.close()
    console.print(f"[bold]{report.kept}[/] of {report.read} kept ({report.judged} judged now): {report.view}")
    if thresholds.per_task:
        # A thresholds file that leaves a task out (the calibrated one does, where no level of O keeps
        # 90 % accepted pairs) keeps that task's samples at the default: the file's own, else the --min-*
        # values, 0 unless given.
        low = thresholds.default
        for task in sorted(report.tasks - thresholds.per_task.keys()):
            console.print(
                f"  {task}: no threshold in the thresholds file, kept at min_sc {low.min_sc}, min_pq "
                f"{low.min_pq}, min_o {low.min_o} (set one with --thresholds FILE)"
            )
    for reason, n in sorted(report.dropped.items()):
        console.print(f"  dropped {n:6d}  {reason}")
    if report.agreement is not None:
        console.print(f"  judges' keep decisions: {json.dumps(report.agreement)}")
    for record in (report.judge, report.judge.get("judge2", {})):
        if "usage" in record:
            console.print(f"  {record['name']} usage: {json.dumps(record['usage'])}")
