"""A plug-in that overrides the `objects` annotator: an accelerator that runs out of memory.

It raises torch's real OutOfMemoryError for any batch of more than two sources (the engine must halve the
batch and go on), and for rocket.jpg's 640 px wide photo even alone (the engine must reject it with reason
`oom` and go on). Every batch size it was called with is appended to the file named by STEP1X_OOM_LOG.
"""

from __future__ import annotations

import os

import torch

from annotators.objects import OfflineObjects
from annotators.registry import Resources
from tasks.records import SourceSample

BACKENDS = {"offline": "oom_objects:OutOfMemoryObjects"}


class OutOfMemoryObjects(OfflineObjects):
    resources = Resources(num_cpus=1.0, batch_size=4)

    def annotate(self, sources: list[SourceSample]) -> None:
        with open(os.environ["STEP1X_OOM_LOG"], "a") as log:
            log.write(f"{len(sources)}\n")
        if len(sources) > 2 or any(source.width == 640 for source in sources):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        super().annotate(sources)
