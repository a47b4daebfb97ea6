"""Progress of a working run, per stage: rows in, rows out, rejects, throughput, ETA.

The runner hands every finished item to `RunProgress.observe` (pipelines.runner's `on_item`). Each item
carries how long each step took on it and which step rejected it (pipelines.stages.apply_step), so the
driver counts per stage without any extra traffic from the workers. Three outputs:

- a live table on a terminal (rich), redrawn a few times a second;
- for logs (`--quiet`, or stderr not a terminal): one plain line every `log_every_s` seconds;
- RUN/progress.json (docs/shard_format.md), rewritten every few seconds: the latest counts and their
  time series, which `step1x-data serve` shows live and `step1x-data report` plots.

Stages are the run's steps in order (load or expand, annotate:NAME, edit, instruct), then `write`: rows in
are the items that passed every step, rows out the samples written, rejects the items whose samples were
all written before (duplicate content). A step's rejects include the items it failed on (errors, counted
under --max-error-rate). Source items rejected while listing (unreadable tars) count under `list`; items
found already done on resume are not rows of any stage. "rows / s" is how fast rows came out of the stage
over the run; "worker s / row" is the time one row spent in the stage's worker code, which shows the
bottleneck even though all stages run at once.
"""

from __future__ import annotations

import json
import platform
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from pipelines.items import WorkItem
from pipelines.runner import RunSummary
from pipelines.shards import RunFolder

MAX_SERIES = 720  # points kept in progress.json; older ones are thinned, the first and last kept
ETA_WINDOW_S = 30.0  # the recent rate an ETA is based on


@dataclass
class StageCounts:
    rows_in: int = 0
    rows_out: int = 0
    rejected: int = 0
    busy_s: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "in": self.rows_in,
            "out": self.rows_out,
            "rejected": self.rejected,
            "busy_s": round(self.busy_s, 6),
        }


