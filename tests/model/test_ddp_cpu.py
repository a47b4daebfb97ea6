"""Two processes on the CPU (torchrun + gloo): each rank reads different samples, gradients are averaged so
the weights stay identical, and one checkpoint is written. The GPU counterpart (FSDP, 2 GPUs) is issue 6."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_two_process_full_finetune(run_dir: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "train.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "shards": [str(run_dir / "shards" / "*.tar")],
                "init": "tiny",
                "mode": "full",
                "resolution": 32,
                "bucket_step": 16,
                "batch_size": 2,
                "mixed_precision": "no",
                "lr": 2e-3,
                "max_steps": 3,
                "save_every": 3,
                "log_every": 1,
                "shuffle_buffer": 4,
                "out": str(tmp_path / "out"),
            }
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        str(ROOT / "tests" / "model" / "ddp_worker.py"),
        "--config",
        str(cfg),
    ]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    reports = [json.loads((tmp_path / "out" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 and r["finite"] for r in reports)
    ids0 = {i for batch in reports[0]["ids"] for i in batch}
    ids1 = {i for batch in reports[1]["ids"] for i in batch}
    assert ids0 and ids1 and not ids0 & ids1  # the ranks read disjoint samples
    assert reports[0]["losses"] != reports[1]["losses"]
    assert abs(reports[0]["checksum"] - reports[1]["checksum"]) < 1e-6  # all-reduced gradients
    assert (tmp_path / "out" / "checkpoint-3" / "transformer" / "config.json").exists()
