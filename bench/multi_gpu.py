"""Multi-GPU benchmark (issue 20): FSDP2 full fine-tuning, the tiny configuration's training on shards, and
CFG-parallel editing, one part per torchrun launch, every model with random weights (no weights needed).

    python bench/multi_gpu.py --gpus 2 --shards 'runs/bench/shards/*.tar' --out bench-multi-gpu/
    python bench/multi_gpu.py --gpus 2 --tiny --device cpu --out /tmp/mg      # dry run: 2 gloo processes

Parts (each a separate `torchrun --nproc-per-node N` run of this file, so a part that fails or runs out of
time is reported and the others still run; its results are written to OUT/PART.json as soon as they exist,
and OUT/results.json collects every part after each one):
  fsdp     full fine-tuning (connector + DiT) sharded with FSDP2 over N GPUs at --size (1024), gradient
           checkpointing, bf16 mixed precision (fp32 master weights, AdamW fused): steps per second, peak
           memory per GPU, MFU. Then a sharded checkpoint (model/fsdp.py, the trainer's own) saved and
           loaded back: the loss of the next step, uninterrupted and resumed, must be equal. At full size the
           checkpoint (12 bytes per parameter: 149 GB for 12.4 B) does not fit the machine's disk, so that
           check runs on a model of the full width with --ckpt-blocks double/single blocks.
  tiny     the tiny configuration trained with step1x-train's Trainer (fsdp, bf16) on --shards (real
           data-engine shards): the loss, first and last steps.
  edit1    the 1024^2, 28-step edit on 1 GPU: bf16 eager, then --fp8 matmul + --compile (the fast path).
  edit2    the same on 2 GPUs with CFG parallelism (model/sampler.py `enable_cfg_parallel`).
  edit2sp  the same on 2 GPUs with sequence parallelism (diffusers' context parallelism, Ulysses).
The table printed last compares edit1 with edit2 and edit2sp; their images must agree (random weights: the
check is that two processes compute what one does, not that the edit is good).

FLOPs (model FLOPs utilisation; bench/RESULTS.md's formula extended to full fine-tuning): per sample of
S = 640 + 2N tokens, linear L and attention A as in bench/train_lora.py; full fine-tuning with checkpointing
does forward (L + A), recomputed forward (L + A), backward for activations (L + 2A) and for weights (L):
4L + 4A. Each GPU trains one sample per step; MFU = that / step time / this GPU's measured bf16 matmul rate.

NVLink multicast is kept off in every launch (NCCL_NVLS_ENABLE=0, TORCH_SYMM_MEM_DISABLE_MULTICAST=1,
NVSHMEM_DISABLE_NVLS=1). Needs torch, transformers, accelerate, diffusers; the tiny part also webdataset
and pyarrow (the shard reader).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.distributed import NVLS_OFF, init_process_group, local_device  # noqa: E402

PARTS = ("fsdp", "tiny", "edit1", "edit2", "edit2sp")
PHOTO = ROOT / "examples" / "photos" / "chelsea.png"
INSTRUCTION = "make the cat blue"


# ---- the parent: one torchrun per part ----


def run_part(part: str, args: argparse.Namespace, argv: list[str], timeout: float) -> dict:
    procs = 1 if part == "edit1" else args.gpus
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs)]
    cmd += [str(Path(__file__).resolve()), "--part", part, *argv]
    # the repository first; what the caller's PYTHONPATH held (carried wheels, say) after it
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, **NVLS_OFF, "PYTHONPATH": os.pathsep.join(paths)}
    env.setdefault("OMP_NUM_THREADS", "1" if args.device == "cpu" else "8")
    out = Path(args.out)
    log = out / f"{part}.log"
    t0 = time.perf_counter()
    with open(log, "w") as sink:
        try:
            code = subprocess.run(
                cmd, env=env, stdout=sink, stderr=subprocess.STDOUT, timeout=timeout
            ).returncode
            status = "ok" if code == 0 else f"failed: exit code {code} (see {log.name})"
        except subprocess.TimeoutExpired:
            status = f"timed out after {timeout:.0f} s (see {log.name})"
    part_file = out / f"{part}.json"
    result = json.loads(part_file.read_text()) if part_file.exists() else {}
    result["status"], result["wall_s"] = status, round(time.perf_counter() - t0, 1)
    if status != "ok":
        result["log_tail"] = log.read_text()[-2000:]
    return result


def parent(args: argparse.Namespace, argv: list[str]) -> None:
    os.environ.update(NVLS_OFF)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.perf_counter() + args.budget_s
    # a later run into the same folder (other --parts) adds to what an earlier one measured
    previous = out / "results.json"
    results: dict[str, dict] = json.loads(previous.read_text()) if previous.exists() else {}
    for part in args.parts.split(","):
        if part not in PARTS:
            raise SystemExit(f"unknown part {part!r}; expected some of {','.join(PARTS)}")
        left = deadline - time.perf_counter()
        if left < 20:
            results[part] = {"status": f"skipped: the --budget-s {args.budget_s:.0f} s was spent"}
        else:
            results[part] = run_part(part, args, argv, min(left, args.part_timeout_s))
        (out / "results.json").write_text(json.dumps(results, indent=1))
        print(f"{part}: {results[part]['status']} ({results[part].get('wall_s', 0)} s)", flush=True)
    if "edit1" in results and ("edit2" in results or "edit2sp" in results):
        results["edit_agreement"] = compare_edits(out)
        (out / "results.json").write_text(json.dumps(results, indent=1))
    print(table(results))


def compare_edits(out: Path) -> dict:
    """The largest pixel difference between the 1- and 2-GPU images of each part and variant."""
    import numpy as np
    from PIL import Image

    agreement = {}
    for one in sorted(out.glob("edit1-*.png")):
        variant = one.stem.removeprefix("edit1-")
        for part in ("edit2", "edit2sp"):
            two = out / f"{part}-{variant}.png"
            if two.exists():
                a, b = (np.asarray(Image.open(p), dtype=np.int16) for p in (one, two))
                agreement[f"{part}-{variant}"] = int(np.abs(a - b).max())
    return {"max_pixel_difference_from_edit1": agreement}


def table(results: dict) -> str:
    rows = ["| part | status | figures |", "|---|---|---|"]
    for part in PARTS:
        r = results.get(part)
        if r is None:
            continue
        keep = {k: v for k, v in r.items() if k not in ("status", "log_tail", "wall_s", "losses", "env")}
        rows.append(f"| {part} | {r['status']} ({r.get('wall_s', 0)} s) | {json.dumps(keep)} |")
    if "edit_agreement" in results:
        rows.append(f"| edit1 vs edit2, edit2sp | | {json.dumps(results['edit_agreement'])} |")
    return "\n".join(rows)


# ---- the workers (one process per GPU, under torchrun) ----


class Report:
    """What a part measured, written to OUT/PART.json by process 0 after every addition."""

    def __init__(self, out: Path, part: str) -> None:
        self.path, self.data = out / f"{part}.json", {}
        self.main = torch.distributed.get_rank() == 0

    def add(self, **values) -> None:
        self.data.update(values)
        if self.main:
            self.path.write_text(json.dumps(self.data, indent=1))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gib_per_process(device: torch.device) -> list[float] | None:
    if device.type != "cuda":
        return None
    peaks: list = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(peaks, round(torch.cuda.max_memory_allocated(device) / 2**30, 2))
    return peaks


def full_finetune_flops(size: int, h: int = 3072, m: int = 12288, text: int = 640) -> float:
    s = text + 2 * (size // 16) ** 2
    linear = 2 * s * (19 * 2 * (4 * h * h + 2 * h * m) + 38 * (h * (3 * h + m) + (h + m) * h))
    attention = 4 * s * s * h * (19 + 38)
    return 4 * linear + 4 * attention


def fsdp_model(args: argparse.Namespace, device: torch.device, **dims):
    """A sharded transformer with random fp32 weights, built on the device, and its fused AdamW."""
    from model.fsdp import shard_transformer
    from model.optim import make_optimizer
    from model.random_init import random_transformer
    from model.tiny import TINY_TRANSFORMER
    from model.train import TrainConfig

    model = random_transformer(
        "v1.1", device, torch.float32, seed=0, **(TINY_TRANSFORMER if args.tiny else dims)
    )
    model.enable_gradient_checkpointing()
    model.train()
    shard_transformer(model, device, "bf16")
    cfg = TrainConfig(mode="full", lr=1e-5)
    params = list(model.parameters())
    return model, make_optimizer(cfg, params, fused=True), sum(p.numel() for p in params)


def train_step(model, opt, size: int, step: int, device: torch.device) -> float:
    """One full fine-tuning step on this process's random sample of `step` (the trainer's loss)."""
    from model.train import TrainConfig, sample_sigmas

    c = model.config
    g = size // 16
    gen = torch.Generator().manual_seed(step * 1000 + torch.distributed.get_rank())
    x0, ref, noise = (torch.randn(1, g * g, c.in_channels, generator=gen).to(device) for _ in range(3))
    states = torch.randn(1, 640, c.mllm_hidden_size, generator=gen).to(device)
    mask = torch.ones(1, 640, dtype=torch.long, device=device)
    sigma = sample_sigmas(TrainConfig(), 1, gen).to(device)
    s = sigma[:, None, None]
    with torch.autocast(device.type, dtype=torch.bfloat16):
        pred = model((1 - s) * x0 + s * noise, ref, states, mask, sigma, (g, g))
    loss = ((pred.float() - (noise - x0)) ** 2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


def part_fsdp(args: argparse.Namespace, device: torch.device, report: Report) -> None:
    from bench.model_sampler import matmul_tflops
    from model.fsdp import load_shards, save_shards

    cuda = device.type == "cuda"
    if cuda:  # as the trainer does (TrainConfig.sdpa_cudnn): cuDNN's SDPA backward fails for this model
        torch.backends.cuda.enable_cudnn_sdp(False)
    size = args.size
    t0 = time.perf_counter()
    model, opt, n = fsdp_model(args, device)
    sync(device)
    report.add(size=size, params=n, processes=torch.distributed.get_world_size())
    report.add(build_s=round(time.perf_counter() - t0, 1))
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times, losses = [], []
    for step in range(args.steps):
        sync(device)
        t = time.perf_counter()
        losses.append(train_step(model, opt, size, step, device))
        sync(device)
        times.append(time.perf_counter() - t)
        report.add(step_s=[round(x, 3) for x in times], losses=losses)
    step_s = statistics.median(times[2:] if len(times) > 2 else times)
    report.add(steps_per_s=round(1 / step_s, 3), peak_gib_per_gpu=peak_gib_per_process(device))
    if cuda and not args.tiny:
        flops = full_finetune_flops(size)
        peak = matmul_tflops()
        report.add(matmul_bf16_tflops=round(peak, 1), mfu=round(flops / step_s / 1e12 / peak, 3))
    del model, opt
    if cuda:
        torch.cuda.empty_cache()

    # the sharded checkpoint: saved after 2 steps, the 3rd step run, the checkpoint loaded, the 3rd again
    double, single = (int(v) for v in args.ckpt_blocks.split(","))
    model, opt, n = fsdp_model(args, device, num_layers=double, num_single_layers=single)
    for step in range(2):
        train_step(model, opt, size, step, device)
    folder = Path(args.out) / "fsdp-checkpoint"
    t = time.perf_counter()
    meta = save_shards(model, opt, folder)
    torch.distributed.barrier()
    save_s = time.perf_counter() - t
    straight = [train_step(model, opt, size, step, device) for step in (2, 3)]
    t = time.perf_counter()
    load_shards(model, opt, folder, meta)
    load_s = time.perf_counter() - t
    resumed = [train_step(model, opt, size, step, device) for step in (2, 3)]
    written = sum(f.stat().st_size for f in folder.iterdir())
    report.add(
        checkpoint={
            "params": n,
            "blocks": args.ckpt_blocks,
            "bytes_written": written,
            "save_s": round(save_s, 1),
            "load_s": round(load_s, 1),
            "next_loss_uninterrupted": straight[0],
            "next_loss_resumed": resumed[0],
            "next_loss_equal": straight[0] == resumed[0],
            "second_loss_difference": abs(straight[1] - resumed[1]),
        }
    )
    torch.distributed.barrier()
    if report.main:
        for f in folder.iterdir():  # 12 bytes per parameter: do not leave it on the machine's disk
            f.unlink()
        folder.rmdir()


def part_tiny(args: argparse.Namespace, device: torch.device, report: Report) -> None:
    from model.train import TrainConfig, Trainer

    if not args.shards:
        raise ValueError("the tiny part trains on real shards: pass --shards")
    steps = args.tiny_steps
    cfg = TrainConfig(
        shards=[args.shards],
        out=str(Path(args.out) / "tiny-run"),
        init="tiny",
        mode="full",
        fsdp=True,
        resolution=32,
        bucket_step=16,
        batch_size=2,
        mixed_precision="bf16",
        gradient_checkpointing=True,
        lr=2e-3,
        lr_scheduler="linear",
        warmup_steps=2,
        max_steps=steps,
        save_every=steps,
        log_every=steps,
        shuffle_buffer=4,
        save_full_weights=False,
    )
    losses = Trainer(cfg).train()
    per_rank: list = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(per_rank, losses)
    mean = [statistics.fmean(v) for v in zip(*per_rank, strict=True)]  # every process's batches
    k = max(1, steps // 4)
    first, last = statistics.fmean(mean[:k]), statistics.fmean(mean[-k:])
    report.add(steps=steps, losses=mean, first_quarter=round(first, 4), last_quarter=round(last, 4))
    report.add(loss_falls=last < 0.7 * first)


def random_pipeline(args: argparse.Namespace, device: torch.device):
    from model.sampler import Step1XEditPipeline

    if args.tiny:
        from model.cli_edit import tiny_pipeline

        return tiny_pipeline(str(device))
    from model.random_init import random_encoder, random_transformer, random_vae

    transformer = random_transformer("v1.1", device, torch.bfloat16)
    return Step1XEditPipeline.from_parts(transformer, random_vae(device), random_encoder(device), device)


def part_edit(args: argparse.Namespace, device: torch.device, report: Report) -> None:
    from PIL import Image

    world = torch.distributed.get_world_size()
    pipe = random_pipeline(args, device)
    pipe.set_progress_bar_config(disable=True)
    part = args.part
    if part == "edit2":
        pipe.enable_cfg_parallel()
    elif part == "edit2sp":
        pipe.enable_sequence_parallel()
    photo = Image.open(PHOTO)
    variants = [("eager", False)] + ([("fp8_compile", True)] if device.type == "cuda" else [])
    report.add(size_level=args.edit_size, steps=args.edit_steps, processes=world)
    for name, fast in variants:
        if fast:
            pipe.quantize_fp8(dit="matmul")
            pipe.compile_blocks()
        t = time.perf_counter()
        pipe.edit([photo], [INSTRUCTION], size_level=args.edit_size, num_steps=2)  # kernels, compilation
        sync(device)
        warm_s = time.perf_counter() - t
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t = time.perf_counter()
        result = pipe.edit([photo], [INSTRUCTION], size_level=args.edit_size, num_steps=args.edit_steps)
        sync(device)
        edit_s = time.perf_counter() - t
        if report.main:
            result.images[0].save(Path(args.out) / f"{part}-{name}.png")
        report.add(
            **{name: {"edit_s": round(edit_s, 2), "warmup_s": round(warm_s, 1)}},
            **{f"{name}_peak_gib_per_gpu": peak_gib_per_process(device)},
        )


def worker(args: argparse.Namespace) -> None:
    device = local_device(args.device)
    init_process_group(device)
    report = Report(Path(args.out), args.part)
    report.add(env={k: os.environ.get(k) for k in NVLS_OFF}, torch=torch.__version__)
    if device.type == "cuda":
        report.add(gpu=torch.cuda.get_device_name(device))
    try:
        {"fsdp": part_fsdp, "tiny": part_tiny}.get(args.part, part_edit)(args, device, report)
    except Exception:
        report.add(error=traceback.format_exc()[-3000:])
        raise
    finally:
        torch.distributed.destroy_process_group()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpus", type=int, default=2, help="processes of the multi-GPU parts (default 2)")
    p.add_argument("--out", required=True, help="folder for PART.json, results.json, logs and images")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {','.join(PARTS)}")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--tiny", action="store_true", help="tiny models (a dry run of the script on the CPU)")
    p.add_argument("--size", type=int, default=1024, help="training image side (default 1024)")
    p.add_argument("--steps", type=int, default=6, help="timed training steps; the median is over steps 3..")
    p.add_argument(
        "--ckpt-blocks", default="1,2", help="double,single blocks of the checkpoint check's model"
    )
    p.add_argument("--shards", help="data-engine shards (a glob) for the tiny part")
    p.add_argument("--tiny-steps", type=int, default=24, help="training steps of the tiny part")
    p.add_argument("--edit-size", type=int, default=1024, help="edit size level (default 1024)")
    p.add_argument("--edit-steps", type=int, default=28, help="denoising steps (default 28)")
    p.add_argument("--budget-s", type=float, default=570, help="all parts' wall-clock budget (default 570)")
    p.add_argument("--part-timeout-s", type=float, default=240, help="one part's limit (default 240)")
    p.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # set for the workers by the parent
    args = p.parse_args()
    if args.part:
        worker(args)
    else:
        parent(args, sys.argv[1:])


if __name__ == "__main__":
    main()
