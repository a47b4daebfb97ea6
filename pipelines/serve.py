"""`step1x-data serve RUN...`: the report of runs that are still being written, kept current.

The report (pipelines.report) is built into a cache folder and served from there by the standard library's
HTTP server. Each page request and each poll of `api/state` compares the runs' committed state (the
manifests, rejects tables and views, by name, size and modification time) with the one the pages show;
when it changed, the report is rebuilt (thumbnails already made are reused) and the open page reloads.
Progress (RUN/progress.json, rewritten by a working run every few seconds) is swapped into the page in
place, without a rebuild. Only committed data is shown: a shard appears when its manifest is renamed into
place.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pipelines.report import ReportOptions, build_report, render_progress
from pipelines.run_contents import read_run_info, read_runs
from pipelines.shards import RunFolder

COMMITTED = ("shards/shard-*.parquet", "rejects/rejects-*.parquet", "views/*/view.json", "run.json")


def _modified(info: dict[str, Any]) -> str:
    # local files have mtime; object stores name it differently
    for key in ("mtime", "LastModified", "updated", "last_modified"):
        if info.get(key) is not None:
            return str(info[key])
    return ""


def committed_version(urls: list[str]) -> str:
    """A digest of every committed file of the runs; it changes when a shard, reject table or view lands."""
    digest = hashlib.sha256()
    for url in urls:
        folder = RunFolder(url)
        for pattern in COMMITTED:
            for path, info in sorted(folder.fs.glob(folder.path(pattern), detail=True).items()):
                digest.update(f"{path}|{info.get('size')}|{_modified(info)}\n".encode())
    return digest.hexdigest()[:16]


class LiveReport:
    """The report of `urls` in `out`, rebuilt when the runs' committed state changes."""

    def __init__(
        self, urls: list[str], out: Path, options: ReportOptions, min_interval_s: float = 1.0
    ) -> None:
        self.urls, self.out, self.options = urls, out, options
        self.min_interval_s = min_interval_s
        self.version = ""
        self._checked = 0.0
        self._lock = threading.Lock()

    def refresh(self) -> str:
        """Rebuilds if the runs changed (checked at most every `min_interval_s`); returns the version."""
        with self._lock:
            if time.monotonic() - self._checked >= self.min_interval_s or not self.version:
                self._checked = time.monotonic()
                current = committed_version(self.urls)
                if current != self.version:
                    build_report(read_runs(self.urls, self.options.view), self.out, self.options, current)
                    self.version = current
            return self.version

    def state(self) -> dict[str, Any]:
        version = self.refresh()
        runs = [read_run_info(url, self.options.view) for url in self.urls]
        return {"version": version, "progress_html": render_progress(runs)}


class _Handler(SimpleHTTPRequestHandler):
    live: LiveReport

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if path == "/api/state":
            body = json.dumps(self.live.state()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)
            return
        if path in ("/", "/index.html", "/rejects.html"):
            self.live.refresh()
        super().do_GET()

    def end_headers(self) -> None:
        if self.path.split("?", 1)[0].endswith(".html") or self.path == "/":
            self.send_header("Cache-Control", "no-store")  # pages change as the run grows
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server API
        pass  # quiet: one line per thumbnail would bury the console


def make_server(live: LiveReport, host: str, port: int) -> ThreadingHTTPServer:
    live.refresh()  # the first build happens before the first request, so errors show at start
    handler = type("LiveReportHandler", (_Handler,), {"live": live})
    server = ThreadingHTTPServer((host, port), partial(handler, directory=str(live.out)))
    server.daemon_threads = True
    return server
