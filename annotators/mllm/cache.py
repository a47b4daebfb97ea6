"""On-disk cache of chat-completion answers.

The key is a sha256 over (model, prompt text, content hashes of the images sent, extra request fields such as
the attempt number or candidate index). Re-running a filter with the same judge, or with other thresholds,
therefore costs no request. One small JSON file per key: concurrent writers (threads, Ray workers on a shared
disk) never corrupt each other because each file is written to a temp name and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def cache_key(model: str, prompt: str, image_hashes: list[str], extra: dict[str, Any] | None = None) -> str:
    payload = {"model": model, "prompt": prompt, "images": image_hashes, "extra": extra or {}}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


class ResponseCache:
    """Maps a cache key to the stored answer (a JSON-serialisable dict)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        # Two-level fan-out keeps directories small when a run caches millions of answers.
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:
            # A truncated file can only come from a crash outside our atomic write (disk full, copy);
            # treating it as a miss re-asks the server instead of failing the whole run.
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(value, f, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
