"""The report's statistics plots (matplotlib, PNG files). Each returns False when it has nothing to show.

Every plot is a function of the samples table (pipelines.run_contents), so the report, the live server and
the release's dataset card draw the same figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.run_contents import SCORES, RunContents

try:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("the report needs matplotlib and jinja2: pip install 'step1x-data[report]'") from error

SCORE_NAMES = {"sc": "SC (semantic consistency)", "pq": "PQ (perceptual quality)", "o": "O (overall)"}
STATUS_COLOURS = {"kept": "#2a9d8f", "rejected": "#e76f51", "unjudged": "#adb5bd"}
THRESHOLDS = np.linspace(0.0, 10.0, 101)


def _save(fig: Any, path: Path) -> bool:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def samples_per_category(contents: RunContents, path: Path) -> bool:
    samples = contents.samples
    if samples.empty:
        return False
    counts = samples.groupby(["task", "status"]).size().unstack(fill_value=0)
    fig, ax = plt.subplots(figsize=(7, max(2.6, 0.8 + 0.45 * len(counts))))
    left = np.zeros(len(counts))
    for status, colour in STATUS_COLOURS.items():
        if status in counts:
            values = counts[status].to_numpy()
            ax.barh(counts.index, values, left=left, color=colour, label=status)
            left += values
    ax.set_xlabel("samples")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    ax.set_title("Samples per category")
    return _save(fig, path)


def view_thresholds(contents: RunContents) -> dict[str, float]:
    """The default thresholds of the first run's view that has any."""
    for info in contents.runs:
        default = info.view_meta.get("thresholds", {}).get("default", {})
        if default:
            return {score: float(default.get(f"min_{score}", 0.0)) for score in SCORES}
    return {}


def survival_curves(contents: RunContents, path: Path) -> bool:
    """Fraction of judged samples whose score is at least t, for every t: where to set a threshold. The
    view's thresholds are drawn as dashed lines."""
    judged = contents.samples.dropna(subset=["o"])
    thresholds = view_thresholds(contents)
    if judged.empty:
        return False
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
    groups = (
        [("all", judged), *judged.groupby("task")]
        if judged["task"].nunique() > 1
        else [(judged["task"].iloc[0], judged)]
    )
    for ax, score in zip(axes, SCORES, strict=True):
        for name, group in groups:
            values = np.sort(group[score].to_numpy())
            passing = 1.0 - np.searchsorted(values, THRESHOLDS, side="left") / len(values)
            ax.plot(THRESHOLDS, passing, label=str(name), linewidth=2.2 if name == "all" else 1.4)
        if thresholds.get(score):
            ax.axvline(thresholds[score], color="black", linestyle="--", linewidth=1, label="view threshold")
        ax.set_title(SCORE_NAMES[score])
        ax.set_xlabel("threshold")
        ax.set_xlim(0, 10)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("pass rate")
    axes[-1].legend(fontsize=8, loc="lower left")
    return _save(fig, path)


def score_histograms(contents: RunContents, path: Path) -> bool:
    judged = contents.samples.dropna(subset=["o"])
    if judged.empty:
        return False
    tasks = sorted(judged["task"].unique())
    fig, axes = plt.subplots(len(tasks), 3, figsize=(12, 2.4 * len(tasks)), squeeze=False)
    bins = np.linspace(0, 10, 21)
    for row, task in enumerate(tasks):
        group = judged[judged["task"] == task]
        for col, score in enumerate(SCORES):
            ax = axes[row][col]
            ax.hist(group[score], bins=bins, color="#457b9d")
            ax.set_xlim(0, 10)
            if row == 0:
                ax.set_title(SCORE_NAMES[score])
            if col == 0:
                ax.set_ylabel(f"{task}\nsamples", fontsize=9)
    return _save(fig, path)


def reject_reasons(contents: RunContents, path: Path) -> bool:
    """Sources the generator rejected, and samples the judge's view dropped, by reason."""
    bars = []
    if len(contents.source_rejects):
        generated = contents.source_rejects.groupby("reason").size()
        bars += [("generation: " + r, n, "#e9c46a") for r, n in generated.items()]
    dropped = contents.samples[contents.samples["status"] == "rejected"].groupby("reason").size()
    bars += [("judge: " + r, n, "#e76f51") for r, n in dropped.items()]
    if not bars:
        return False
    bars.sort(key=lambda bar: -bar[1])
    fig, ax = plt.subplots(figsize=(7, max(2.6, 0.9 + 0.4 * len(bars))))
    ax.barh([b[0] for b in bars], [b[1] for b in bars], color=[b[2] for b in bars])
    ax.invert_yaxis()
    ax.set_xlabel("count")
    ax.set_title("Reject reasons")
    ax.text(
        1.0,
        -0.02,
        "generation: source items, judge: samples",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=8,
        color="#555",
    )
    return _save(fig, path)


