"""`step1x-edit serve`: a local web page to edit one image at a time (image upload, instruction, the main
sampling options, the result), like the reference's Gradio app.

The standard library's threading HTTP server and one static page: a single-user tool needs no web
framework, and Gradio would add a large dependency tree for four inputs. Edits run one at a time (one model
in memory). GET / is the page, GET /config its defaults, POST /edit takes JSON {image: data URL, instruction,
size_level, steps, cfg, seed} and answers {image: PNG data URL, seconds} or {error} with status 400.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from PIL import Image, UnidentifiedImageError

from model.cli_edit import (
    DEFAULT_SIZE_LEVEL,
    TINY_SIZE_LEVEL,
    add_model_arguments,
    add_sampling_arguments,
    build_pipeline,
)
from model.sampler import Step1XEditPipeline

MAX_BODY_BYTES = 64 * 2**20
MAX_STEPS = 200


class BadRequest(ValueError):
    """A request the page can correct: answered 400 with its message."""


def parse_edit_request(body: dict) -> tuple[Image.Image, str, dict]:
    """(image, instruction, sampling options) from a POST /edit body, or BadRequest naming the problem."""
    instruction = str(body.get("instruction", "")).strip()
    if not instruction:
        raise BadRequest("the instruction is empty")
    data_url = str(body.get("image", ""))
    _, _, payload = data_url.partition("base64,")
    try:
        image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
        image.load()
    except (binascii.Error, UnidentifiedImageError, OSError) as e:
        raise BadRequest(f"the upload is not a readable image ({type(e).__name__})") from e
    try:
        options = {
            "size_level": int(body["size_level"]),
            "num_steps": int(body["steps"]),
            "guidance": float(body["cfg"]),
            "seed": int(body["seed"]),
        }
    except (KeyError, TypeError, ValueError) as e:
        raise BadRequest(f"bad or missing sampling option: {e}") from e
    if not 16 <= options["size_level"] <= 4096 or not 1 <= options["num_steps"] <= MAX_STEPS:
        raise BadRequest(f"size level must be 16-4096 and steps 1-{MAX_STEPS}")
    return image, instruction, options


def png_data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class EditServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], pipe: Step1XEditPipeline, defaults: dict) -> None:
        super().__init__(address, EditHandler)
        self.pipe = pipe
        self.defaults = defaults
        self.lock = threading.Lock()  # one model in memory: one edit at a time
        self.page = resources.files("model").joinpath("serve_page.html").read_bytes()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


class EditHandler(BaseHTTPRequestHandler):
    server: EditServer

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, value: dict) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802 - the standard library's handler name
        if self.path == "/":
            self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8")
        elif self.path == "/config":
            self._json(HTTPStatus.OK, self.server.defaults)
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no page {self.path}"})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/edit":
            return self._json(HTTPStatus.NOT_FOUND, {"error": f"no endpoint {self.path}"})
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            return self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "the image is over 64 MiB"})
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            image, instruction, options = parse_edit_request(body if isinstance(body, dict) else {})
        except (BadRequest, json.JSONDecodeError) as e:
            return self._json(HTTPStatus.BAD_REQUEST, {"error": str(e)})
        t0 = time.perf_counter()
        try:
            with self.server.lock:
                result = self.server.pipe.edit([image], [instruction], **options)
        except Exception:  # a bug, not a bad request: said loudly here and to the page
            traceback.print_exc()
            return self._json(
                HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "the edit failed: see the server log"}
            )
        seconds = time.perf_counter() - t0
        self._json(HTTPStatus.OK, {"image": png_data_url(result.images[0]), "seconds": seconds})


def make_server(pipe: Step1XEditPipeline, host: str, port: int, defaults: dict) -> EditServer:
    pipe.set_progress_bar_config(disable=True)
    return EditServer((host, port), pipe, defaults)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="step1x-edit serve", description=__doc__)
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)"
    )
    p.add_argument(
        "--port", type=int, default=7860, help="port to listen on (default 7860; 0 picks a free one)"
    )
    add_sampling_arguments(p)
    add_model_arguments(p)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    size = args.size_level or (TINY_SIZE_LEVEL if args.tiny else DEFAULT_SIZE_LEVEL)
    defaults = {"size_level": size, "steps": args.steps, "cfg": args.cfg, "seed": args.seed}
    server = make_server(build_pipeline(args), args.host, args.port, defaults)
    print(f"step1x-edit: serving the edit page on {server.url} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
