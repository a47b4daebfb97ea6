"""A source that kills its worker process (a segfault in a decoder, the OS killing it for memory) is tried a
bounded number of times, then rejected as `worker_crashed`, and the run goes on.

Ray retries a task, and restarts an actor, whose process died, without limit by default; it cannot say
which of a block's sources was running. So each step call in a Ray worker first tells a ledger (one small
actor per run) which source it begins, and afterwards that it ended. A source begun and never ended was
running when its process died. When a retry reaches a source that has done so MAX_CRASHES times, the
worker rejects it instead of running the step again. An actor that runs two calls at once (the edit step
of a model backend) blames both sources for its death; one source is still rejected only after three.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from pipelines.items import WorkItem

MAX_CRASHES = 3

BatchCall = Callable[[list[WorkItem]], list[WorkItem]]


class CrashLedger:
    """Per source and step: attempts begun and not ended, i.e. the processes it took down."""

    def __init__(self) -> None:
        self._open: Counter[str] = Counter()

    def begin(self, keys: list[str]) -> list[int]:
        """The crashes of each source so far; counts this attempt for those still to be tried."""
        crashes = [self._open[key] for key in keys]
        for key, count in zip(keys, crashes, strict=True):
            if count < MAX_CRASHES:
                self._open[key] += 1
        return crashes

    def end(self, keys: list[str]) -> None:
        for key in keys:
            self._open[key] -= 1
            if self._open[key] <= 0:
                del self._open[key]


def new_ledger() -> Any:
    """The run's ledger actor (no CPU of its own: it only counts)."""
    import ray

    return ray.remote(num_cpus=0)(CrashLedger).remote()


def _key(step: str, item: WorkItem) -> str:
    # The content hash, once known, tells apart the frame pairs of one video (one uri, many items).
    return f"{step}|{item.ref['uri']}|{item.sha256 or ''}"


def _give_up(item: WorkItem, step: str) -> WorkItem:
    return item.reject(
        "worker_crashed",
        f"the worker process died {MAX_CRASHES} times while step {step!r} ran on this source (a crash in "
        "native code, or the OS killing it for memory); not tried again",
    )


class CrashGuard:
    """The worker's side: wraps each step call in begin/end, and rejects what crashed too often."""

    def __init__(self, ledger: Any, step: str) -> None:
        self.ledger = ledger
        self.step = step

    def one(self, item: WorkItem, call: Callable[[WorkItem], Any]) -> Any:
        if item.finished:
            return call(item)  # later steps pass a finished item through untouched
        import ray

        key = _key(self.step, item)
        (crashes,) = ray.get(self.ledger.begin.remote([key]))  # recorded before the step can crash
        if crashes >= MAX_CRASHES:
            return _give_up(item, self.step)
        result = call(item)
        self.ledger.end.remote([key])  # in order with this worker's next begin: an actor runs calls in order
        return result

    def batch(self, items: list[WorkItem], call: BatchCall) -> list[WorkItem]:
        """A batch at once while none of its sources has crashed a worker; else one source at a time, so
        that only the one that crashes is counted."""
        import ray

        todo = [item for item in items if not item.finished]
        keys = [_key(self.step, item) for item in todo]
        crashes = ray.get(self.ledger.begin.remote(keys)) if keys else []
        if not any(crashes):
            result = call(items)
            if keys:
                self.ledger.end.remote(keys)
            return result
        self.ledger.end.remote([k for k, n in zip(keys, crashes, strict=True) if n < MAX_CRASHES])  # undo
        return [self.one(item, lambda single: call([single])[0]) for item in items]
