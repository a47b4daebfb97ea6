"""Full fine-tuning sharded with FSDP2 over two CPU processes (`step1x-train --gpus 2`: torchrun + gloo),
bf16 mixed precision as on GPUs: the parameters are shards, the loss falls on a real shard set, and a run
resumed from its sharded checkpoint by a trainer built from scratch continues exactly (the same losses
and the same weights as the uninterrupted run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from model.cli_train import load_config
from model.train import Trainer
from model.transformer import Step1XEditTransformer

ROOT = Path(__file__).resolve().parents[2]
STEPS, HALF = 24, 12


@pytest.fixture(scope="module")
def fsdp_run(run_dir: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fsdp") / "out"
    cfg = out.parent / "train.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "shards": [str(run_dir / "shards" / "*.tar")],
                "init": "tiny",
                "mode": "full",
                "fsdp": True,
                "resolution": 32,
                "bucket_step": 16,
                "batch_size": 2,
                "mixed_precision": "bf16",
                "gradient_checkpointing": True,
                "lr": 2e-3,
                "lr_scheduler": "linear",
                "warmup_steps": 2,
                "max_steps": STEPS,
                "save_every": HALF,
                "log_every": 4,
                "shuffle_buffer": 4,
                "cache_dir": str(out.parent / "cache"),
                "val_shards": [str(run_dir / "shards" / "*.tar")],
                "val_every": STEPS,
                "val_batches": 1,
                "sample_every": STEPS,
                "sample_count": 1,
                "sample_steps": 2,
                "out": str(out),
            }
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    # the worker is started the way `step1x-train --gpus 2` starts itself (model/distributed.py)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += [str(ROOT / "tests" / "model" / "fsdp_worker.py"), "--config", str(cfg)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def reports(out: Path) -> list[dict]:
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


def test_parameters_are_shards_and_ranks_read_their_own_samples(fsdp_run: Path) -> None:
    r0, r1 = reports(fsdp_run)
    assert r0["world"] == r1["world"] == 2
    assert r0["all_dtensor"] and r1["all_dtensor"]
    # each process holds about half of every parameter, together all of it
    assert r0["local_numel"] + r1["local_numel"] == r0["global_numel"]
    assert 0.4 < r0["local_numel"] / r0["global_numel"] < 0.6
    ids0 = {i for batch in r0["ids"] for i in batch}
    ids1 = {i for batch in r1["ids"] for i in batch}
    assert ids0 and ids1 and not ids0 & ids1


def test_loss_falls(fsdp_run: Path) -> None:
    losses = np.mean([r["losses"] for r in reports(fsdp_run)], axis=0)  # both ranks' batches
    assert len(losses) == STEPS and np.isfinite(losses).all()
    first, last = losses[:6].mean(), losses[-6:].mean()
    assert last < 0.7 * first, (first, last)


def test_resume_from_sharded_checkpoint_is_exact(fsdp_run: Path) -> None:
    for r in reports(fsdp_run):
        assert r["resumed_losses"] == r["losses"][HALF:]  # bit for bit, every step after the resume
    r0 = reports(fsdp_run)[0]
    assert r0["checksum"] == r0["resumed_checksum"]
    ckpt = fsdp_run / f"checkpoint-{HALF}"
    assert sorted(p.name for p in (ckpt / "sharded").iterdir()) == [
        "rank-00000-of-00002.safetensors",
        "rank-00001-of-00002.safetensors",
    ]
    state = json.loads((ckpt / "state.json").read_text())
    assert state["step"] == HALF and state["sharded"]["world_size"] == 2
    weights = Path("transformer") / "diffusion_pytorch_model.safetensors"
    a = load_file(str(fsdp_run / f"checkpoint-{STEPS}" / weights))
    b = load_file(str(fsdp_run / "resumed-final" / weights))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_gathered_weights_load_as_the_trained_model(fsdp_run: Path) -> None:
    folder = fsdp_run / f"checkpoint-{STEPS}" / "transformer"
    model = Step1XEditTransformer.from_pretrained(folder, torch_dtype=torch.float32, use_safetensors=True)
    checksum = float(sum(p.detach().double().sum() for p in model.parameters()))
    assert checksum == reports(fsdp_run)[0]["checksum"]
    start = Step1XEditTransformer.from_config(model.config)  # a fresh init differs: the weights trained
    assert not all(torch.equal(p, q) for p, q in zip(model.parameters(), start.parameters(), strict=True))
    events = list((fsdp_run / "step1x-train").glob("events.out.tfevents.*"))
    assert events  # loss, validation and the sample grid were logged by process 0


def test_fsdp_in_one_process_is_refused(fsdp_run: Path) -> None:
    cfg = load_config(["--config", str(fsdp_run.parent / "train.yaml")])
    with pytest.raises(ValueError, match="launch 2 or more"):
        Trainer(cfg)
