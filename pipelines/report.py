"""`step1x-data report RUN...`: a static HTML report of one or more runs, thumbnails and plots beside it.

    OUT/index.html     overview, live progress, statistics plots, gallery with filters
    OUT/rejects.html   rejects grouped by reason, with examples
    OUT/plots/*.png    the statistics (pipelines.report_plots)
    OUT/thumbs/        source, target and mask-overlay thumbnails of the samples shown
    OUT/report.json    the counts behind the pages, for scripts

No server is needed: the pages reference only files beside them. Statistics cover every committed sample;
the gallery shows a spread of each category (across its score range, rejected samples included), because
a run may hold millions of pairs. Thumbnails are named by sample id and reused when the report is rebuilt
into the same folder (`step1x-data serve` rebuilds it as the run grows).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
from PIL import Image

from pipelines import report_plots
from pipelines.run_contents import SCORES, STATUSES, RunContents, RunInfo

try:
    import jinja2
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("the report needs matplotlib and jinja2: pip install 'step1x-data[report]'") from error

TEMPLATES = Path(__file__).with_name("templates")
MAX_SOURCE_THUMB_BYTES = 50 << 20  # a rejected source larger than this is not opened for a thumbnail
MASK_RGB = (230, 57, 70)


@dataclass(frozen=True)
class ReportOptions:
    view: str | None = None  # the filter view deciding kept/rejected (default: `kept`, else the only one)
    per_task: int = 48  # gallery samples per category
    per_reason: int = 6  # examples per reject reason
    thumb_size: int = 256  # longest side of a thumbnail, pixels
    live: bool = False  # served by `step1x-data serve`: the page polls for new data
    poll_seconds: float = 3.0


def _spread(frame: pd.DataFrame, count: int) -> list[str]:
    """`count` ids evenly spaced through `frame` (sorted by score), so the gallery spans the score range."""
    if count <= 0 or frame.empty:
        return []
    if count >= len(frame):
        return frame["id"].tolist()
    positions = np.linspace(0, len(frame) - 1, count).round().astype(int)
    return frame["id"].iloc[np.unique(positions)].tolist()


def pick_gallery(samples: pd.DataFrame, per_task: int) -> list[str]:
    """Per category: up to a third rejected samples (when the view rejected any), the rest the others."""
    picked: list[str] = []
    for _, group in samples.groupby("task", sort=True):
        group = group.sort_values(["o", "id"], na_position="last")
        rejected = group[group["status"] == "rejected"]
        others = group[group["status"] != "rejected"]
        n_rejected = min(len(rejected), max(per_task // 3, per_task - len(others)))
        picked += _spread(rejected, n_rejected) + _spread(others, per_task - n_rejected)
    return picked


def pick_reject_examples(samples: pd.DataFrame, per_reason: int) -> dict[str, list[str]]:
    rejected = samples[samples["status"] == "rejected"].sort_values(["o", "id"], na_position="last")
    return {str(reason): _spread(group, per_reason) for reason, group in rejected.groupby("reason")}


def _thumbnail(data: bytes, size: int, mode: str = "RGB") -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.draft(mode, (size, size))  # JPEG: decode at a reduced scale directly
    image = image.convert(mode)
    image.thumbnail((size, size), Image.Resampling.LANCZOS if mode == "RGB" else Image.Resampling.NEAREST)
    return image


def _member(members: dict[str, Any], stem: str) -> bytes:
    for ext in ("jpg", "png"):
        if f"{stem}.{ext}" in members:
            return members[f"{stem}.{ext}"]
    raise KeyError(f"sample {members['__key__']} has no {stem}.jpg or {stem}.png")


def _mask_overlay(mask_png: bytes, size: tuple[int, int]) -> Image.Image:
    """The edit mask as red over transparent, at the target thumbnail's size (the page sets its opacity)."""
    mask = Image.open(io.BytesIO(mask_png)).convert("L").resize(size, Image.Resampling.NEAREST)
    overlay = Image.new("RGBA", size, (*MASK_RGB, 0))
    overlay.putalpha(mask.point(lambda v: 255 if v >= 128 else 0))
    return overlay


