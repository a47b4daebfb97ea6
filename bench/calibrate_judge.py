"""Calibrate the offline judge against pairs labelled by eye, and write its per-task thresholds.

Each labelled set is a run folder (made by the command in bench/labels/README.md) and its CSV of labels. The
runs must be judged first (`step1x-data filter RUN --judge heuristic --thresholds none --view all`); this
reads their manifests' scores. Per task: ROC-AUC of O against the labels, and a threshold on O whose kept set
is at least --precision accepted (the recall it keeps is printed beside it).

usage: python bench/calibrate_judge.py RUN=LABELS.csv [RUN=LABELS.csv ...] [--precision 0.9] [--write YAML]
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml

from pipelines.judge_agreement import roc_auc


def scored(run: Path, labels: Path) -> list[tuple[str, float, bool]]:
    """(task, O, accepted) of every labelled sample of the run."""
    accepted = {row["id"]: row["label"] == "accept" for row in csv.DictReader(labels.open(encoding="utf-8"))}
    out = []
    for manifest in sorted((run / "shards").glob("shard-*.parquet")):
        for row in pq.read_table(manifest, columns=["id", "task", "o", "judge_status"]).to_pylist():
            if row["id"] not in accepted:
                continue
            if row["judge_status"] != "ok":
                raise SystemExit(f"{run}: sample {row['id']} is not judged ({row['judge_status']})")
            out.append((row["task"], float(row["o"]), accepted[row["id"]]))
    if not out:
        raise SystemExit(f"{run}: none of the samples in {labels} is in its manifests")
    return out


def threshold_for(scores: np.ndarray, accepted: np.ndarray, precision: float) -> tuple[float, float, float]:
    """A threshold on O whose kept set (O >= threshold) is at least `precision` accepted, with the precision
    and recall there: the lowest observed score that reaches it, moved halfway down to the next lower score
    (the middle of the gap generalises better than its edge). Keeps nothing when no score reaches it."""
    levels = sorted(set(scores.tolist()))
    for index, level in enumerate(levels):
        kept = scores >= level
        if accepted[kept].mean() >= precision:
            threshold = (level + levels[index - 1]) / 2 if index else level
            return threshold, float(accepted[kept].mean()), float(kept[accepted].mean())
    return levels[-1] + 0.01, float("nan"), 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", metavar="RUN=LABELS.csv")
    parser.add_argument("--precision", type=float, default=0.9)
    parser.add_argument("--write", type=Path, help="where to write the thresholds (--thresholds format)")
    args = parser.parse_args()
    by_task: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    for entry in args.sets:
        run, _, labels = entry.partition("=")
        for task, o, ok in scored(Path(run), Path(labels)):
            by_task[task].append((o, ok))
    thresholds = {}
    print("| task | labelled | accepted | ROC-AUC of O | threshold on O | kept | kept accepted | recall |")
    print("|---|---|---|---|---|---|---|---|")
    everything: list[tuple[float, bool]] = []
    for task, pairs in sorted(by_task.items()):
        scores = np.array([o for o, _ in pairs])
        accepted = np.array([ok for _, ok in pairs])
        threshold, precision, recall = threshold_for(scores, accepted, args.precision)
        thresholds[task] = {"min_o": round(threshold, 2)}
        kept = int((scores >= threshold).sum())
        print(
            f"| {task} | {len(pairs)} | {int(accepted.sum())} | {roc_auc(scores, accepted):.3f} | "
            f"{threshold:.2f} | {kept} | {precision:.3f} | {recall:.3f} |"
        )
        everything.extend(pairs)
    scores = np.array([o for o, _ in everything])
    accepted = np.array([ok for _, ok in everything])
    kept = np.array([o >= thresholds[t]["min_o"] for t, pairs in sorted(by_task.items()) for o, _ in pairs])
    print(
        f"| all | {len(everything)} | {int(accepted.sum())} | {roc_auc(scores, accepted):.3f} | per task | "
        f"{int(kept.sum())} | {accepted[kept].mean():.3f} | {kept[accepted].mean():.3f} |"
    )
    if args.write:
        header = (
            "# The offline heuristic judge's thresholds per task, calibrated by bench/calibrate_judge.py\n"
            f"# on the pairs labelled by eye in bench/labels/ (kept set >= {args.precision:.0%} accepted).\n"
        )
        args.write.write_text(header + yaml.safe_dump(thresholds, sort_keys=True), encoding="utf-8")


if __name__ == "__main__":
    main()
