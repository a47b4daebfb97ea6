"""A real HTTP server on 127.0.0.1 that speaks the chat-completions protocol and answers from a script.

It exists so that tests and `bench/judge_*.py` exercise the real `openai` client, sockets, retries and
timeouts without any service outside the machine. A script is a function from the parsed request body to a
`Reply`: an answer text, an HTTP error status, or a hang longer than the client's timeout.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    text: str | None = None  # the assistant message content when status == 200
    status: int = 200
    hang_s: float = 0.0  # sleep this long before answering (a server stuck past the client's timeout)
    delay_s: float = 0.0  # ordinary latency
    headers: dict[str, str] = field(default_factory=dict)
    prompt_tokens: int = 100
    completion_tokens: int = 20


Script = Callable[[dict[str, Any]], Reply]


def request_text(body: dict[str, Any]) -> str:
    """All text parts of the user's messages, joined: what a script usually branches on."""
    parts: list[str] = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if p.get("type") == "text")
    return "\n".join(parts)


def request_images(body: dict[str, Any]) -> list[str]:
    """The image URLs (data: URLs) of the user's messages, in order."""
    urls: list[str] = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            urls.extend(p["image_url"]["url"] for p in content if p.get("type") == "image_url")
    return urls


class ScriptedServer:
    """Use as a context manager; `url` is the base URL to give the client (ends in /v1)."""

    def __init__(self, script: Script, models: tuple[str, ...] = ("scripted-model",)) -> None:
        self.script = script
        self.models = models  # what GET /v1/models lists
        # {"body": ..., "headers": {lowercased name: value}} of every request received
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        # Set at shutdown so that handlers sleeping in a "hang" return at once instead of outliving the test.
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real server; the client reuses connections
            # Headers and body go out in two writes; with Nagle on, the second waits for the client's delayed
            # ACK (~40 ms on Linux) and every request would look 40 ms slower than it is.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                # The default handler prints every request to stderr; tests assert on stderr contents.
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    data = [
                        {"id": m, "object": "model", "created": 0, "owned_by": "scripted"}
                        for m in server.models
                    ]
                    self._send_json(200, {"object": "list", "data": data})
                else:
                    self._send_json(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    server.requests.append({"body": body, "headers": headers})
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    reply = server.script(body)
                    if reply.hang_s and server._stopping.wait(reply.hang_s):
                        return
                    if reply.delay_s:
                        time.sleep(reply.delay_s)
                    self._send(reply, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): nothing to answer
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _send(self, reply: Reply, body: dict[str, Any]) -> None:
                if reply.status == 200:
                    payload: dict[str, Any] = {
                        "id": f"chatcmpl-{len(server.requests)}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", ""),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": reply.text},
                            }
                        ],
                        "usage": {
                            "prompt_tokens": reply.prompt_tokens,
                            "completion_tokens": reply.completion_tokens,
                            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
                        },
                    }
                else:
                    error = {"message": f"scripted status {reply.status}", "type": "server_error"}
                    payload = {"error": error}
                self._send_json(reply.status, payload, reply.headers)

            def _send_json(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler
