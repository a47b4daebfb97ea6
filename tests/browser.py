"""Headless Chromium for page tests: Debian's /usr/bin/chromium (package `chromium`, `make system-deps`)
driven through playwright's Python API. Playwright's own browser download is never used.

Use from a conftest: `sys.path` gets this folder, then `from browser import *` brings the fixtures
`chromium` (one browser per session) and `page` (a fresh context per test, recording console errors,
uncaught page errors and failed requests in `page.problems`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("STEP1X_CHROMIUM", "/usr/bin/chromium"))
# Offline and quiet: no first-run, sync, update or background traffic; no GPU, no sandbox (CI is root).
# Playwright gives every launch a fresh temporary profile (the --user-data-dir).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`make system-deps`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium) -> Iterator[object]:
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}"))
    page.problems = problems
    yield page
    context.close()