def write_sample_thumbs(contents: RunContents, ids: set[str], thumbs: Path, size: int) -> set[str]:
    """src/tgt JPEGs and a mask overlay PNG per sample; returns the ids whose thumbnails exist. A sample
    whose images do not decode gets none (the page then says so) instead of a broken image."""
    thumbs.mkdir(parents=True, exist_ok=True)
    done = {i for i in ids if (thumbs / f"{i}.tgt.jpg").exists()}
    for row, members in contents.sample_records(ids - done):
        try:
            source = _thumbnail(_member(members, "src"), size)
            target = _thumbnail(_member(members, "tgt"), size)
            overlay = _mask_overlay(members["mask.png"], target.size) if "mask.png" in members else None
        except (OSError, KeyError, ValueError, Image.DecompressionBombError):
            continue
        source.save(thumbs / f"{row.id}.src.jpg", quality=85)
        if overlay is not None:
            overlay.save(thumbs / f"{row.id}.mask.png", optimize=True)
        target.save(thumbs / f"{row.id}.tgt.jpg", quality=85)  # written last: its presence marks "done"
    return {i for i in ids if (thumbs / f"{i}.tgt.jpg").exists()}


def write_source_thumb(uri: str, sha256: str | None, thumbs: Path, size: int) -> str | None:
    """A thumbnail of a source the generator rejected, when its file can be read and decoded at all."""
    name = f"source-{sha256 or hashlib.sha256(uri.encode()).hexdigest()}.jpg"
    if (thumbs / name).exists():
        return name
    try:
        with fsspec.open(uri, "rb") as handle:
            data = handle.read(MAX_SOURCE_THUMB_BYTES + 1)
        if len(data) > MAX_SOURCE_THUMB_BYTES:
            return None
        _thumbnail(data, size).save(thumbs / name, quality=85)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None  # the file is why it was rejected: the page shows its uri and the reason instead
    return name


def _score(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 2)


def _card(row: pd.Series, thumbs: Path, has_thumbs: bool) -> dict[str, Any]:
    return {
        "id": row["id"],
        "task": row["task"],
        "variant": row["variant"],
        "status": row["status"],
        "reason": row["reason"],
        "scores": {s: _score(row[s]) for s in SCORES},
        "en": row["instruction_en"],
        "zh": row["instruction_zh"],
        "size": f"{row['width']}×{row['height']}",
        "changed": f"{100 * float(row['changed_ratio']):.1f} %",
        "source_uri": row["source_uri"],
        "thumbs": has_thumbs,
        "mask": has_thumbs and (thumbs / f"{row['id']}.mask.png").exists(),
    }


def _reason_counts(frame: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame.groupby("reason").size().items()} if len(frame) else {}


def _counts(contents: RunContents) -> dict[str, Any]:
    samples, rejects = contents.samples, contents.source_rejects
    per_task = {}
    for task in contents.tasks:
        group = samples[samples["task"] == task]
        per_task[task] = {
            "samples": len(group),
            **{status: int((group["status"] == status).sum()) for status in STATUSES},
            "source_rejects": int((rejects["task"] == task).sum()) if len(rejects) else 0,
            **{f"mean_{s}": _score(group[s].mean()) for s in SCORES},
        }
    lengths = report_plots.instruction_lengths(samples)
    return {
        "samples": len(samples),
        "by_status": {status: int((samples["status"] == status).sum()) for status in STATUSES},
        "source_rejects": len(rejects),
        "per_task": per_task,
        "source_reject_reasons": _reason_counts(rejects),
        "judge_reject_reasons": _reason_counts(samples[samples["status"] == "rejected"]),
        "instruction_length": {
            "en_words_mean": _score(lengths["en"].mean()),
            "zh_chars_mean": _score(lengths["zh"].mean()),
        },
    }


def _progress_rows(runs: list[RunInfo]) -> list[dict[str, Any]]:
    """The latest progress snapshot of each run folder (pipelines.progress writes progress.json)."""
    rows = []
    for info in runs:
        entries = (info.progress or {}).get("runs", [])
        if entries:
            rows.append({"url": info.url, "task": info.task, **entries[-1]})
    return rows


def _runs_overview(contents: RunContents) -> list[dict[str, Any]]:
    overview = []
    for info in contents.runs:
        counts = info.run_json.get("counts", {})
        overview.append(
            {
                "url": info.url,
                "task": info.task,
                "config_hash": info.run_json.get("config_hash", "?"),
                "backend": info.run_json.get("config", {}).get("backend", "?"),
                "view": info.view,
                "judge": info.view_meta.get("judge"),
                "thresholds": info.view_meta.get("thresholds"),
                "listed": counts.get("listed"),
                "segments": info.run_json.get("runs", []),
            }
        )
    return overview


def render_progress(runs: list[RunInfo]) -> str:
    """The progress panel alone (the live page swaps it in without reloading)."""
    return _environment().get_template("progress.html.j2").render(progress=_progress_rows(runs))


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,  # a missing field is a bug in this module, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
    )


def build_report(
    contents: RunContents, out: Path, options: ReportOptions, version: str = ""
) -> dict[str, Any]:
    """Writes the report into `out` (created; existing thumbnails reused) and returns report.json's data.
    `version` names the run state the pages show (the live page reloads when the server's differs)."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    thumbs, plots = out / "thumbs", out / "plots"
    plots.mkdir(exist_ok=True)
    samples = contents.samples

    gallery_ids = pick_gallery(samples, options.per_task)
    reject_ids = pick_reject_examples(samples, options.per_reason)
    wanted = set(gallery_ids) | {i for ids in reject_ids.values() for i in ids}
    with_thumbs = write_sample_thumbs(contents, wanted, thumbs, options.thumb_size)
    by_id = samples.set_index("id", drop=False)

    gallery: dict[str, list[dict[str, Any]]] = {}
    for sample_id in gallery_ids:
        row = by_id.loc[sample_id]
        gallery.setdefault(row["task"], []).append(_card(row, thumbs, sample_id in with_thumbs))

    reject_groups = []
    for reason, ids in sorted(reject_ids.items()):
        cards = [_card(by_id.loc[i], thumbs, i in with_thumbs) for i in ids]
        count = int((samples["reason"] == reason).sum())
        reject_groups.append({"reason": reason, "stage": "judge", "count": count, "cards": cards})
    rejects = contents.source_rejects
    if len(rejects):
        for reason, group in rejects.groupby("reason", sort=True):
            examples = []
            for row in group.head(options.per_reason).itertuples(index=False):
                thumb = write_source_thumb(row.source_uri, row.source_sha256, thumbs, options.thumb_size)
                examples.append(
                    {"uri": row.source_uri, "task": row.task, "detail": row.detail, "thumb": thumb}
                )
            reject_groups.append(
                {"reason": str(reason), "stage": "generation", "count": len(group), "sources": examples}
            )
    reject_groups.sort(key=lambda g: -g["count"])

    figures = []
    for name, title, draw in report_plots.PLOTS:
        if draw(contents, plots / f"{name}.png"):
            figures.append({"name": name, "title": title, "file": f"plots/{name}.png"})
        else:
            (plots / f"{name}.png").unlink(missing_ok=True)

    counts = _counts(contents)
    context = {
        "title": "step1x-data report: " + ", ".join(info.task for info in contents.runs),
        "generated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "counts": counts,
        "runs": _runs_overview(contents),
        "progress": _progress_rows(contents.runs),
        "figures": figures,
        "gallery": gallery,
        "reject_groups": reject_groups,
        "tasks": sorted(gallery),
        "options": options,
        "version": version,
    }
    environment = _environment()
    for page in ("index.html", "rejects.html"):
        html = environment.get_template(f"{page}.j2").render(**context, page=page)
        staged = out / f".{page}.partial"
        staged.write_text(html, encoding="utf-8")
        staged.replace(out / page)  # a browser reloading mid-build sees the old page or the new one
    summary = {
        **counts,
        "gallery": {task: len(cards) for task, cards in gallery.items()},
        "runs": [{"url": r["url"], "task": r["task"], "view": r["view"]} for r in context["runs"]],
        "plots": [f["file"] for f in figures],
        "seconds": round(time.perf_counter() - started, 3),
    }
    (out / "report.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return summary
