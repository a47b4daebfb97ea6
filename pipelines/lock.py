"""One run at a time per run folder.

Two runs writing into one `--out` would number their shards alike and replace each other's files, so a
run holds `OUT/.lock` from before it reads the folder until it has written its last file, and a second run
refuses to start.

A local folder is locked with flock(2): the kernel releases it when the process ends, however it ends (a
SIGKILLed run leaves no stale lock), and NFSv4 carries it between machines. An object store (s3://, gs://)
has no such lock: there the lock is a lease object, created only if absent (a conditional write where the
store offers one, as S3 does through s3fs) and renewed by a background thread; a lease not renewed for
`LEASE_SECONDS` belongs to a run that died and is taken over.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import threading
import time
import uuid
from typing import Any

from pipelines.shards import RunFolder

LOCK_NAME = ".lock"
LEASE_SECONDS = 600  # a remote lease older than this is stale: its run died without releasing it
RENEW_SECONDS = 60


class RunLocked(Exception):
    """Another run holds the folder; the message names it and says what to do."""


def _holder(token: str) -> dict[str, Any]:
    now = time.time()
    return {"token": token, "host": platform.node(), "pid": os.getpid(), "since": now, "renewed": now}


def _describe(holder: dict[str, Any]) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {since}"


class RunLock:
    """A run's exclusive hold on its folder: `acquire` raises RunLocked when another run has it."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder
        self.path = folder.path(LOCK_NAME)
        self.token = uuid.uuid4().hex
        self._fd: int | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self) -> None:
        if self.folder.local:
            self._lock_local()
        else:
            self._lock_remote()

    def _lock_local(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_json(os.read(fd, 4096))
            os.close(fd)
            raise RunLocked(
                f"--out {self.folder.url} is in use by another run ({_describe(holder)}); two runs on one "
                "folder would overwrite each other's shards. Wait for it to finish, or choose another --out."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(_holder(self.token)).encode())
        self._fd = fd

    def _lock_remote(self) -> None:
        fs = self.folder.fs
        if fs.exists(self.path):
            holder = _read_json(fs.cat_file(self.path))
            age = time.time() - float(holder.get("renewed", 0))
            if age < LEASE_SECONDS:
                expires = time.strftime("%H:%M:%S", time.localtime(time.time() + LEASE_SECONDS - age))
                raise RunLocked(
                    f"--out {self.folder.url} is in use by another run ({_describe(holder)}, lease renewed "
                    f"{age:.0f} s ago). Wait for it to finish, or choose another --out. If that run died, "
                    f"its lease expires at {expires}, or delete {self.path} yourself."
                )
            fs.rm(self.path)  # the lease of a run that died
        try:
            fs.pipe_file(self.path, json.dumps(_holder(self.token)).encode(), mode="create")
        except FileExistsError:
            raise RunLocked(
                f"--out {self.folder.url} was taken by another run starting at the same moment; choose "
                "another --out or try again when it has finished."
            ) from None
        self._renewer = threading.Thread(target=self._renew, name="step1x-lease", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        fs = self.folder.fs
        while not self._stop.wait(RENEW_SECONDS):
            holder = _read_json(fs.cat_file(self.path)) if fs.exists(self.path) else {}
            if holder.get("token") != self.token:
                return  # taken over after this run stalled past its lease: stop renewing what is not ours
            fs.pipe_file(self.path, json.dumps({**holder, "renewed": time.time()}).encode())

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock; the file stays, harmless
            self._fd = None
        if self._renewer is not None:
            self._stop.set()
            self._renewer.join()
            self._renewer = None
            fs = self.folder.fs
            if fs.exists(self.path) and _read_json(fs.cat_file(self.path)).get("token") == self.token:
                fs.rm(self.path)


def _read_json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8") or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}
