"""Run by test_ddp_cpu under torchrun: train a few steps, then write this rank's view of the weights."""

from __future__ import annotations

import json
import sys

import torch

from model.cli_train import load_config
from model.train import Trainer

trainer = Trainer(load_config(sys.argv[1:]))
first_ids = [b.ids for b, _ in zip(trainer.data.epoch_batches(0), range(3), strict=False)]
losses = trainer.train()
rank = trainer.accelerator.process_index
checksum = float(sum(p.detach().double().sum() for p in trainer.unwrapped().parameters()))
report = {
    "rank": rank,
    "world": trainer.accelerator.num_processes,
    "ids": first_ids,
    "losses": losses,
    "checksum": checksum,
    "finite": all(torch.isfinite(torch.tensor(losses)).tolist()),
}
with open(f"{trainer.out}/rank{rank}.json", "w") as f:
    json.dump(report, f)
