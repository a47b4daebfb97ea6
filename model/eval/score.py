"""Score the edited images of an evaluation folder with a judge, and write the scores and the report.

GEdit-Bench's protocol: the source (the bench's input image) and the edited image are each resized to about
512x512 pixels of area, keeping their own aspect ratio (floor, PIL's default bicubic), then the judge gives SC
from both images and the instruction and PQ from the edited image. Chinese instructions are judged with the
same English prompt as English ones, as the reference does.

OUT/scores/NAME/scores.parquet holds one row per bench row: its ids, the status (`ok`, `judge_failed`,
`missing_output`), SC, PQ, O, the judge's name (model and prompt version) and its details (raw answers,
sub-scores, the model the server reported). OUT/scores/NAME/judge.json records the judge's full settings
and request accounting; report.json and report.md the aggregation. A rerun reuses the rows the same judge
already scored; the MLLM's answers are in its cache, so a rejudge costs no request either.

The default judge protocol is `gedit`, GEdit-Bench's own prompt. The offline heuristic judge measures pixels
only: its numbers are labelled as such and are not comparable with published GEdit-Bench scores.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError

from annotators.judge.heuristic import HeuristicJudge
from annotators.judge.result import JudgeResult
from annotators.judge.spec import BuiltJudge, EditJudge, JudgeSpec, build_judge
from annotators.mllm.client import prepare_image
from model.eval.aggregate import aggregate, category_table, published_table
from model.eval.bench import Bench, BenchError, BenchRow, decode_rgb, output_path

JUDGE_AREA = 512 * 512
SCORE_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("category", pa.string()),
        ("language", pa.string()),
        ("intersection", pa.bool_()),
        ("instruction", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("sc", pa.float64()),
        ("pq", pa.float64()),
        ("o", pa.float64()),
        ("judge", pa.string()),
        ("details", pa.string()),
    ]
)
HEURISTIC_NOTE = (
    "offline heuristic scores (pixel measurements, no model reads the instruction): NOT comparable to "
    "published GEdit-Bench numbers; use them to compare runs scored the same way"
)


def judge_size(width: int, height: int, area: int = JUDGE_AREA) -> tuple[int, int]:
    """About `area` pixels with the image's own aspect ratio, each side floored (the reference's rule)."""
    ratio = width / height
    w = math.sqrt(area * ratio)
    return max(1, int(w)), max(1, int(w / ratio))


def judge_view(image: Image.Image) -> Image.Image:
    return image.resize(judge_size(*image.size), Image.Resampling.BICUBIC)


# One row judged: (source, edited) at the judge's size -> the result.
RowJudge = Callable[[BenchRow, Image.Image, Image.Image], JudgeResult]


@dataclass
class Scorer:
    name: str  # the OUT/scores/ folder
    judge_name: Callable[[str], str]  # instruction language -> the judge's name, stored with each score
    judge_row: RowJudge
    record: Callable[[], dict[str, Any]]  # the judge's settings (and usage so far)
    prefix: str  # of the table columns: G_SC, Q_SC, ... or this judge's own letter
    comparable: bool  # may be set beside published GEdit-Bench numbers (the viescore protocol)
    note: str
    close: Callable[[], None]


def heuristic_scorer() -> Scorer:
    judge = HeuristicJudge()

    def judge_row(row: BenchRow, source: Image.Image, edited: Image.Image) -> JudgeResult:
        # The pixel judge compares equal sizes and reads the instruction in the row's language.
        target = np.asarray(edited.resize(source.size, Image.Resampling.BICUBIC))
        instruction = {"en" if row.language == "en" else "zh": row.instruction}
        return judge.judge(np.asarray(source), target, instruction)

    return Scorer(
        name="heuristic",
        judge_name=lambda language: judge.name,
        judge_row=judge_row,
        record=lambda: {"name": judge.name, "kind": "heuristic"},
        prefix="H",
        comparable=False,
        note=HEURISTIC_NOTE,
        close=lambda: None,
    )


def _prompt_language(language: str) -> str:
    return "zh" if language in ("cn", "zh") else "en"


def edit_judge_scorer(spec: JudgeSpec, languages: list[str], name: str | None = None) -> Scorer:
    """An MLLM (under a protocol) or EditReward; one judge per instruction language, one client shared."""
    built: BuiltJudge = build_judge(spec, "en", "en")
    # The reference judges Chinese instructions with its English prompt: the published CN numbers come from
    # that, so the prompt stays English whatever the instruction's language.
    judges: dict[str, EditJudge] = {
        language: built.judge.with_language(_prompt_language(language), "en") for language in languages
    }

    def judge_row(row: BenchRow, source: Image.Image, edited: Image.Image) -> JudgeResult:
        return judges[row.language].judge_text(prepare_image(source), prepare_image(edited), row.instruction)

    def record() -> dict[str, Any]:
        rec = {"kind": spec.kind, **built.judge.to_record()}
        if built.client is not None:
            rec |= {"config": built.client.config.to_record(), "usage": built.client.usage.to_record()}
        return rec

    base = built.judge.to_record()
    if spec.kind == "openai":
        protocol, model = base["protocol"], base["model"]
        prefix = {"gedit": _gedit_prefix(model), "viescore": "V", "editscore": "E"}[protocol]
        comparable = protocol == "gedit"
        notes = {
            "gedit": f"GEdit-Bench's judge prompt, judged by {model}: comparable to published numbers of the "
            "same judge model (G_ = GPT-4.1, Q_ = Qwen2.5-VL-72B), which drift between judge versions",
            "viescore": f"viescore (this project's wording of VIEScore) judged by {model}: use "
            "--judge-protocol gedit to compare with published numbers",
            "editscore": f"editscore judged by {model}: not GEdit-Bench's judge; compare with runs scored "
            "alike",
        }
        note = notes[protocol]
        default_name = f"{protocol}-{model}"
    else:
        prefix, comparable, default_name = "R", False, "editreward"
        note = "EditReward (a reward model): not GEdit-Bench's judge; compare with runs scored alike"
    return Scorer(
        name=name or _slug(default_name),
        judge_name=lambda language: judges[language].name,
        judge_row=judge_row,
        record=record,
        prefix=prefix,
        comparable=comparable,
        note=note,
        close=built.close,
    )


def _gedit_prefix(model: str) -> str:
    lower = model.lower()
    return "G" if "gpt" in lower else "Q" if "qwen" in lower else "V"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "judge"


@dataclass
class ScoreSummary:
    folder: Path
    rows: int
    judged: int  # sent to the judge this time
    reused: int
    status: dict[str, int]
    seconds: float
    report: dict[str, Any]


def _record(row: BenchRow, status: str, reason: str | None = None, **scores: Any) -> dict[str, Any]:
    return {
        "key": row.key,
        "category": row.category,
        "language": row.language,
        "intersection": row.intersection,
        "instruction": row.instruction,
        "status": status,
        "reason": reason,
        "sc": scores.get("sc"),
        "pq": scores.get("pq"),
        "o": scores.get("o"),
        "judge": scores.get("judge"),
        "details": scores.get("details"),
    }


def score_outputs(
    out: Path,
    bench: Bench,
    scorer: Scorer,
    rows: list[BenchRow],
    workers: int = 8,
    rejudge: bool = False,
) -> ScoreSummary:
    """Judge each row's edited image in `out`; write OUT/scores/NAME/{scores.parquet,judge.json,report.*}."""
    start = time.perf_counter()
    folder = out / "scores" / scorer.name
    folder.mkdir(parents=True, exist_ok=True)
    languages = {r.language for r in rows}
    previous: dict[tuple[str, str], dict[str, Any]] = {}
    if (folder / "scores.parquet").exists() and not rejudge:
        for r in pq.read_table(folder / "scores.parquet").to_pylist():
            if (
                r["status"] == "ok"
                and r["language"] in languages
                and r["judge"] == scorer.judge_name(r["language"])
            ):
                previous[(r["key"], r["language"])] = r

    def score(row: BenchRow) -> tuple[dict[str, Any], bool]:
        if (row.key, row.language) in previous:
            return previous[(row.key, row.language)], False
        path = output_path(out, row)
        if not path.exists():
            return _record(row, "missing_output", "no edited image"), False
        judge_name = scorer.judge_name(row.language)
        try:
            source = judge_view(decode_rgb(bench.image(row)))
            edited = judge_view(decode_rgb(path.read_bytes()))
        except (OSError, UnidentifiedImageError, BenchError) as err:
            details = json.dumps({"error": f"{type(err).__name__}: {err}"})
            return _record(row, "judge_failed", "unreadable_image", judge=judge_name, details=details), False
        result = scorer.judge_row(row, source, edited)
        details = json.dumps(result.details, ensure_ascii=False, default=float)
        status = "ok" if result.status == "ok" else "judge_failed"
        scores = {"sc": result.sc, "pq": result.pq, "o": result.o}
        return _record(row, status, result.reason, judge=judge_name, details=details, **scores), True

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        done = list(pool.map(score, rows))
    records = [r for r, _ in done]
    judged = sum(asked for _, asked in done)
    tmp = folder / f".scores.parquet.tmp-{os.getpid()}"
    pq.write_table(pa.Table.from_pylist(records, schema=SCORE_SCHEMA), tmp)
    os.replace(tmp, folder / "scores.parquet")
    judge_record = scorer.record() | {"prefix": scorer.prefix, "comparable_to_published": scorer.comparable}
    judge_record |= {"note": scorer.note, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _write_json(folder / "judge.json", judge_record)
    report = write_report(out, folder, records, judge_record)
    status: dict[str, int] = {}
    for r in records:
        status[r["status"]] = status.get(r["status"], 0) + 1
    reused = sum((r.key, r.language) in previous for r in rows)
    return ScoreSummary(folder, len(records), judged, reused, status, time.perf_counter() - start, report)


def write_report(
    out: Path, folder: Path, records: list[dict[str, Any]], judge: dict[str, Any], prefix: str | None = None
) -> dict[str, Any]:
    """Aggregate the scores; write report.json and report.md beside them; return the report."""
    prefix = prefix or judge["prefix"]
    generation_path = out / "generation.json"
    generation = json.loads(generation_path.read_text(encoding="utf-8")) if generation_path.exists() else {}
    agg = aggregate(records)
    label = _run_label(out, generation)
    report = {
        "label": label,
        "judge": judge,
        "prefix": prefix,
        "comparable_to_published": judge["comparable_to_published"],
        "note": judge["note"],
        "generation": generation.get("settings"),
        "aggregate": agg,
    }
    _write_json(folder / "report.json", report)
    markdown = (
        f"# {label}: GEdit-Bench scores by {judge['name']}\n\n> {judge['note']}\n\n"
        + published_table(agg, prefix, label)
        + "\n"
        + category_table(agg, prefix)
    )
    (folder / "report.md").write_text(markdown, encoding="utf-8")
    return report


def _run_label(out: Path, generation: dict[str, Any]) -> str:
    settings = generation.get("settings") or {}
    if settings.get("tiny"):
        return f"{out.name} (tiny random model)"
    ckpt = settings.get("ckpt")
    return f"{out.name} (Step1X-Edit {settings.get('version', '?')}{', ' + Path(ckpt).name if ckpt else ''})"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)