class RunProgress:
    def __init__(
        self,
        out: str,
        task: str,
        console: Console | None = None,
        live: bool | None = None,
        log_every_s: float = 30.0,
        sample_every_s: float = 1.0,
        write_every_s: float | None = None,
        log_stream: TextIO | None = None,
    ) -> None:
        self.folder = RunFolder(out)
        self.task = task
        self.console = console or Console(stderr=True)
        self.live_display = self.console.is_terminal if live is None else live
        self.log_every_s = log_every_s
        self.sample_every_s = sample_every_s
        # a local file is cheap to rewrite; an object store gets one upload every half minute
        self.write_every_s = (
            write_every_s if write_every_s is not None else (3.0 if self.folder.local else 30.0)
        )
        self.log_stream = log_stream
        self.stages: dict[str, StageCounts] = {}
        self.series: list[dict[str, Any]] = []
        self.recent: deque[tuple[float, int]] = deque()
        self.started = time.time()
        self.started_monotonic = time.monotonic()
        self.todo = 0
        self.summary: RunSummary | None = None
        self.items_seen = 0
        self.status = "running"
        self._live: Live | None = None
        self._last = {"sample": -1e9, "write": -1e9, "log": 0.0, "draw": -1e9}
        self._history: list[dict[str, Any]] | None = (
            None  # read at the first write: the folder is checked then
        )

    # ---- counting

    def observe(self, item: WorkItem, summary: RunSummary, todo: int) -> None:
        self.summary, self.todo = summary, todo
        self.items_seen += 1
        for name, seconds in item.timings.items():
            stage = self.stages.setdefault(name, StageCounts())
            stage.rows_in += 1
            stage.busy_s += seconds
            if item.rejected_at == name:
                stage.rejected += 1
            else:
                stage.rows_out += 1
        write = self.stages.setdefault("write", StageCounts())
        if item.rejected_at is None:
            write.rows_in += 1
            if item.rejected:  # rejected by the driver after every step ran: nothing new to write
                write.rejected += 1
        write.rows_out = summary.samples
        # `write` stays the last stage even if a step name is first seen after it
        self.stages["write"] = self.stages.pop("write")
        self._tick()

    def finish(self, summary: RunSummary | None, status: str = "finished") -> None:
        """The run ended (`finished`) or stopped on an error (`failed`): the last snapshot is written."""
        if summary is not None:
            self.summary = summary
        self.status = status
        if self.summary is not None:
            self._sample(force=True)
            self._write()
        if self._live is not None:
            self._live.update(self.table())
            self._live.stop()
            self._live = None
        elif self.summary is not None and not self.live_display and self.log_every_s > 0:
            self._log_line()

    # ---- snapshots

    def elapsed(self) -> float:
        return time.monotonic() - self.started_monotonic

    def eta_s(self) -> float | None:
        if self.summary is None:
            return None
        if self.summary.read > self._todo():
            return None  # sources expanded into more items (a video's frame pairs): the total is not known
        remaining = self._todo() - self.summary.read
        if remaining == 0:
            return 0.0
        if len(self.recent) >= 2 and self.recent[-1][0] > self.recent[0][0]:
            (t0, n0), (t1, n1) = self.recent[0], self.recent[-1]
            rate = (n1 - n0) / (t1 - t0)
        else:
            rate = self.summary.read / self.elapsed() if self.elapsed() > 0 else 0.0
        return remaining / rate if rate > 0 else None

    def _todo(self) -> int:
        """Items this run has to do: the listed ones less those found already done (resume)."""
        return self.todo - (self.summary.already_done if self.summary else 0)

    @staticmethod
    def _count(snapshot: dict[str, Any]) -> str:
        """The count shown: "5/12 items", or "24 items from 2 sources" once sources expanded into several
        items each (videos into frame pairs), whose number is only known as each source is read."""
        if snapshot["read"] > snapshot["todo"]:
            return f"{snapshot['read']} items from {snapshot['todo']} sources"
        return f"{snapshot['read']}/{snapshot['todo']} items"

    def _stages_json(self) -> dict[str, Any]:
        stages = {name: counts.as_json() for name, counts in self.stages.items()}
        listed_rejects = (self.summary.read - self.items_seen) if self.summary else 0
        if listed_rejects > 0:
            stages = {
                "list": {"in": listed_rejects, "out": 0, "rejected": listed_rejects, "busy_s": 0.0},
                **stages,
            }
        return stages

    def snapshot(self) -> dict[str, Any]:
        summary = self.summary or RunSummary(out=self.folder.url)
        eta = self.eta_s()
        return {
            "task": self.task,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "host": platform.node(),
            "status": self.status,
            "todo": self._todo(),
            "already_done": summary.already_done,
            "read": summary.read,
            "samples": summary.samples,
            "rejects": sum(summary.rejects.values()),
            "elapsed_s": round(self.elapsed(), 3),
            "eta_s": None if eta is None else round(eta, 1),
            "stages": self._stages_json(),
            "series": self.series,
        }

    def _sample(self, force: bool = False) -> None:
        now = self.elapsed()
        if not force and now - self._last["sample"] < self.sample_every_s:
            return
        self._last["sample"] = now
        summary = self.summary
        self.series.append(
            {
                "t": round(now, 3),
                "read": summary.read,
                "samples": summary.samples,
                "rejects": sum(summary.rejects.values()),
                "stages": self._stages_json(),
            }
        )
        if len(self.series) > MAX_SERIES:
            self.series = [*self.series[:-1:2], self.series[-1]]
        self.recent.append((now, summary.read))
        while len(self.recent) > 2 and now - self.recent[0][0] > ETA_WINDOW_S:
            self.recent.popleft()

    # ---- outputs

    def _previous_runs(self) -> list[dict[str, Any]]:
        path = self.folder.path("progress.json")
        if not self.folder.fs.exists(path):
            return []
        runs = json.loads(self.folder.fs.cat_file(path)).get("runs", [])
        # an entry still "running" belongs to a run that was killed before it could say so
        return [{**r, "status": "interrupted"} if r.get("status") == "running" else r for r in runs]

    def _write(self) -> None:
        if self._history is None:
            self._history = self._previous_runs()
        staged = self.folder.staging_file("progress.json")
        document = {"runs": [*self._history, self.snapshot()]}
        staged.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
        self.folder.commit(staged, "progress.json")

    def table(self) -> Table:
        snapshot = self.snapshot()
        eta = snapshot["eta_s"]
        title = (
            f"{self.task}: {self._count(snapshot)}, {snapshot['samples']} samples, "
            f"{snapshot['rejects']} rejects, {snapshot['elapsed_s']:.0f} s"
            + ("" if eta is None or self.status != "running" else f", ETA {eta:.0f} s")
        )
        table = Table(title=title, title_justify="left")
        for column in ("stage", "rows in", "rows out", "rejects", "rows / s", "worker s / row"):
            table.add_column(column, justify="left" if column == "stage" else "right")
        elapsed = max(snapshot["elapsed_s"], 1e-9)
        for name, counts in snapshot["stages"].items():
            per_row = (
                f"{counts['busy_s'] / counts['in']:.3f}"
                if counts["in"] and name not in ("list", "write")
                else ""
            )
            table.add_row(
                name, str(counts["in"]), str(counts["out"]), str(counts["rejected"]),
                f"{counts['out'] / elapsed:.2f}", per_row,
            )  # fmt: skip
        return table

    def log_line(self) -> str:
        snapshot = self.snapshot()
        eta = snapshot["eta_s"]
        parts = [
            f"progress {self.task}: {self._count(snapshot)}, "
            f"{snapshot['samples']} samples, {snapshot['rejects']} rejects, {snapshot['elapsed_s']:.0f} s"
            + ("" if eta is None or self.status != "running" else f", ETA {eta:.0f} s")
        ]
        for name, counts in snapshot["stages"].items():
            parts.append(f"{name} {counts['in']}>{counts['out']} ({counts['rejected']} rejected)")
        return " | ".join(parts)

    def _log_line(self) -> None:
        line = self.log_line()
        if self.log_stream is not None:
            print(line, file=self.log_stream, flush=True)
        else:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _tick(self) -> None:
        now = self.elapsed()
        self._sample()
        if now - self._last["write"] >= self.write_every_s:
            self._last["write"] = now
            self._write()
        if self.live_display:
            if self._live is None:
                # started at the first item, so an error before any work stays a one-line message
                self._live = Live(self.table(), console=self.console, refresh_per_second=4, transient=False)
                self._live.start()
            elif now - self._last["draw"] >= 0.25:
                self._live.update(self.table())
            self._last["draw"] = now
        elif self.log_every_s > 0 and now - self._last["log"] >= self.log_every_s:
            self._last["log"] = now
            self._log_line()
