"""`step1x-data serve`: a run browsed in Chromium while `step1x-data run` and `filter` write into it."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
from conftest import PHOTOS, RELAXED, step1x_data
from playwright.sync_api import Error as PlaywrightError

from pipelines.report import ReportOptions
from pipelines.serve import LiveReport, make_server


def committed_samples(run: Path) -> int:
    return sum(pq.read_metadata(m).num_rows for m in (run / "shards").glob("shard-*.parquet"))


def gallery(page) -> list[dict]:
    return page.evaluate(
        """Array.from(document.querySelectorAll('#gallery .card'))
             .map((c) => ({id: c.id, status: c.dataset.status}))"""
    )


def wait_for(condition, timeout: float = 120.0) -> None:
    """Polls `condition`; a page that is reloading at that moment counts as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except PlaywrightError as error:
            assert "context was destroyed" in str(error) or "navigat" in str(error), error
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.25)


def run_tone(out: Path, *extra: str) -> None:
    step1x_data(
        "run", "tone_transformation", "--source", PHOTOS, "--out", out, "--executor", "local",
        "--shard-max-samples", "6", "--quiet", *RELAXED["tone_transformation"], *extra,
    )  # fmt: skip


def test_serve_follows_a_run_being_written(tmp_path: Path, page) -> None:
    run = tmp_path / "run"
    run_tone(run, "--limit", "2")  # the first part of the run: 2 of 5 photos
    first = committed_samples(run)
    # the command's own server, in a thread of this process (a second interpreter would take seconds to start)
    live = LiveReport([str(run)], tmp_path / "site", ReportOptions(live=True, poll_seconds=0.5))
    server = make_server(live, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        page.goto(url)
        assert len(gallery(page)) == first
        assert {c["status"] for c in gallery(page)} == {"unjudged"}

        # the run goes on: its new shards appear in the open page, which reloads by itself
        page.evaluate("window.sameDocument = true")  # gone after a reload
        run_tone(run)
        total = committed_samples(run)
        assert total > first
        wait_for(lambda: len(gallery(page)) == total)
        assert page.evaluate("window.sameDocument === undefined")

        # a filter view lands: kept and rejected show without a restart
        step1x_data("filter", run, "--judge", "heuristic", "--min-o", 8.5, "--workers", 2)
        wait_for(lambda: {c["status"] for c in gallery(page)} == {"kept", "rejected"})

        page.wait_for_load_state("load")
        with urllib.request.urlopen(url + "api/state") as answer:
            state = json.load(answer)
        assert state["version"] == page.evaluate(
            "document.querySelector('meta[name=report-version]').content"
        )
        page.screenshot(path=str(tmp_path / "serve.png"), full_page=True)
        # a reload can cut a poll short (net::ERR_ABORTED); anything else is a fault of the page
        assert [p for p in page.problems if "ERR_ABORTED" not in p] == []
    finally:
        server.shutdown()
        server.server_close()


def test_serve_refusals(tmp_path: Path) -> None:
    result = step1x_data("serve", tmp_path, "--port", 0, exit_code=1)
    assert "is not a run folder" in result.stderr
    run = tmp_path / "run"
    run_tone(run, "--limit", "1")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = step1x_data("serve", run, "--port", taken.getsockname()[1], exit_code=1)
    assert "cannot listen on 127.0.0.1:" in result.stderr