def image_sizes(contents: RunContents, path: Path) -> bool:
    samples = contents.samples
    if samples.empty:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for task, group in samples.groupby("task"):
        left.scatter(group["width"], group["height"], s=12, alpha=0.6, label=task)
    left.set_xlabel("width (px)")
    left.set_ylabel("height (px)")
    left.set_title("Image size")
    left.legend(fontsize=8)
    aspect = samples["width"] / samples["height"]
    # fixed bins over 1:4 .. 4:1 (clipped), so runs are comparable and one ratio is one visible bar
    right.hist(np.clip(np.log2(aspect), -2, 2), bins=np.linspace(-2, 2, 33), color="#457b9d")
    ticks = np.array([0.25, 0.5, 0.75, 1, 4 / 3, 2, 4])
    right.set_xticks(np.log2(ticks), [f"{t:.2g}" for t in ticks])
    right.set_xlabel("aspect ratio (width / height, log scale)")
    right.set_ylabel("samples")
    right.set_title("Aspect ratio")
    return _save(fig, path)


def instruction_lengths(samples: pd.DataFrame) -> pd.DataFrame:
    """English in words, Chinese in characters (it has no spaces between words); None when missing."""
    english = samples["instruction_en"].fillna("").str.split().str.len()
    chinese = samples["instruction_zh"].fillna("").str.replace(r"\s", "", regex=True).str.len()
    return pd.DataFrame({"task": samples["task"], "en": english, "zh": chinese})


def instruction_length(contents: RunContents, path: Path) -> bool:
    lengths = instruction_lengths(contents.samples)
    if lengths.empty:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    for ax, language, unit in ((axes[0], "en", "words"), (axes[1], "zh", "characters")):
        present = lengths[lengths[language] > 0]
        for task, group in present.groupby("task"):
            ax.hist(group[language], bins=range(0, int(present[language].max()) + 2), alpha=0.6, label=task)
        ax.set_title(f"Instruction length, {language} ({unit})")
        ax.set_xlabel(unit)
        ax.set_ylabel("samples")
        if not present.empty:
            ax.legend(fontsize=8)
    return _save(fig, path)


def stage_throughput(contents: RunContents, path: Path) -> bool:
    """Over each run's elapsed time (progress.json): source items finished and samples written per second,
    and per stage the worker seconds one item spends in it (the stage with the most is the bottleneck;
    every stage's items reach the driver together, so their item rates are the same). Without
    progress.json, each run segment's overall samples per second (run.json)."""
    series = [
        (info.task, entry)
        for info in contents.runs
        for entry in (info.progress or {}).get("runs", [])
        if len(entry.get("series", [])) >= 2
    ]
    if series:
        fig, axes = plt.subplots(len(series), 2, figsize=(12, 3.0 * len(series)), squeeze=False)
        for (rate_ax, cost_ax), (task, entry) in zip(axes, series, strict=True):
            points = entry["series"]
            times = np.array([p["t"] for p in points])
            steps = np.maximum(np.diff(times), 1e-9)
            for key, label in (("read", "source items / s"), ("samples", "samples written / s")):
                done = np.array([p[key] for p in points], dtype=float)
                rate_ax.step(times[1:], np.diff(done) / steps, where="pre", label=label)
            for stage in points[-1]["stages"]:
                if stage in ("list", "write"):
                    continue  # no worker time: listing and writing happen in the driver
                counts = [p["stages"].get(stage, {}) for p in points]
                new_items = np.diff(np.array([c.get("in", 0) for c in counts], dtype=float))
                busy = np.diff(np.array([c.get("busy_s", 0.0) for c in counts], dtype=float))
                per_item = np.divide(
                    busy, new_items, out=np.full_like(new_items, np.nan), where=new_items > 0
                )
                cost_ax.step(times[1:], per_item, where="pre", label=stage)
            rate_ax.set_title(f"{task}, run of {entry.get('started', '?')}")
            cost_ax.set_title("worker seconds per item, by stage")
            for ax in (rate_ax, cost_ax):
                ax.set_xlabel("seconds since start")
                ax.grid(alpha=0.3)
                ax.legend(fontsize=8)
        return _save(fig, path)
    segments = [
        (f"{info.task}\n{run.get('started', '?')}", run.get("samples_per_second", 0.0))
        for info in contents.runs
        for run in info.run_json.get("runs", [])
        if run.get("status") == "finished"
    ]
    if not segments:
        return False
    fig, ax = plt.subplots(figsize=(7, max(2.6, 0.9 + 0.5 * len(segments))))
    ax.barh([s[0] for s in segments], [s[1] for s in segments], color="#457b9d")
    ax.invert_yaxis()
    ax.set_xlabel("samples / s (whole run)")
    ax.set_title("Throughput per run (this run recorded no per-stage progress)")
    return _save(fig, path)


# (file name, title, function) in the order the report shows them
PLOTS = [
    ("samples_per_category", "Samples per category", samples_per_category),
    ("survival", "Pass rate against threshold", survival_curves),
    ("score_histograms", "SC / PQ / O per category", score_histograms),
    ("reject_reasons", "Reject reasons", reject_reasons),
    ("image_sizes", "Image size and aspect ratio", image_sizes),
    ("instruction_length", "Instruction length per language", instruction_length),
    ("throughput", "Throughput per stage", stage_throughput),
]
