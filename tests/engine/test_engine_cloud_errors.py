"""s3:// and gs:// that cannot be used are one line before any work: which extra to install, or that the
credentials are missing, and for which URL. Real CLI processes; without an extra its package cannot be
imported (as when it is not installed); with it, no credentials, and for gs:// a local HTTP server that
answers as Google Cloud Storage answers an anonymous caller."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from engine_inputs import PHOTOS, REPO


def run_cli(
    args: list[str], env: dict[str, str], blocked: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """`step1x-data ARGS` in a fresh interpreter in which the `blocked` packages cannot be imported."""
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None  # import fails, as when it is not installed\n"
        "from pipelines.cli import main\n"
        f"sys.argv = ['step1x-data', *{args!r}]\n"
        "main()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300, env=env
    )


def no_credentials(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GOOGLE_", "GCE_"))}
    return {
        **env,
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance-role lookup on the network
        "AWS_CONFIG_FILE": str(tmp_path / "absent"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "absent"),
        "CLOUDSDK_CONFIG": str(tmp_path / "absent"),  # no gcloud application-default credentials
        "NO_GCE_CHECK": "True",  # google-auth does not probe a metadata server
    }


def one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("option", "url", "extra", "package"),
    [("--source", "s3://bucket/photos", "s3", "s3fs"), ("--out", "gs://bucket/runs/r1", "gcs", "gcsfs")],
)
def test_without_the_extra_the_line_names_it(
    tmp_path: Path, option: str, url: str, extra: str, package: str
) -> None:
    local = {"--source": str(PHOTOS), "--out": str(tmp_path / "run")}
    args = ["run", "tone_transformation", "--source", str(PHOTOS), "--out", str(tmp_path / "run"), "--quiet"]
    args[args.index(option) + 1] = url
    line = one_line(run_cli(args, no_credentials(tmp_path), blocked=("s3fs", "gcsfs")))
    install = f"pip install 'step1x-data[{extra}]' (it brings {package})"
    assert line == f"Error: {option}: {url} needs the {extra} extra: {install}"
    assert not Path(local["--out"]).exists()


def test_s3_without_credentials_says_so(tmp_path: Path) -> None:
    pytest.importorskip("s3fs")
    args = ["run", "tone_transformation", "--source", "s3://bucket/photos", "--out", str(tmp_path / "run")]
    line = one_line(run_cli(args, no_credentials(tmp_path)))
    assert line.startswith(
        "Error: --source: no usable credentials for s3://bucket/photos (NoCredentialsError"
    )
    assert "AWS_ACCESS_KEY_ID" in line
    assert not (tmp_path / "run").exists()


class AnonymousDenied(BaseHTTPRequestHandler):
    """What storage.googleapis.com answers a caller without credentials on a private bucket."""

    requests: list[str] = []

    def deny(self) -> None:
        AnonymousDenied.requests.append(self.requestline)
        body = json.dumps(
            {
                "error": {
                    "code": 401,
                    "message": "Anonymous caller does not have storage.objects.list access "
                    "to the Google Cloud Storage bucket.",
                    "errors": [{"reason": "required"}],
                }
            }
        ).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = deny

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def storage_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), AnonymousDenied)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_gs_without_credentials_says_so(tmp_path: Path, storage_server: str) -> None:
    pytest.importorskip("gcsfs")
    env = {**no_credentials(tmp_path), "STORAGE_EMULATOR_HOST": storage_server}
    args = ["run", "tone_transformation", "--source", str(PHOTOS), "--out", "gs://bucket/runs/r1"]
    line = one_line(run_cli(args, env))
    assert line.startswith("Error: --out: no usable credentials for gs://bucket/runs/r1 (HttpError")
    assert "GOOGLE_APPLICATION_CREDENTIALS" in line
    assert AnonymousDenied.requests, "the store was asked"
