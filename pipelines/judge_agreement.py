"""`step1x-data judge-agreement A B`: how far two judges (or a judge and human labels) agree.

When B is a set of accept/reject labels (a CSV whose score takes two values, as bench/labels/ writes), the
report adds the ROC-AUC of A's score against them and the share of the samples A keeps that B accepts.

A and B are each a run folder (the judge columns its manifests carry after the last `step1x-data filter`),
a view folder RUN/views/NAME (the scores of the filter that wrote it: kept and rejected ids together), or a
CSV of labels with a column `id` and any of `sc`, `pq`, `o` (0-10); local paths or fsspec URLs. A manifest
holds one judge's scores at a time, so two judges of one run are compared through their views: `filter RUN
--judge heuristic --view h`, `filter RUN --judge openai --view m`, then `judge-agreement RUN/views/h
RUN/views/m`. Samples are matched by id. Per score present on both sides: Spearman's rank correlation (ties
get their average rank) and Cohen's kappa of the keep/drop decisions at the threshold (score >= threshold
is "keep").
"""

from __future__ import annotations

import csv
import json
import math
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from pipelines.shards import RunFolder
from pipelines.views import manifest_paths, read_table

SCORES = ("sc", "pq", "o")


def load_scores(spec: str) -> dict[str, dict[str, float]]:
    """id -> {score name: value}; judge_failed rows and empty CSV cells are left out, never filled in.

    `spec` is a view folder, a run folder or a CSV file, local or an fsspec URL.
    """
    out: dict[str, dict[str, float]] = {}
    folder = RunFolder(spec)
    if folder.fs.isfile(folder.path("ids.parquet")):
        for name in ("ids.parquet", "rejected.parquet"):
            for row in read_table(folder, folder.path(name), columns=["id", *SCORES]).to_pylist():
                if row["sc"] is not None:  # a judge_failed sample has no scores
                    out[row["id"]] = {s: float(row[s]) for s in SCORES}
        return out
    if folder.fs.isdir(folder.root):
        manifests = manifest_paths(folder)
        if not manifests:
            raise click.ClickException(f"{spec}: no manifests under shards/")
        for manifest in manifests:
            table = read_table(folder, manifest)
            if "judge_status" not in table.column_names:
                raise click.ClickException(f"{manifest}: not judged yet (run `step1x-data filter` first)")
            for row in table.select(["id", "judge_status", *SCORES]).to_pylist():
                if row["judge_status"] == "ok":
                    out[row["id"]] = {s: float(row[s]) for s in SCORES}
        return out
    if not folder.fs.isfile(folder.root):
        raise click.ClickException(f"{spec}: no such view, run folder or CSV")
    with folder.fs.open(folder.root, "r", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "id" not in reader.fieldnames:
            raise click.ClickException(f"{spec}: a CSV of labels needs an 'id' column")
        for row in reader:
            values = {s: float(row[s]) for s in SCORES if (row.get(s) or "").strip()}
            if values:
                out[row["id"]] = values
    return out


def rank_average(x: np.ndarray) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    # Boundaries of runs of equal values in sorted order.
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    ranks = np.empty(len(x), dtype=np.float64)
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + 1 + e) / 2.0
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho = Pearson correlation of the average ranks; nan when either side is constant."""
    ra, rb = rank_average(a), rank_average(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Kappa of two boolean raters; nan when chance agreement is 1 (both constant), where it is undefined."""
    p_observed = float(np.mean(a == b))
    pa, pb = float(np.mean(a)), float(np.mean(b))
    p_chance = pa * pb + (1 - pa) * (1 - pb)
    return (p_observed - p_chance) / (1 - p_chance) if p_chance < 1 else float("nan")


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for the boolean `positive`: the chance that a positive outscores
    a negative (ties count half); nan without both classes."""
    if positive.all() or not positive.any():
        return float("nan")
    ranks = rank_average(scores)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def agreement(
    a: dict[str, dict[str, float]], b: dict[str, dict[str, float]], thresholds: dict[str, float]
) -> dict[str, Any]:
    common = sorted(set(a) & set(b))
    report: dict[str, Any] = {"n_a": len(a), "n_b": len(b), "n_common": len(common), "scores": {}}
    for score in SCORES:
        ids = [i for i in common if score in a[i] and score in b[i]]
        if not ids:
            continue
        va = np.array([a[i][score] for i in ids])
        vb = np.array([b[i][score] for i in ids])
        t = thresholds[score]
        entry = {
            "n": len(ids),
            "spearman": spearman(va, vb) if len(ids) > 1 else float("nan"),
            "threshold": t,
            "kappa": cohen_kappa(va >= t, vb >= t),
            "keep_agreement": float(np.mean((va >= t) == (vb >= t))),
            "mean_a": float(va.mean()),
            "mean_b": float(vb.mean()),
        }
        # B with two values only is a set of accept/reject labels (e.g. 10/0): how well A's score ranks
        # them, and how many of the samples A keeps at the threshold B accepts.
        if len(np.unique(vb)) == 2:
            accepted = vb == vb.max()
            entry["roc_auc"] = roc_auc(va, accepted)
            kept = va >= t
            entry["kept"] = int(kept.sum())
            entry["kept_accepted"] = float(accepted[kept].mean()) if kept.any() else float("nan")
        report["scores"][score] = entry
    return report


@click.command("judge-agreement")
@click.argument("a")
@click.argument("b")
@click.option("--min-sc", default=6.0, show_default=True, help="Keep threshold on SC for kappa.")
@click.option("--min-pq", default=6.0, show_default=True, help="Keep threshold on PQ for kappa.")
@click.option("--min-o", default=6.0, show_default=True, help="Keep threshold on O for kappa.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def judge_agreement_command(
    a: str, b: str, min_sc: float, min_pq: float, min_o: float, as_json: bool
) -> None:
    """Agreement between the judge scores (or human labels in a CSV) of A and B."""
    report = agreement(load_scores(a), load_scores(b), {"sc": min_sc, "pq": min_pq, "o": min_o})
    if not report["scores"]:
        raise click.ClickException(f"no sample id with a common score in {a} and {b}")
    if as_json:
        # NaN is not JSON: an undefined statistic is written as null.
        clean = json.loads(json.dumps(report), parse_constant=lambda _: None)
        click.echo(json.dumps(clean, indent=2))
        return
    console = Console()
    # A line of its own: a table title would be wrapped to the (narrow) table's width.
    console.print(f"{a}  vs  {b}  ({report['n_common']} common samples)", soft_wrap=True)
    table = Table()
    labelled = any("roc_auc" in r for r in report["scores"].values())
    columns = ["score", "n", "spearman", "threshold", "kappa", "keep agreement", "mean A", "mean B"]
    for column in columns + (["ROC-AUC", "kept", "kept accepted by B"] if labelled else []):
        table.add_column(column, justify="right")
    for score, r in report["scores"].items():
        cells = [
            score,
            str(r["n"]),
            f"{r['spearman']:.3f}",
            f"{r['threshold']:g}",
            f"{r['kappa']:.3f}",
            f"{r['keep_agreement']:.3f}",
            f"{r['mean_a']:.2f}",
            f"{r['mean_b']:.2f}",
        ]
        if labelled and "roc_auc" in r:
            cells += [f"{r['roc_auc']:.3f}", str(r["kept"]), f"{r['kept_accepted']:.3f}"]
        elif labelled:
            cells += ["", "", ""]
        table.add_row(*cells)
    console.print(table)
