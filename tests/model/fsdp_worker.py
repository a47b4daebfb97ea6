"""Run by test_fsdp_cpu under torchrun (2 gloo processes): full fine-tuning sharded with FSDP2.

1. An uninterrupted run of `max_steps` steps that saves a checkpoint half-way and at the end.
2. A second trainer, built from scratch in the same process, resumes from the half-way checkpoint and
   runs to the end.
Each process writes what it saw to OUT/rank<R>.json: both runs' losses, its shards' sizes, the samples it
read, and a checksum of the gathered weights after each run.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import torch
from torch.distributed.tensor import DTensor

from model.cli_train import load_config
from model.fsdp import gather_full_state
from model.train import Trainer


def checksum(trainer: Trainer) -> float:
    full = gather_full_state(trainer.transformer)  # every process takes part; process 0 gets the tensors
    return float(sum(v.double().sum() for v in full.values()))


cfg = load_config(sys.argv[1:])
half = cfg.save_every
straight = Trainer(cfg)
rank = straight.accelerator.process_index
first_ids = [b.ids for b, _ in zip(straight.data.epoch_batches(0), range(3), strict=False)]
losses = straight.train()
report = {
    "world": straight.accelerator.num_processes,
    "ids": first_ids,
    "losses": losses,
    "checksum": checksum(straight),
    "all_dtensor": all(isinstance(p, DTensor) for p in straight.transformer.parameters()),
    "local_numel": sum(p.to_local().numel() for p in straight.transformer.parameters()),
    "global_numel": sum(p.numel() for p in straight.transformer.parameters()),
}
del straight

# A fresh trainer resumes from the half-way checkpoint: the later checkpoint is moved aside (it would be
# the latest), and restored afterwards for the test to compare the gathered weights.
out = Path(cfg.out)
final = out / f"checkpoint-{cfg.max_steps}"
moved = out / "straight-final"
if rank == 0:
    final.rename(moved)
torch.distributed.barrier()
resumed = Trainer(dataclasses.replace(cfg, resume=True))
report["resumed_losses"] = resumed.train()
report["resumed_from"] = half
report["resumed_checksum"] = checksum(resumed)
torch.distributed.barrier()
if rank == 0:
    final.rename(out / "resumed-final")
    moved.rename(final)
(out / f"rank{rank}.json").write_text(json.dumps(report))
