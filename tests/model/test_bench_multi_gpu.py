"""bench/multi_gpu.py at tiny size on the CPU with 2 gloo processes per part: the script the lead runs once
on 2 GPUs, so every part must work here first, write its JSON, and a failing part must not lose the others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bench(out: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "bench" / "multi_gpu.py"), "--gpus", "2", "--tiny", "--device", "cpu"]
    cmd += ["--out", str(out), *args]
    env = {k: v for k, v in os.environ.items() if k not in ("NCCL_NVLS_ENABLE", "NVSHMEM_DISABLE_NVLS")}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def results(run_dir: Path, tmp_path_factory) -> tuple[dict, str, Path]:
    out = tmp_path_factory.mktemp("bench")
    shards = str(run_dir / "shards" / "*.tar")
    args = ["--size", "32", "--steps", "3", "--shards", shards, "--tiny-steps", "8"]
    done = bench(out, *args, "--edit-size", "48", "--edit-steps", "4")
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "results.json").read_text()), done.stdout, out


def test_every_part_runs_and_is_reported(results) -> None:
    res, stdout, out = results
    for part in ("fsdp", "tiny", "edit1", "edit2", "edit2sp"):
        assert res[part]["status"] == "ok", res[part]
        assert json.loads((out / f"{part}.json").read_text())["env"] == {
            "NCCL_NVLS_ENABLE": "0",
            "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
            "NVSHMEM_DISABLE_NVLS": "1",
        }
    assert stdout.splitlines()[-1].startswith("| edit1 vs edit2")  # the table is printed last
    fsdp = res["fsdp"]
    assert fsdp["processes"] == 2 and len(fsdp["losses"]) == 3 and fsdp["steps_per_s"] > 0
    assert not (out / "fsdp-checkpoint").exists()  # removed after the check


def test_sharded_checkpoint_resumes_exactly(results) -> None:
    ckpt = results[0]["fsdp"]["checkpoint"]
    # fp32 parameters and two AdamW moments (the step counts are scalars): 12 bytes per parameter
    assert 12 * ckpt["params"] < ckpt["bytes_written"] < 13 * ckpt["params"] + 200_000
    assert ckpt["next_loss_equal"], ckpt
    assert ckpt["second_loss_difference"] == 0  # the resumed optimizer step matches too (on the CPU)


def test_tiny_training_on_shards_is_reported(results) -> None:
    # 8 steps keep this test short: that the loss falls over 24 is test_fsdp_cpu's (the same Trainer)
    tiny = results[0]["tiny"]
    assert tiny["steps"] == 8 and len(tiny["losses"]) == 8
    assert tiny["last_quarter"] < tiny["first_quarter"]
    assert tiny["loss_falls"] == (tiny["last_quarter"] < 0.7 * tiny["first_quarter"])


def test_parallel_edits_agree_with_one_process(results) -> None:
    res, _, out = results
    assert res["edit1"]["processes"] == 1 and res["edit2"]["processes"] == res["edit2sp"]["processes"] == 2
    assert res["edit2"]["eager"]["edit_s"] > 0 and res["edit2sp"]["eager"]["edit_s"] > 0
    agreement = res["edit_agreement"]["max_pixel_difference_from_edit1"]
    assert agreement.keys() == {"edit2-eager", "edit2sp-eager"}
    assert max(agreement.values()) <= 1, agreement
    assert (out / "edit2-eager.png").exists()


def test_a_failing_part_is_reported_and_the_rest_kept(tmp_path: Path) -> None:
    # the tiny part without shards fails; the edit part after it still runs and both are in results.json
    done = bench(tmp_path, "--parts", "tiny,edit1", "--edit-size", "32", "--edit-steps", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["tiny"]["status"].startswith("failed: exit code")
    assert "pass --shards" in res["tiny"]["error"] and res["tiny"]["log_tail"]
    assert res["edit1"]["status"] == "ok" and res["edit1"]["eager"]["edit_s"] > 0
