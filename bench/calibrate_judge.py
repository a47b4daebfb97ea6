"""Calibrate the offline judge against pairs labelled by eye, and write its per-task thresholds.

Each labelled set is a run folder (made by the command in bench/labels/README.md, or all of them by
bench/judge_calibration_runs.sh) and its CSV of labels. The runs must be judged first (`step1x-data filter
RUN --judge heuristic --thresholds none --view all --rejudge`); this reads their manifests' scores. Per task:
ROC-AUC of O against the labels, Spearman's rho of O with the label, a threshold on O whose kept set is at
least --precision accepted (the recall it keeps is printed beside it) and Cohen's kappa of keeping at it
with the labels (the measures of `step1x-data judge-agreement`); then the same per labelled set, and a
split check: thresholds chosen on one half of every set (by a hash of the sample id) and applied to the
other half.

A labelled id is matched in the run's manifests; a label whose id is not there (the task's Params gained a
field since, which changes every id) is matched by its source file and variant, which name the operation,
its strength and the object's position (the counts of both kinds are printed).

usage: python bench/calibrate_judge.py RUN=LABELS.csv [RUN=LABELS.csv ...] [--precision 0.9] [--write YAML]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml

from pipelines.judge_agreement import cohen_kappa, roc_auc, spearman


@dataclass(frozen=True)
class Scored:
    labelled_set: str
    task: str
    id: str
    o: float
    accepted: bool

    @property
    def half(self) -> int:
        """0 or 1: which half of its set the sample falls in (a hash of its id, the same on every run)."""
        return hashlib.sha256(self.id.encode()).digest()[0] & 1


def scored(run: Path, labels: Path) -> list[Scored]:
    """Every labelled sample of the run, with its O and its label."""
    rows = list(csv.DictReader(labels.open(encoding="utf-8")))
    by_id = {row["id"]: row for row in rows}
    by_name = {(row["source"], row["variant"]): row for row in rows}
    found: dict[str, tuple[str, float, str]] = {}  # label id -> (task, O, how matched)
    columns = ["id", "task", "o", "judge_status", "variant", "source_uri"]
    for manifest in sorted((run / "shards").glob("shard-*.parquet")):
        for row in pq.read_table(manifest, columns=columns).to_pylist():
            label = by_id.get(row["id"])
            how = "id"
            if label is None:
                label, how = by_name.get((Path(row["source_uri"]).name, row["variant"])), "name"
            if label is None or label["id"] in found and how == "name":
                continue
            if row["judge_status"] != "ok":
                raise SystemExit(f"{run}: sample {row['id']} is not judged ({row['judge_status']})")
            found[label["id"]] = (row["task"], float(row["o"]), how)
    if not found:
        raise SystemExit(f"{run}: none of the samples in {labels} is in its manifests")
    hows = [how for _, _, how in found.values()]
    print(
        f"{labels.name}: {len(rows)} labelled, {hows.count('id')} found by id, {hows.count('name')} by "
        f"source and variant, {len(rows) - len(found)} not made by this run"
    )
    return [
        Scored(labels.stem, task, label_id, o, by_id[label_id]["label"] == "accept")
        for label_id, (task, o, _) in found.items()
    ]


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


def _auc(samples: list[Scored]) -> str:
    accepted = np.array([s.accepted for s in samples])
    if accepted.all() or not accepted.any():
        return "—"
    return f"{roc_auc(np.array([s.o for s in samples]), accepted):.3f}"


def _kept(samples: list[Scored], thresholds: dict[str, float]) -> tuple[int, str]:
    kept = [s.accepted for s in samples if s.task in thresholds and s.o >= thresholds[s.task]]
    return len(kept), f"{np.mean(kept):.3f}" if kept else "—"


def thresholds_on(samples: list[Scored], precision: float) -> dict[str, float]:
    by_task: dict[str, list[Scored]] = defaultdict(list)
    for s in samples:
        by_task[s.task].append(s)
    out = {}
    for task, group in by_task.items():
        scores, accepted = np.array([s.o for s in group]), np.array([s.accepted for s in group])
        threshold, _, _ = threshold_for(scores, accepted, precision)
        if not np.isnan(threshold) and threshold <= 10.0:
            out[task] = round(threshold, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", metavar="RUN=LABELS.csv")
    parser.add_argument("--precision", type=float, default=0.9)
    parser.add_argument("--write", type=Path, help="where to write the thresholds (--thresholds format)")
    args = parser.parse_args()
    samples: list[Scored] = []
    for entry in args.sets:
        run, _, labels = entry.partition("=")
        samples.extend(scored(Path(run), Path(labels)))
    by_task: dict[str, list[Scored]] = defaultdict(list)
    for s in samples:
        by_task[s.task].append(s)
    thresholds = thresholds_on(samples, args.precision)
    print(
        "\n| task | labelled | accepted | ROC-AUC of O | Spearman | threshold on O | κ at it | kept "
        "| kept accepted | recall |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for task, group in sorted(by_task.items()):
        scores, accepted = np.array([s.o for s in group]), np.array([s.accepted for s in group])
        _, precision, recall = threshold_for(scores, accepted, args.precision)
        shown = f"{thresholds[task]:.2f}" if task in thresholds else "none (none reaches the precision)"
        kappa = f"{cohen_kappa(scores >= thresholds[task], accepted):.3f}" if task in thresholds else "—"
        kept, kept_accepted = _kept(group, thresholds)
        print(
            f"| {task} | {len(group)} | {int(accepted.sum())} | {_auc(group)} | "
            f"{spearman(scores, accepted.astype(float)):.3f} | {shown} | {kappa} | {kept} | "
            f"{kept_accepted} | {recall:.3f} |"
        )
    accepted = np.array([s.accepted for s in samples])
    kept, kept_accepted = _kept(samples, thresholds)
    # A task with no threshold counts as keeping nothing here (filter keeps all its pairs, and says so).
    kept_mask = np.array([s.task in thresholds and s.o >= thresholds[s.task] for s in samples])
    rho = spearman(np.array([s.o for s in samples]), accepted.astype(float))
    kappa = cohen_kappa(kept_mask, accepted)
    print(
        f"| all | {len(samples)} | {int(accepted.sum())} | **{_auc(samples)}** | {rho:.3f} | per task | "
        f"{kappa:.3f} | {kept} | **{kept_accepted}** | {kept_mask[accepted].mean():.3f} |"
    )
    print("\n| labelled set | labelled | accepted | ROC-AUC of O | kept at the threshold | kept accepted |")
    print("|---|---|---|---|---|---|")
    by_set: dict[str, list[Scored]] = defaultdict(list)
    for s in samples:
        by_set[s.labelled_set].append(s)
    for name, group in by_set.items():
        kept, kept_accepted = _kept(group, thresholds)
        accepted_here = sum(s.accepted for s in group)
        print(f"| {name} | {len(group)} | {accepted_here} | {_auc(group)} | {kept} | {kept_accepted} |")
    # Split: thresholds chosen on one half of every set, applied to the other half.
    print("\n| split (thresholds from the other half) | labelled | ROC-AUC of O | kept | kept accepted |")
    print("|---|---|---|---|---|")
    for half in (0, 1):
        fit = thresholds_on([s for s in samples if s.half != half], args.precision)
        held = [s for s in samples if s.half == half]
        kept, kept_accepted = _kept(held, fit)
        print(f"| half {half} | {len(held)} | {_auc(held)} | {kept} | {kept_accepted} |")
    if args.write:
        header = (
            "# The offline heuristic judge's thresholds per task, calibrated by bench/calibrate_judge.py\n"
            f"# on the pairs labelled by eye in bench/labels/ (kept set >= {args.precision:.0%} accepted).\n"
        )
        missing = sorted(set(by_task) - set(thresholds))
        if missing:
            header += (
                "# No threshold of O reaches that on their labels, so none here (filter names them and\n"
                "# keeps them at its --min-* values, 0 unless given):\n"
                f"# {', '.join(missing)}.\n"
            )
        table = {task: {"min_o": value} for task, value in sorted(thresholds.items())}
        args.write.write_text(header + yaml.safe_dump(table, sort_keys=True), encoding="utf-8")


if __name__ == "__main__":
    main()
