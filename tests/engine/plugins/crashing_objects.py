"""A plug-in that overrides the `objects` annotator: native code that crashes its process.

On a batch holding coffee.png (the one photo 600 px wide) it reads address 0, a real segfault that kills
the Ray worker running it, every time. Before crashing it appends its pid to the file named by
STEP1X_CRASH_LOG, so a test can count the attempts. Batches without it are annotated like the offline
annotator does.
"""

from __future__ import annotations

import ctypes
import os

from annotators.objects import OfflineObjects
from annotators.registry import Resources
from tasks.records import SourceSample

BACKENDS = {"offline": "crashing_objects:CrashingObjects"}


class CrashingObjects(OfflineObjects):
    resources = Resources(num_cpus=1.0, batch_size=4)

    def annotate(self, sources: list[SourceSample]) -> None:
        if any(source.width == 600 for source in sources):
            with open(os.environ["STEP1X_CRASH_LOG"], "a") as log:
                log.write(f"{os.getpid()}\n")
            ctypes.string_at(0)  # SIGSEGV
        super().annotate(sources)
