"""The trainer on shards made by the data pipeline, tiny models, CPU: the loss falls, resume is exact,
LoRA save -> load -> sample works, TensorBoard gets loss/val/sample grids, the CLI reads YAML."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from model.cli_train import main as train_main
from model.data import DataFilter, ShardBatches
from model.fp8_base import Fp8Linear
from model.mllm import Step1XMLLMEncoder
from model.sampler import Step1XEditPipeline
from model.tiny import byte_tokenizer, tiny_qwen, tiny_transformer, tiny_vae
from model.train import Features, TrainConfig, Trainer, flow_loss, mask_weighted_mean, sample_sigmas

ROOT = Path(__file__).resolve().parents[2]


def config(run_dir: Path, out: Path, cache_dir: Path, **kw) -> TrainConfig:
    base = dict(
        shards=[str(run_dir / "shards" / "*.tar")],
        out=str(out),
        init="tiny",
        resolution=32,
        bucket_step=16,
        batch_size=2,
        mixed_precision="no",
        lr=2e-3,
        log_every=1,
        save_every=1000,
        cache_dir=str(cache_dir),
        shuffle_buffer=8,
        lora_rank=4,
        lora_alpha=4,
        seed=3,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_loader_buckets_filters_and_skips(run_dir: Path) -> None:
    shards = [str(run_dir / "shards" / "*.tar")]
    data = ShardBatches(shards, DataFilter(lang_en=0.0), 2, 64, 16, shuffle_buffer=8, seed=1)
    batches = list(data.epoch_batches(0))
    assert batches and all(b.source.shape == b.target.shape and b.source.shape[0] == 2 for b in batches)
    assert all(b.source.shape[-2] * b.source.shape[-1] <= 64 * 64 for b in batches)
    assert all(lang == "zh" for b in batches for lang in b.languages)
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in text) for b in batches for text in b.instructions)
    resumed = list(data.epoch_batches(0, skip=2))
    assert [b.ids for b in resumed] == [b.ids for b in batches[2:]]
    assert torch.equal(resumed[0].source, batches[2].source)
    other_epoch = [b.ids for b in data.epoch_batches(1)]
    assert other_epoch != [b.ids for b in batches]  # reshuffled per epoch
    with pytest.raises(ValueError, match="no sample passes"):
        ShardBatches(shards, DataFilter(tasks=["subject_removal"]), 1, 64, 16)


def test_full_finetune_loss_falls_and_logs(run_dir: Path, cache_dir: Path, tmp_path: Path) -> None:
    cfg = config(
        run_dir,
        tmp_path / "full",
        cache_dir,
        mode="full",
        max_steps=30,
        val_shards=[str(run_dir / "shards" / "*.tar")],
        val_every=15,
        val_batches=2,
        sample_every=30,
        sample_count=1,
        sample_steps=2,
    )
    losses = Trainer(cfg).train()
    first, last = np.mean(losses[:8]), np.mean(losses[-8:])
    assert last < 0.7 * first, (first, last)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "full" / "step1x-train"), size_guidance={"images": 4})
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/lr", "train/samples_per_s", "val/loss"} <= set(tags["scalars"])
    assert len(events.Scalars("val/loss")) == 2
    assert tags["images"] == ["samples/source|target|prediction"]
    saved = yaml.safe_load((tmp_path / "full" / "config.yaml").read_text())
    assert saved["mode"] == "full" and saved["max_steps"] == 30
    assert (tmp_path / "full" / "checkpoint-30" / "transformer" / "config.json").exists()


# torchao's 8-bit moments (only for matrices of >= 4096 elements: rank 128 at the tiny width of 32) are saved
# as their codes and scales; bf16 LoRA weights add the stochastic rounding, whose draws must repeat too
EIGHT_BIT = dict(optimizer="adamw8bit", lora_rank=128, lora_dtype="bf16")


@pytest.mark.parametrize("variant", [{}, EIGHT_BIT], ids=["adamw", "adamw8bit-bf16"])
def test_resume_is_exact(run_dir: Path, cache_dir: Path, tmp_path: Path, variant: dict) -> None:
    # batches of 2, 2 per optimizer step, over 30 samples: an epoch boundary falls inside the 10 steps
    common = dict(batch_size=2, grad_accum=2, lr_scheduler="linear", warmup_steps=2, max_steps=10, **variant)
    straight = config(run_dir, tmp_path / "straight", cache_dir, **common)
    Trainer(straight).train()
    first = config(run_dir, tmp_path / "resumed", cache_dir, stop_at=4, **common)  # interrupted after step 4
    Trainer(first).train()
    second = config(run_dir, tmp_path / "resumed", cache_dir, resume=True, **common)
    trainer = Trainer(second)
    trainer.train()
    assert trainer.epoch >= 1  # the run crossed an epoch boundary
    a = load_file(str(tmp_path / "straight" / "checkpoint-10" / "trainable.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "checkpoint-10" / "trainable.safetensors"))
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        assert torch.equal(a[k], b[k]), k
    lora_b = [k for k in a if "lora_B" in k]
    assert lora_b and any(a[k].abs().sum() > 0 for k in lora_b)  # trained, not the zero init
    saved = load_file(str(tmp_path / "resumed" / "checkpoint-4" / "optimizer.safetensors"))
    assert any(k.endswith(".codes") for k in saved) == bool(variant)


def test_lora_save_load_sample(run_dir: Path, cache_dir: Path, tmp_path: Path) -> None:
    cfg = config(run_dir, tmp_path / "lora", cache_dir, max_steps=5, save_every=5, lr=5e-3)
    trainer = Trainer(cfg)
    # the cache was filled for every sample before training (30 samples, English only)
    assert len(list(cache_dir.glob("*.en.*.mllm.safetensors"))) == trainer.data.num_samples == 30
    trainer.train()
    encoder = Step1XMLLMEncoder(tiny_qwen(3), byte_tokenizer())
    image = trainer.data.epoch_batches(0).__next__().source_images[0]
    trained = Step1XEditPipeline.from_parts(trainer.unwrapped(), trainer.vae, encoder).edit(
        [image], ["brighter"], 32, 3, seed=0
    )
    fresh = Step1XEditPipeline.from_parts(tiny_transformer("v1.1", seed=3), tiny_vae(3), encoder)
    base = fresh.edit([image], ["brighter"], 32, 3, seed=0)
    fresh.load_lora(str(tmp_path / "lora" / "checkpoint-5" / "lora"))
    loaded = fresh.edit([image], ["brighter"], 32, 3, seed=0)
    torch.testing.assert_close(loaded.latents[0], trained.latents[0])
    assert not torch.allclose(loaded.latents[0], base.latents[0])


def test_fp8_base_with_8bit_adamw_and_bf16_lora(run_dir: Path, cache_dir: Path, tmp_path: Path) -> None:
    """The low-memory LoRA recipe trains, and its adapter loads into an unquantised model as before.

    Without autocast (accelerate's mixed precision is fixed per process) the fp8 base runs in fp32 here;
    test_fp8_base.py covers it under bf16 autocast."""
    cfg = config(
        run_dir,
        tmp_path / "fp8",
        cache_dir,
        fp8_base=True,
        max_steps=20,
        save_every=20,
        lr=5e-3,
        **{**EIGHT_BIT, "lora_alpha": 128},
    )
    trainer = Trainer(cfg)
    assert sum(isinstance(m, Fp8Linear) for m in trainer.unwrapped().modules()) > 0
    losses = trainer.train()
    assert np.isfinite(losses).all()
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.7 * first, (first, last)
    trained = {n: p for n, p in trainer.unwrapped().named_parameters() if p.requires_grad}
    assert trained and all(p.dtype == torch.bfloat16 for p in trained.values())
    fresh = Step1XEditPipeline.from_parts(
        tiny_transformer("v1.1", seed=3), tiny_vae(3), trainer.features.encoder
    )
    fresh.load_lora(str(tmp_path / "fp8" / "checkpoint-20" / "lora"), adapter_name="edit")
    named = fresh.transformer.named_parameters()
    loaded = {n.replace(".edit.", ".default."): p for n, p in named if ".edit." in n}
    assert loaded.keys() == trained.keys()
    assert all(torch.equal(loaded[n].to(torch.bfloat16), trained[n]) for n in trained)


def test_cli_with_yaml(run_dir: Path, cache_dir: Path, tmp_path: Path) -> None:
    cfg_file = tmp_path / "train.yaml"
    cfg_file.write_text(
        yaml.safe_dump(
            {
                "shards": [str(run_dir / "shards" / "*.tar")],
                "init": "tiny",
                "resolution": 32,
                "bucket_step": 16,
                "mixed_precision": "no",
                "cache_dir": str(cache_dir),
                "max_steps": 50,
                "lora_rank": 2,
            }
        )
    )
    train_main(["--config", str(cfg_file), "--max-steps", "2", "--out", str(tmp_path / "cli")])
    saved = yaml.safe_load((tmp_path / "cli" / "config.yaml").read_text())
    assert saved["max_steps"] == 2 and saved["lora_rank"] == 2  # flags override the file
    assert (tmp_path / "cli" / "checkpoint-2" / "lora").is_dir()


def test_sigma_sampling_is_shifted_logit_normal() -> None:
    cfg = TrainConfig()
    sigmas = sample_sigmas(cfg, 200_000, torch.Generator().manual_seed(0))
    s = cfg.timestep_shift
    # the median of sigmoid(N(0,1)) is 0.5, and the shift is monotone: median = s*0.5 / (1 + (s-1)*0.5)
    assert abs(sigmas.median().item() - s / (s + 1)) < 0.005
    assert sigmas.min() > 0 and sigmas.max() < 1


def test_mask_weighting_and_instruction_dropout(run_dir: Path, cache_dir: Path) -> None:
    data = ShardBatches([str(run_dir / "shards" / "*.tar")], DataFilter(), 2, 32, 16, instruction_dropout=1.0)
    batch = next(data.epoch_batches(0))
    assert batch.instructions == ["", ""]  # dropout replaces the instruction by the empty (uncond) one
    features = Features(
        tiny_vae(3), Step1XMLLMEncoder(tiny_qwen(3), byte_tokenizer()), str(cache_dir), torch.device("cpu")
    )
    model = tiny_transformer("v1.1", seed=3)

    def loss(weight: float, mask: torch.Tensor) -> float:
        batch.mask = mask
        cfg = TrainConfig(mask_loss_weight=weight)
        with torch.no_grad():
            value = flow_loss(
                cfg,
                model,
                features,
                batch,
                torch.Generator().manual_seed(5),
                torch.device("cpu"),
                (0.1159, 0.3611),
            )
        return value.item()

    ones, left = torch.ones_like(batch.mask), torch.zeros_like(batch.mask)
    left[..., : left.shape[-1] // 2] = 1
    assert loss(5.0, ones) == pytest.approx(loss(1.0, left), rel=1e-6)  # uniform weights change nothing
    # a huge weight isolates one half's mean error; weight 5 must then give (5 left + right) / 6
    left_err, right_err = loss(1e6, left), loss(1e6, 1 - left)
    assert loss(5.0, left) == pytest.approx((5 * left_err + right_err) / 6, rel=1e-5)


def test_mask_weighted_mean_counts_the_masked_tokens_more() -> None:
    err = torch.ones(2, 4, 3)  # 2 samples, a 2x2 token grid, 3 channels
    err[:, [1, 3]] = 4.0  # the right column of tokens errs 4x
    mask = torch.zeros(2, 1, 8, 8)
    mask[..., 4:] = 1  # the right half of the pixels is edited
    assert mask_weighted_mean(err, mask, 2, 1.0).item() == pytest.approx(2.5)
    assert mask_weighted_mean(err, mask, 2, 3.0).item() == pytest.approx((1 + 3 * 4) / 4)
    mask[1, ..., 2:4] = 1  # half of sample 1's left tokens is covered: weight 2 there
    per_sample = [(1 + 3 * 4) / 4, (2 + 3 * 4) / 5]
    assert mask_weighted_mean(err, mask, 2, 3.0).item() == pytest.approx(sum(per_sample) / 2)
