"""`step1x-edit serve` with the tiny model: the page loads in a real headless Chromium without console
errors, an edit round-trips through the browser to the same pixels as the pipeline gives directly, a
screenshot is saved; bad requests get a 400 with their reason."""

from __future__ import annotations

import base64
import io
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.cli_edit import tiny_pipeline
from model.serve import EditServer, make_server

ROOT = Path(__file__).resolve().parents[2]
PHOTO = ROOT / "examples" / "photos" / "chelsea.png"
CHROMIUM = "/usr/bin/chromium"  # Debian's chromium (make system-deps)
DEFAULTS = {"size_level": 32, "steps": 2, "cfg": 6.0, "seed": 7}


@pytest.fixture(scope="module")
def server() -> Iterator[EditServer]:
    srv = make_server(tiny_pipeline(), "127.0.0.1", 0, DEFAULTS)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def test_edit_page_round_trips_in_chromium(server: EditServer, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh --user-data-dir
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
            viewport={"width": 1200, "height": 800},
        )
        page = browser.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(server.url)
        assert page.title() == "Step1X-Edit"
        page.wait_for_function("document.getElementById('steps').value !== ''")  # defaults from /config
        assert page.input_value("#size_level") == "32" and page.input_value("#seed") == "7"
        page.click("#edit")  # nothing chosen yet: the page says so and sends nothing
        assert page.text_content("#status") == "choose an image first"
        page.set_input_files("#image", str(PHOTO))
        page.wait_for_function("!document.getElementById('preview').hidden")
        page.fill("#instruction", "make the cat blue")
        page.fill("#steps", "3")
        page.click("#edit")
        page.wait_for_function(
            "document.getElementById('result').src.startsWith('data:image/png')", timeout=120_000
        )
        assert page.text_content("#status").startswith("done in ")
        src = page.get_attribute("#result", "src")
        shot = tmp_path / "edit_page.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert problems == []
    assert Image.open(shot).size[0] == 1200
    edited = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    direct = server.pipe.edit(
        [Image.open(PHOTO)], ["make the cat blue"], size_level=32, num_steps=3, guidance=6.0, seed=7
    )
    assert edited.size == Image.open(PHOTO).size
    assert np.array_equal(np.asarray(edited.convert("RGB")), np.asarray(direct.images[0]))


def _post(server: EditServer, body: bytes, path: str = "/edit") -> tuple[int, dict]:
    request = urllib.request.Request(server.url.rstrip("/") + path, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_bad_requests_get_their_reason(server: EditServer) -> None:
    photo = "data:image/png;base64," + base64.b64encode(PHOTO.read_bytes()).decode()
    good = {"image": photo, "instruction": "add a hat", **DEFAULTS}
    cases = [
        ({**good, "instruction": "  "}, "the instruction is empty"),
        (
            {**good, "image": "data:text/plain;base64," + base64.b64encode(b"hello").decode()},
            "not a readable image",
        ),
        ({**good, "image": "data:image/png;base64,@@@"}, "not a readable image"),
        ({**good, "steps": "many"}, "bad or missing sampling option"),
        ({**good, "steps": 0}, "steps 1-"),
    ]
    for body, reason in cases:
        status, answer = _post(server, json.dumps(body).encode())
        assert status == 400 and reason in answer["error"], (body, answer)
    assert _post(server, b"{not json")[0] == 400
    assert _post(server, b"{}", path="/nowhere")[0] == 404
