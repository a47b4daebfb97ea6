"""One or more run folders read for people: samples with their scores and view status, rejects, run.json.

Only what docs/shard_format.md documents is read (manifests, rejects tables, views, run.json, progress.json),
through each run folder's filesystem, so a run on s3:// or gs:// reads like a local one. The report, the
live server and the release all start from a `RunContents`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pipelines.shards import RunFolder
from pipelines.views import iter_tar_samples, manifest_paths, read_table

SAMPLE_COLUMNS = [
    "id",
    "shard",
    "task",
    "gedit_key",
    "variant",
    "instruction_en",
    "instruction_zh",
    "source_uri",
    "width",
    "height",
    "has_mask",
    "changed_ratio",
]
# Added by `step1x-data filter`; absent from a run that was never judged.
JUDGE_COLUMNS = ["judge", "sc", "pq", "o", "judge_status", "judge_reason", "near_dup_of"]
SCORES = ("sc", "pq", "o")
STATUSES = ("kept", "rejected", "unjudged")


class RunReadError(Exception):
    """A folder that is not a readable run; the message is the one line a user sees."""


@dataclass
class RunInfo:
    """One run folder: where it is, what its run.json says, its views and the view used for status."""

    url: str
    folder: RunFolder
    run_json: dict[str, Any]
    views: dict[str, dict[str, Any]]  # name -> view.json
    view: str | None
    progress: dict[str, Any] | None

    @property
    def task(self) -> str:
        return str(self.run_json.get("task", "?"))

    @property
    def view_meta(self) -> dict[str, Any]:
        return self.views.get(self.view, {}) if self.view else {}


@dataclass
class RunContents:
    runs: list[RunInfo]
    # One row per committed sample: SAMPLE_COLUMNS + JUDGE_COLUMNS + `run` (index into runs), `status`
    # (kept / rejected / unjudged in the chosen view) and `reason` (why the view rejected it).
    samples: pd.DataFrame
    # One row per source item that yielded no sample (rejects/*.parquet) + `run`.
    source_rejects: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def tasks(self) -> list[str]:
        return sorted(set(self.samples["task"]) | set(self.source_rejects.get("task", [])))

    def sample_records(self, ids: set[str]) -> Iterator[tuple[pd.Series, dict[str, Any]]]:
        """(manifest row, tar members) of each wanted sample, reading only the shards that hold them."""
        wanted = self.samples[self.samples["id"].isin(ids)]
        for (run_index, shard), rows in wanted.groupby(["run", "shard"], sort=True):
            folder = self.runs[int(run_index)].folder
            by_id = {row.id: row for row in rows.itertuples(index=False)}
            remaining = set(by_id)
            for members in iter_tar_samples(folder, folder.path("shards", shard)):
                key = members["__key__"]
                if key in remaining:
                    remaining.discard(key)
                    yield pd.Series(by_id[key]._asdict()), members
                    if not remaining:
                        break


def _read_json(folder: RunFolder, *parts: str) -> dict[str, Any] | None:
    path = folder.path(*parts)
    if not folder.fs.exists(path):
        return None
    return json.loads(folder.fs.cat_file(path))


def _read_views(folder: RunFolder) -> dict[str, dict[str, Any]]:
    views: dict[str, dict[str, Any]] = {}
    root = folder.path("views")
    if not folder.fs.isdir(root):
        return views
    for path in sorted(folder.fs.ls(root, detail=False)):
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if name.startswith("."):  # a view being staged (views are published whole)
            continue
        meta = _read_json(folder, "views", name, "view.json")
        if meta is not None:
            views[name] = meta
    return views


def _choose_view(views: dict[str, dict[str, Any]], wanted: str | None, url: str) -> str | None:
    if wanted is not None:
        if wanted not in views:
            known = ", ".join(views) or "none"
            raise RunReadError(f"{url}: no view {wanted!r} (views: {known}); make it with step1x-data filter")
        return wanted
    if "kept" in views:
        return "kept"
    return next(iter(views)) if len(views) == 1 else None


def _manifest_frame(folder: RunFolder) -> pd.DataFrame:
    frames = []
    for path in manifest_paths(folder):
        table = read_table(folder, path)
        present = [c for c in SAMPLE_COLUMNS + JUDGE_COLUMNS if c in table.column_names]
        frames.append(table.select(present).to_pandas())
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SAMPLE_COLUMNS)
    for column in JUDGE_COLUMNS:
        if column not in frame:
            frame[column] = None
    for score in SCORES:
        frame[score] = pd.to_numeric(frame[score], errors="coerce")
    return frame


def _status(frame: pd.DataFrame, info: RunInfo) -> pd.DataFrame:
    frame["status"] = "unjudged"
    frame["reason"] = None
    if info.view is None:
        return frame
    folder = info.folder
    kept = read_table(folder, folder.path("views", info.view, "ids.parquet"), columns=["id"])
    frame.loc[frame["id"].isin(set(kept.column("id").to_pylist())), "status"] = "kept"
    rejected_path = folder.path("views", info.view, "rejected.parquet")
    if folder.fs.exists(rejected_path):
        rejected = read_table(folder, rejected_path, columns=["id", "reason"]).to_pandas()
        reasons = dict(zip(rejected["id"], rejected["reason"], strict=True))
        hit = frame["id"].isin(reasons)
        frame.loc[hit, "status"] = "rejected"
        frame.loc[hit, "reason"] = frame.loc[hit, "id"].map(reasons)
    return frame


def _source_rejects(folder: RunFolder) -> pd.DataFrame:
    paths = sorted(folder.fs.glob(folder.path("rejects", "rejects-*.parquet")))
    frames = [read_table(folder, p).to_pandas() for p in paths]
    columns = ["source_uri", "source_sha256", "task", "reason", "detail"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def read_run_info(url: str, view: str | None = None) -> RunInfo:
    """A run folder's small files: run.json, its views, progress.json (no manifest is read)."""
    folder = RunFolder(url)
    if not folder.fs.isdir(folder.root):
        raise RunReadError(f"{url} is not a folder")
    run_json = _read_json(folder, "run.json")
    if run_json is None and not folder.fs.isdir(folder.path("shards")):
        raise RunReadError(f"{url} is not a run folder (no run.json, no shards/)")
    views = _read_views(folder)
    return RunInfo(
        url=url,
        folder=folder,
        run_json=run_json or {},
        views=views,
        view=_choose_view(views, view, url),
        progress=_read_json(folder, "progress.json"),
    )


def read_runs(urls: list[str], view: str | None = None) -> RunContents:
    """Reads every committed sample and reject of the runs; `view` names the filter view that decides
    kept/rejected (default: `kept`, else a run's only view; with none, samples are `unjudged`)."""
    runs: list[RunInfo] = []
    samples, rejects = [], []
    for index, url in enumerate(urls):
        info = read_run_info(url, view)
        runs.append(info)
        frame = _status(_manifest_frame(info.folder), info)
        frame["run"] = index
        samples.append(frame)
        run_rejects = _source_rejects(info.folder)
        run_rejects["run"] = index
        rejects.append(run_rejects)
    all_samples = pd.concat(samples, ignore_index=True)
    # The same run given twice (or two runs sharing samples) must not show a sample twice.
    all_samples = all_samples.drop_duplicates("id", keep="first").reset_index(drop=True)
    return RunContents(runs, all_samples, pd.concat(rejects, ignore_index=True))
