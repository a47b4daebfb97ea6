"""Out-of-memory errors that leave the accelerator's memory free for the engine's retry.

An exception keeps its traceback, and the traceback keeps every frame of the failed call alive with the
tensors those frames hold: re-raising it as it is leaves those tensors allocated while the engine retries
the batch at half size (pipelines/stages.py), which then runs out of memory again. The model backends run
their GPU work through ``releasing_memory_on_oom``, which lets the failed call's frames go, empties the
allocator's cache and raises a fresh ``torch.OutOfMemoryError`` with the same message.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def releasing_memory_on_oom(call: Callable[[], T]) -> T:
    """``call()``; on an out-of-memory, free what the failed call held and raise torch.OutOfMemoryError."""
    import torch

    try:
        return call()
    except torch.OutOfMemoryError as error:
        message = str(error)
    # Outside the except block the original exception, its traceback and the frames' tensors are gone.
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    raise torch.OutOfMemoryError(message)
