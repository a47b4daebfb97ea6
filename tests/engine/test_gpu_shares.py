"""Every task's model backend fits one GPU: the GPU shares its plug-ins declare (the annotators' actors and
the edit actor holding its tools) add up to one at most, or Ray could never schedule the run on a one-GPU
machine, and would wait for ever."""

from __future__ import annotations

import pytest

from annotators.registry import resolve
from tasks.registry import available_tasks, load_task


@pytest.mark.parametrize("name", available_tasks())
def test_a_models_run_of_each_task_fits_one_gpu(name: str) -> None:
    task = load_task(name)
    # A plug-in without a models backend resolves to its offline one (no GPU).
    plugins = (*task.ANNOTATORS, *task.TOOLS)
    shares = {plugin: resolve(plugin, "models").resources.num_gpus for plugin in plugins}
    needed = sum(shares.values())
    assert needed <= 1.0, f"{name} needs {needed:.2f} GPUs on one machine: {shares}"
