"""Several processes, one per GPU: the launcher behind `--gpus N`, and the process group it starts.

`step1x-edit --gpus N` and `step1x-train --gpus N` start themselves again under `torch.distributed.run`
(torchrun) with N processes on this machine; each process reads RANK / LOCAL_RANK / WORLD_SIZE from the
environment torchrun sets. With `--device cpu` the processes are CPU processes talking over gloo (how the
tests run every multi-GPU path on a machine without a GPU).

NVLink multicast (NVLS) stays off in every launch: on the shared hosts this project's GPUs come from, a
program that uses it can put every GPU of the host out of service for a long time. NCCL, torch's
symmetric memory and NVSHMEM each have their own switch, and all three are set before any process group
exists (they are read when a communicator is created), also by `init_process_group` below for processes
started by another launcher.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import MutableMapping

import torch

NVLS_OFF = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


def nvls_off(env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Set the three NVLink multicast switches to off in `env` (default: this process's environment)."""
    env = os.environ if env is None else env
    env.update(NVLS_OFF)
    return env


def launched() -> bool:
    """True inside a process started by torchrun (or any launcher that sets WORLD_SIZE)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def relaunch(module: str, argv: list[str], processes: int) -> int:
    """Run `python -m module argv` as `processes` processes under torchrun on this machine; its exit code.

    torchrun's `--standalone` picks a free rendezvous port, so several launches can share a machine.
    """
    if processes < 2:
        raise ValueError("relaunch is for two or more processes")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(processes),
        "-m",
        module,
        *argv,
    ]
    env = nvls_off(dict(os.environ))
    # torchrun would otherwise set OMP_NUM_THREADS=1 with a warning; keep an explicit choice if made
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    return subprocess.run(cmd, env=env).returncode


def local_device(device: str) -> torch.device:
    """This process's device: `cuda` becomes `cuda:LOCAL_RANK` (one GPU per process), others stay."""
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return dev


def init_process_group(device: torch.device) -> None:
    """The default process group for a torchrun-started process: NCCL for CUDA tensors and gloo for CPU
    ones when the device is a GPU (gloo also carries small CPU-side messages without device syncs), gloo
    alone on the CPU."""
    import torch.distributed as dist

    if dist.is_initialized():
        return
    nvls_off()
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("cpu:gloo,cuda:nccl")
    else:
        dist.init_process_group("gloo")
