"""Training Step1X-Edit on the data engine's shards: rectified flow, LoRA or full fine-tuning, accelerate.

Objective (the reference recipe): x_s = (1 - s) x0 + s eps with s = shift(sigmoid(N(mean, std))), target
eps - x0, MSE over the target tokens only; the reference latents are clean and concatenated after the
target, at the release's RoPE ids (v1.1: (1, r+1, c+1), where its inference places them; v1.0: the target's).
Randomness of step k comes from a generator seeded by (seed, k, rank), and the data stream is a
pure function of (seed, epoch), so a resumed run reaches the same weights as an uninterrupted one.

Checkpoints (`OUT/checkpoint-STEP/`) are safetensors + json only: `lora/` (diffusers/peft adapter, loadable
by the sampler) and `trainable.safetensors` for LoRA runs, `transformer/` (save_pretrained) for full
fine-tuning, `optimizer.safetensors` + `state.json` (step, data position, LR scheduler, optimizer groups;
see `model/optim.py`). With `fsdp` (full fine-tuning sharded over the processes, `model/fsdp.py`) each
process writes its shards to `sharded/`, and `transformer/` holds the gathered weights when
`save_full_weights` is on. state.json is written last: a checkpoint folder without it is incomplete and
is not resumed from.

Memory options of a LoRA run (the reference's): `optimizer: adamw8bit` (torchao's 8-bit moments),
`lora_dtype: bf16` (bf16 LoRA weights and gradients, stochastically rounded updates) and `fp8_base` (the
frozen Linears of the blocks in float8, `model/fp8_base.py`).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import DistributedType
from diffusers import AutoencoderKL
from diffusers.optimization import get_scheduler
from PIL import Image
from safetensors.torch import load_file, save_file

from model.checkpointing import cpu_offloaded_checkpoint
from model.fp8_base import fp8_base_linears
from model.fsdp import gather_full_state, load_shards, resharded, save_shards, shard_transformer
from model.latents import pack, pixels_to_uint8
from model.mllm import Step1XMLLMEncoder
from model.optim import OPTIMIZERS, load_optimizer, make_optimizer, retensor, save_optimizer
from model.transformer import Step1XEditTransformer

if TYPE_CHECKING:
    from model.data import Batch, ShardBatches

# Every Linear inside the double and single blocks, as the reference LoRA recipe (lora_module.py) targets.
LORA_TARGETS = (
    r".*transformer_blocks\.\d+\.(attn\.(to_q|to_k|to_v|to_out\.0|add_q_proj|add_k_proj|add_v_proj|to_add_out)"
    r"|ff\.net\.(0\.proj|2)|ff_context\.net\.(0\.proj|2)|norm1\.linear|norm1_context\.linear|norm\.linear"
    r"|proj_mlp|proj_out)"
)
LORA_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass
class TrainConfig:
    shards: list[str] = field(default_factory=list)
    out: str = "ckpt"
    # "official" (models folder), a saved transformer/ dir, "random" (full size, random weights: benchmarks)
    # or "tiny" (tiny random models: tests)
    init: str = "official"
    models_dir: str | None = None
    version: str = "v1.1"
    mode: str = "lora"  # "lora" or "full" (connector + DiT)
    fsdp: bool = False  # full fine-tuning sharded over the processes (FSDP2); needs 2+ processes
    save_full_weights: bool = True  # with fsdp: also gather the full weights into each checkpoint
    lora_rank: int = 64
    lora_alpha: int = 32
    resolution: int = 512
    bucket_step: int = 64
    batch_size: int = 1
    grad_accum: int = 1
    lr: float = 1e-4
    weight_decay: float = 1e-2
    lr_scheduler: str = "constant"
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    max_steps: int = 1000
    save_every: int = 500
    log_every: int = 10
    seed: int = 42
    mixed_precision: str = "bf16"
    gradient_checkpointing: bool = False
    # with gradient_checkpointing: the saved block inputs in pinned CPU memory (peak -1.6 GiB at 1024^2)
    offload_checkpoints: bool = False
    compile_blocks: bool = False  # torch.compile of the repeated blocks: 1.8x faster LoRA steps on an H100
    # cuDNN's SDPA backward gave NaN and then an illegal memory access for this model on an H100 with torch
    # 2.11 (bench/RESULTS.md, Trainer); off by default, leaving flash / memory-efficient attention.
    sdpa_cudnn: bool = False
    optimizer: str = "adamw"  # or "adamw8bit" (torchao)
    lora_dtype: str = "fp32"  # or "bf16": half the LoRA weight and gradient memory, stochastic rounding
    fp8_base: bool = False  # LoRA: the frozen Linears of the blocks in float8_e4m3fn, per-row scales
    timestep_shift: float = 3.1582  # e^1.15, the 1024^2 inference shift
    logit_mean: float = 0.0
    logit_std: float = 1.0
    instruction_dropout: float = 0.0
    mask_loss_weight: float = 1.0  # > 1 weights the edited region more (local edits with a mask)
    lang_en: float = 1.0
    view: str | None = None
    min_o: float | None = None
    tasks: list[str] | None = None
    shuffle_buffer: int = 64
    cache_dir: str | None = None
    precompute_features: bool = True  # with cache_dir: fill the cache first, then move the MLLM off the GPU
    val_shards: list[str] = field(default_factory=list)
    val_every: int = 0
    val_batches: int = 4
    sample_every: int = 0
    sample_count: int = 2
    sample_steps: int = 8
    resume: bool = False
    stop_at: int | None = (
        None  # end this invocation at this step (a job time limit); the schedule spans max_steps
    )


# ---- models ----


def transformer_dtype(cfg: TrainConfig) -> torch.dtype:
    """A frozen LoRA base is stored in bf16; full fine-tuning keeps fp32 master weights (bf16 autocast)."""
    return torch.bfloat16 if cfg.mode == "lora" and cfg.mixed_precision == "bf16" else torch.float32


def build_models(
    cfg: TrainConfig, device: torch.device
) -> tuple[Step1XEditTransformer, AutoencoderKL, Step1XMLLMEncoder]:
    """The models `cfg.init` names. Random ones are built on `device`; loaded ones on the CPU."""
    if cfg.init == "tiny":
        from model.tiny import byte_tokenizer, tiny_qwen, tiny_transformer, tiny_vae

        return (
            tiny_transformer(cfg.version, cfg.seed),
            tiny_vae(cfg.seed),
            Step1XMLLMEncoder(tiny_qwen(cfg.seed), byte_tokenizer()),
        )
    if cfg.init == "random":
        from model.random_init import random_encoder, random_transformer, random_vae

        return (
            random_transformer(cfg.version, device, transformer_dtype(cfg), cfg.seed),
            random_vae(device, cfg.seed),
            random_encoder(device, cfg.seed),
        )
    from model.loading import (
        OFFICIAL_CHECKPOINTS,
        QWEN_DIR,
        VAE_FILE,
        load_flux_vae,
        load_official_transformer,
        load_qwen_encoder,
        load_transformer_folder,
        require,
        resolve_models_dir,
    )

    root = resolve_models_dir(cfg.models_dir)
    dtype = transformer_dtype(cfg)
    if cfg.init == "official":
        path = require(root / OFFICIAL_CHECKPOINTS[cfg.version], f"Step1X-Edit {cfg.version}")
        transformer = load_official_transformer(path, cfg.version, dtype)
    else:
        transformer = load_transformer_folder(require(Path(cfg.init), "--init"), dtype)
    vae = load_flux_vae(require(root / VAE_FILE, "the Step1X-Edit VAE"))
    encoder = load_qwen_encoder(require(root / QWEN_DIR, "the Step1X-Edit MLLM encoder"))
    return transformer, vae, encoder


def check_config(cfg: TrainConfig) -> None:
    """Refuse option combinations that cannot work, before any model is loaded."""
    if cfg.mode not in ("lora", "full"):
        raise ValueError(f"mode must be lora or full, not {cfg.mode!r}")
    if cfg.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, not {cfg.optimizer!r}")
    if cfg.lora_dtype not in LORA_DTYPES:
        raise ValueError(f"lora_dtype must be one of {list(LORA_DTYPES)}, not {cfg.lora_dtype!r}")
    if cfg.offload_checkpoints and not cfg.gradient_checkpointing:
        raise ValueError("offload_checkpoints moves gradient checkpoints: it needs gradient_checkpointing")
    if cfg.mode != "lora" and cfg.fp8_base:
        raise ValueError("fp8_base stores frozen base weights in float8: it needs mode lora, not full")
    if cfg.mode != "lora" and cfg.lora_dtype != "fp32":
        raise ValueError("lora_dtype is the LoRA weights' dtype: it needs mode lora (full trains fp32)")
    if cfg.fsdp:
        if cfg.mode != "full":
            raise ValueError("fsdp shards full fine-tuning; a LoRA run fits one GPU per process (DDP)")
        if cfg.version == "v1.0":
            raise ValueError("fsdp cannot shard v1.0's scalar connector.scale_factor (FSDP2): use v1.1")
        if cfg.mixed_precision == "fp16":
            raise ValueError("fsdp runs in bf16 or fp32 (mixed_precision bf16 or no), not fp16")
        if cfg.optimizer != "adamw":
            raise ValueError("fsdp runs with optimizer adamw (torch's fused AdamW on the shards)")
        if cfg.offload_checkpoints or cfg.compile_blocks:
            raise ValueError("fsdp does not combine with offload_checkpoints or compile_blocks (untested)")


def add_lora(transformer: Step1XEditTransformer, cfg: TrainConfig) -> None:
    """Rank `lora_rank` adapters on every Linear of the blocks, in `lora_dtype`, the rest frozen; with
    `fp8_base` the frozen Linears of the blocks (the adapters' base layers) become float8."""
    from peft import LoraConfig

    transformer.requires_grad_(False)
    config = LoraConfig(
        r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, init_lora_weights="gaussian", target_modules=LORA_TARGETS
    )
    transformer.dit.add_adapter(config)
    for p in transformer.parameters():
        if p.requires_grad:
            # fp32 LoRA weights stay fp32 under bf16 autocast; bf16 ones rely on stochastic rounding
            p.data = p.data.to(LORA_DTYPES[cfg.lora_dtype])
    if cfg.fp8_base:
        fp8_base_linears(transformer.dit)


# ---- features (optionally cached by sample id) ----


class Features:
    """MLLM states and VAE posteriors, cached on disk by sample id when a cache folder is given.

    With a cache, `Trainer` fills it before training and then keeps the MLLM on the CPU: the 7B encoder runs
    once per sample and instruction variant, and a later cache miss borrows the GPU only for that call.
    """

    def __init__(
        self, vae: AutoencoderKL, encoder: Step1XMLLMEncoder, cache_dir: str | None, device: torch.device
    ) -> None:
        self.vae, self.encoder, self.device = vae, encoder, device
        self.cache = Path(cache_dir) if cache_dir else None
        if self.cache:
            self.cache.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def mllm_key(sid: str, image: Image.Image, text: str, lang: str) -> str:
        return f"{sid}.{lang if text else 'empty'}.{image.width}x{image.height}.mllm.safetensors"

    @torch.no_grad()
    def mllm_one(self, sid: str, image: Image.Image, text: str, lang: str) -> dict[str, torch.Tensor]:
        key = self.mllm_key(sid, image, text, lang)
        cached = self._load(key)
        if cached is None:
            model = self.encoder.model
            home = next(model.parameters()).device
            model.to(self.device)
            s, m = self.encoder([image], [text])
            model.to(home)
            cached = {"states": s[0].cpu(), "mask": m[0].cpu()}
            self._save(key, cached)
        return cached

    def mllm(self, batch: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        states, masks = [], []
        for sid, image, text, lang in zip(
            batch.ids, batch.source_images, batch.instructions, batch.languages, strict=True
        ):
            cached = self.mllm_one(sid, image, text, lang)
            states.append(cached["states"])
            masks.append(cached["mask"])
        return torch.stack(states).to(device), torch.stack(masks).to(device)

    @torch.no_grad()
    def posteriors(self, batch: Batch, device: torch.device) -> dict[str, torch.Tensor]:
        """VAE posterior mean and std of source and target [B, C, h, w]."""
        out: dict[str, list[torch.Tensor]] = {"src_mean": [], "src_std": [], "tgt_mean": [], "tgt_std": []}
        for i, sid in enumerate(batch.ids):
            h, w = batch.source.shape[-2:]
            key = f"{sid}.{w}x{h}.latents.safetensors"
            cached = self._load(key)
            if cached is None:
                cached = {}
                for role, pixels in (("src", batch.source[i : i + 1]), ("tgt", batch.target[i : i + 1])):
                    dist = self.vae.encode(pixels.to(device, self.vae.dtype)).latent_dist
                    cached[f"{role}_mean"], cached[f"{role}_std"] = dist.mean[0].cpu(), dist.std[0].cpu()
                self._save(key, cached)
            for k in out:
                out[k].append(cached[k])
        return {k: torch.stack(v).to(device) for k, v in out.items()}

    def _load(self, key: str) -> dict[str, torch.Tensor] | None:
        if self.cache is None or not (self.cache / key).exists():
            return None
        return load_file(str(self.cache / key))

    def _save(self, key: str, tensors: dict[str, torch.Tensor]) -> None:
        if self.cache is not None:
            tmp = self.cache / f".{key}.tmp"
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
            tmp.replace(self.cache / key)  # atomic: a crash never leaves a half-written cache entry


# ---- objective ----


def sample_sigmas(cfg: TrainConfig, n: int, generator: torch.Generator) -> torch.Tensor:
    """Logit-normal sigma, then the shift s*sigma / (1 + (s-1) sigma) of the reference recipe."""
    sigma = torch.sigmoid(torch.randn(n, generator=generator) * cfg.logit_std + cfg.logit_mean)
    s = cfg.timestep_shift
    return s * sigma / (1 + (s - 1) * sigma)


def flow_loss(
    cfg: TrainConfig,
    transformer: torch.nn.Module,
    features: Features,
    batch: Batch,
    generator: torch.Generator,
    device: torch.device,
    latent_scale: tuple[float, float],
) -> torch.Tensor:
    shift, scale = latent_scale
    post = features.posteriors(batch, device)
    states, mask = features.mllm(batch, device)
    b, c, h, w = post["tgt_mean"].shape
    eps_src, eps_tgt, noise = (torch.randn(b, c, h, w, generator=generator) for _ in range(3))
    x0 = (post["tgt_mean"] + post["tgt_std"] * eps_tgt.to(device) - shift) * scale  # sampled posterior
    ref = (post["src_mean"] + post["src_std"] * eps_src.to(device) - shift) * scale
    sigma = sample_sigmas(cfg, b, generator).to(device)
    x0_t, ref_t, noise_t = pack(x0), pack(ref), pack(noise.to(device))  # [B, N, 4C]
    s = sigma[:, None, None]
    noisy = (1 - s) * x0_t + s * noise_t
    pred = transformer(
        latents=noisy,
        reference=ref_t,
        mllm_states=states,
        mllm_mask=mask,
        timestep=sigma,
        grid=(h // 2, w // 2),
    )
    err = (pred.float() - (noise_t - x0_t).float()) ** 2  # [B, N, 4C]
    if cfg.mask_loss_weight == 1.0:
        return err.mean()
    return mask_weighted_mean(err, batch.mask.to(device), w // 2, cfg.mask_loss_weight)


def mask_weighted_mean(err: torch.Tensor, mask: torch.Tensor, grid_w: int, weight: float) -> torch.Tensor:
    """Mean of the token errors `err` [B, N, D], each token weighted 1 .. `weight` by the fraction of it that
    the pixel mask [B, 1, H, W] covers; normalised per sample so the weights move emphasis, not scale."""
    f = mask.shape[-1] // grid_w
    cover = torch.nn.functional.avg_pool2d(mask, f).flatten(1)[..., None]  # [B, N, 1]
    token_weight = 1 + (weight - 1) * cover
    return ((err * token_weight).mean(dim=(1, 2)) / token_weight.mean(dim=(1, 2))).mean()


# ---- checkpoints ----


class Trainer:
    """The training run `cfg` describes. `models` (transformer, VAE, encoder) replaces `build_models`:
    models already in memory, e.g. a benchmark's random ones of other dimensions."""

    def __init__(
        self,
        cfg: TrainConfig,
        models: tuple[Step1XEditTransformer, AutoencoderKL, Step1XMLLMEncoder] | None = None,
    ) -> None:
        check_config(cfg)
        if cfg.fsdp and int(os.environ.get("WORLD_SIZE", "1")) < 2:
            raise ValueError("fsdp shards over processes: launch 2 or more (step1x-train --gpus N)")
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.accelerator = Accelerator(
            # without cpu=True accelerate ignores torchrun's ranks on a machine with no GPU
            cpu=not torch.cuda.is_available(),
            mixed_precision=cfg.mixed_precision,
            gradient_accumulation_steps=cfg.grad_accum,
            log_with="tensorboard",
            project_dir=str(self.out),
        )
        acc = self.accelerator
        if acc.distributed_type == DistributedType.FSDP:
            raise ValueError(
                "accelerate's own FSDP is not used: launch with a multi-GPU accelerate config "
                "(cluster/accelerate/ddp_gpus.yaml) or step1x-train --gpus N, with fsdp: true in the "
                "training config"
            )
        self.fsdp = cfg.fsdp
        if acc.device.type == "cuda" and not cfg.sdpa_cudnn:
            torch.backends.cuda.enable_cudnn_sdp(False)
        torch.manual_seed(cfg.seed)
        transformer, self.vae, encoder = models if models is not None else build_models(cfg, acc.device)
        self.vae.requires_grad_(False).eval().to(acc.device)
        encoder.model.to(acc.device)
        self.features = Features(self.vae, encoder, cfg.cache_dir, acc.device)
        if cfg.mode == "lora":
            add_lora(transformer, cfg)
        else:
            transformer.requires_grad_(True)
        if cfg.gradient_checkpointing:
            transformer.enable_gradient_checkpointing(
                cpu_offloaded_checkpoint if cfg.offload_checkpoints else None
            )
        if cfg.compile_blocks:
            transformer.compile_repeated_blocks(fullgraph=True)
        transformer.train()
        if self.fsdp:
            # the parameters become DTensor shards: the optimizer is made on them, after sharding
            shard_transformer(transformer, acc.device, cfg.mixed_precision)
        params = [p for p in transformer.parameters() if p.requires_grad]
        self.trainable_names = [n for n, p in transformer.named_parameters() if p.requires_grad]
        # fused AdamW on the shards: the multi-tensor one makes a temporary copy of the second moments
        self.raw_optimizer = make_optimizer(cfg, params, fused=self.fsdp)
        # stepped by hand once per optimizer step, so the schedule does not depend on the number of processes
        self.scheduler = get_scheduler(
            cfg.lr_scheduler,
            self.raw_optimizer,
            num_warmup_steps=cfg.warmup_steps,
            num_training_steps=cfg.max_steps,
        )
        if self.fsdp:  # sharded already: accelerate must not wrap it in DDP
            self.transformer, self.optimizer = transformer, acc.prepare(self.raw_optimizer)
        else:
            self.transformer, self.optimizer = acc.prepare(transformer, self.raw_optimizer)
        from model.data import DataFilter, ShardBatches  # webdataset, pyarrow: only to read shards

        flt = DataFilter(
            view_ids=Path(cfg.view) if cfg.view else None,
            min_o=cfg.min_o,
            tasks=cfg.tasks,
            lang_en=cfg.lang_en,
        )
        self.data = ShardBatches(
            cfg.shards,
            flt,
            cfg.batch_size,
            cfg.resolution,
            cfg.bucket_step,
            cfg.shuffle_buffer,
            cfg.instruction_dropout,
            cfg.seed,
            acc.process_index,
            acc.num_processes,
        )
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.samples_seen = 0  # by all processes, in this invocation
        if cfg.cache_dir and cfg.precompute_features:
            self.precompute()
            encoder.model.to("cpu")
            if acc.device.type == "cuda":
                torch.cuda.empty_cache()
        self.latent_scale = (self.vae.config.shift_factor, self.vae.config.scaling_factor)
        self.trainable_params = sum(p.numel() for p in params)

    def precompute(self) -> None:
        """Cache MLLM states for every sample and every instruction it can be shown, and VAE posteriors.

        Ranks split the samples (batch size 1 covers all of them) and share the cache folder.
        """
        cfg, acc = self.cfg, self.accelerator
        langs = [lang for lang, p in (("en", cfg.lang_en), ("zh", 1 - cfg.lang_en)) if p > 0]
        from model.data import DataFilter, ShardBatches

        flt = DataFilter(view_ids=Path(cfg.view) if cfg.view else None, min_o=cfg.min_o, tasks=cfg.tasks)
        every = ShardBatches(
            cfg.shards,
            flt,
            1,
            cfg.resolution,
            cfg.bucket_step,
            shuffle_buffer=1,
            seed=cfg.seed,
            rank=acc.process_index,
            world_size=acc.num_processes,
        )
        for batch in every.epoch_batches(0):
            sid, image, options = batch.ids[0], batch.source_images[0], batch.instruction_options[0]
            for lang in langs:
                self.features.mllm_one(sid, image, options.get(lang) or options["en"], lang)
            if cfg.instruction_dropout > 0:
                self.features.mllm_one(sid, image, "", "en")
            self.features.posteriors(batch, acc.device)
        acc.wait_for_everyone()

    # -- state --

    def unwrapped(self) -> Step1XEditTransformer:
        return self.accelerator.unwrap_model(self.transformer)

    def save(self) -> Path:
        acc = self.accelerator
        ckpt = self.out / f"checkpoint-{self.step}"
        acc.wait_for_everyone()
        state = {
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "scheduler": self.scheduler.state_dict(),
            "config": asdict(self.cfg),
        }
        if self.fsdp:
            state["sharded"] = save_shards(self.transformer, self.raw_optimizer, ckpt / "sharded")
            if self.cfg.save_full_weights:
                self._save_gathered_weights(ckpt / "transformer")
        elif acc.is_main_process:
            ckpt.mkdir(parents=True, exist_ok=True)
            model = self.unwrapped()
            if self.cfg.mode == "lora":
                model.dit.save_lora_adapter(str(ckpt / "lora"))
                named = dict(model.named_parameters())
                save_file(
                    {n: named[n].detach().cpu().contiguous() for n in self.trainable_names},
                    str(ckpt / "trainable.safetensors"),
                )
            else:
                model.save_pretrained(ckpt / "transformer")
            state["optimizer"] = save_optimizer(self.optimizer, ckpt / "optimizer.safetensors")
        acc.wait_for_everyone()  # every process's files are written before the commit record
        if acc.is_main_process:
            tmp = ckpt / ".state.json.partial"
            tmp.write_text(json.dumps(state, indent=1, default=float))
            tmp.replace(ckpt / "state.json")
        acc.wait_for_everyone()
        return ckpt

    def load(self, ckpt: Path) -> None:
        state = json.loads((ckpt / "state.json").read_text())
        if self.fsdp:
            if "sharded" not in state:
                raise ValueError(f"{ckpt} was not saved by a run with fsdp: it has no sharded/ state")
            load_shards(self.transformer, self.raw_optimizer, ckpt / "sharded", state["sharded"])
        else:
            model = self.unwrapped()
            if self.cfg.mode == "lora":
                weights = load_file(str(ckpt / "trainable.safetensors"))
            else:  # save_pretrained shards files above 10 GB
                weights = {}
                for part in sorted((ckpt / "transformer").glob("*.safetensors")):
                    weights.update(load_file(str(part)))
            named = dict(model.named_parameters())
            with torch.no_grad():
                for n, v in weights.items():
                    named[n].copy_(v)
            load_optimizer(self.optimizer, ckpt / "optimizer.safetensors", state["optimizer"])
        self.scheduler.load_state_dict(retensor(state["scheduler"], self.scheduler.state_dict()))
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]

    def _save_gathered_weights(self, folder: Path) -> None:
        """The full weights, gathered from the shards, in the layout `save_pretrained` writes (config.json
        and safetensors of at most 10 GB with their index), which the sampler's --ckpt loads."""
        from huggingface_hub import save_torch_state_dict

        full = gather_full_state(self.transformer)
        if not self.accelerator.is_main_process:
            return
        folder.mkdir(parents=True, exist_ok=True)
        # the sharded module's class is torch's FSDP subclass: the config names the model's own class
        config = {"_class_name": Step1XEditTransformer.__name__, **self.transformer.config}
        (folder / "config.json").write_text(json.dumps(config, indent=2))
        save_torch_state_dict(
            full,
            folder,
            filename_pattern="diffusion_pytorch_model{suffix}.safetensors",
            max_shard_size="10GB",
        )

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint (state.json is written last)."""
        ckpts = [p for p in self.out.glob("checkpoint-*") if (p / "state.json").exists()]
        return max(ckpts, key=lambda p: int(p.name.split("-")[1]), default=None)

    # -- loop --

    def batches(self) -> Iterator[Batch]:
        """Endless batches; (epoch, batch_in_epoch) is the data position saved in checkpoints."""
        while True:
            for batch in self.data.epoch_batches(self.epoch, skip=self.batch_in_epoch):
                self.batch_in_epoch += 1
                yield batch
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0

    def train_step(self, stream: Iterator[Batch]) -> float:
        """One optimizer step over `grad_accum` batches of `stream`; returns this process's mean loss."""
        cfg, acc = self.cfg, self.accelerator
        step_loss = 0.0
        for micro in range(cfg.grad_accum):
            batch = next(stream)
            seed = (cfg.seed * 1_000_003 + self.step * cfg.grad_accum + micro) * 65_537 + acc.process_index
            generator = torch.Generator().manual_seed(seed)
            with acc.accumulate(self.transformer):
                with acc.autocast():  # the forward only; backward runs outside autocast
                    loss = flow_loss(
                        cfg,
                        self.transformer,
                        self.features,
                        batch,
                        generator,
                        acc.device,
                        self.latent_scale,
                    )
                acc.backward(loss)
                if acc.sync_gradients and cfg.max_grad_norm > 0:
                    acc.clip_grad_norm_(self.transformer.parameters(), cfg.max_grad_norm)
                if acc.sync_gradients and cfg.lora_dtype == "bf16":
                    # stochastic rounding draws from the global generator: seeded by (seed, step)
                    # alone, DDP replicas round alike and a resumed run repeats the draws
                    torch.manual_seed(cfg.seed * 1_000_003 + self.step)
                self.optimizer.step()
                self.optimizer.zero_grad()
            step_loss += loss.detach().float().item() / cfg.grad_accum
            self.samples_seen += len(batch.ids) * acc.num_processes
        self.scheduler.step()
        self.step += 1
        return step_loss

    def train(self) -> list[float]:
        cfg, acc = self.cfg, self.accelerator
        self.out.mkdir(parents=True, exist_ok=True)
        if cfg.resume and (ckpt := self.latest_checkpoint()) is not None:
            self.load(ckpt)
        if acc.is_main_process:
            (self.out / "config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
        acc.init_trackers("step1x-train", config={k: str(v) for k, v in asdict(cfg).items()})
        losses: list[float] = []
        stream = self.batches()
        t_last, seen_last = time.perf_counter(), self.samples_seen
        last = min(cfg.max_steps, cfg.stop_at or cfg.max_steps)
        while self.step < last:
            step_loss = self.train_step(stream)
            losses.append(step_loss)
            if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                now = time.perf_counter()
                acc.log(
                    {
                        "train/loss": step_loss,
                        "train/lr": self.scheduler.get_last_lr()[0],
                        "train/samples_per_s": (self.samples_seen - seen_last) / (now - t_last),
                    },
                    step=self.step,
                )
                t_last, seen_last = now, self.samples_seen
            if cfg.val_every and self.step % cfg.val_every == 0 and cfg.val_shards:
                acc.log({"val/loss": self.validation_loss()}, step=self.step)
            if cfg.sample_every and self.step % cfg.sample_every == 0 and cfg.val_shards:
                self.log_samples()
            if self.step % cfg.save_every == 0 or self.step == last:
                self.save()
        # not end_training(): it also destroys the process group, which the caller may still use (to
        # gather the weights, or for a second Trainer in the same processes); train() below ends it
        for tracker in acc.trackers:
            tracker.finish()
        return losses

    # -- validation --

    def _val_data(self) -> ShardBatches:
        from model.data import DataFilter, ShardBatches

        return ShardBatches(
            self.cfg.val_shards,
            DataFilter(),
            1,
            self.cfg.resolution,
            self.cfg.bucket_step,
            shuffle_buffer=1,
            seed=0,
        )

    @torch.no_grad()
    def validation_loss(self) -> float:
        """Loss on the held-out shards with fixed noise and sigmas, comparable across steps."""
        self.transformer.eval()
        losses = []
        for i, batch in enumerate(self._val_data().epoch_batches(0)):
            if i >= self.cfg.val_batches:
                break
            with self.accelerator.autocast():
                loss = flow_loss(
                    self.cfg,
                    self.transformer,
                    self.features,
                    batch,
                    torch.Generator().manual_seed(i),
                    self.accelerator.device,
                    self.latent_scale,
                )
            losses.append(loss.float().item())
        self.transformer.train()
        if self.fsdp:
            resharded(self.transformer)
        return float(np.mean(losses))

    @torch.no_grad()
    def log_samples(self) -> None:
        """A grid source | target | prediction for the first held-out samples, to TensorBoard."""
        from model.sampler import Step1XEditPipeline

        acc = self.accelerator
        if not (acc.is_main_process or self.fsdp):  # a sharded model's forward needs every process
            return
        model = self.unwrapped()
        sampler = Step1XEditPipeline.from_parts(
            model, self.vae, self.features.encoder, device=acc.device, version=self.cfg.version
        )
        sampler.set_progress_bar_config(disable=True)
        rows = []
        for i, batch in enumerate(self._val_data().epoch_batches(0)):
            if i >= self.cfg.sample_count:
                break
            src = batch.source_images[0]
            pred = sampler.edit(
                [src],
                batch.instructions,
                size_level=self.cfg.resolution,
                num_steps=self.cfg.sample_steps,
                seed=i,
            ).images[0]
            tgt = pixels_to_uint8(batch.target[0])
            rows.append(np.concatenate([np.asarray(src), tgt, np.asarray(pred)], axis=1))
        width = max(r.shape[1] for r in rows)
        grid = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows], axis=0)
        if acc.is_main_process:
            writer = acc.get_tracker("tensorboard", unwrap=True)
            writer.add_image("samples/source|target|prediction", grid, self.step, dataformats="HWC")
        model.train()
        if self.fsdp:
            resharded(model)


def train(cfg: TrainConfig) -> list[float]:
    """Run training; returns the per-step training losses of this process."""
    if not cfg.shards:
        raise ValueError("no training shards given")
    if not math.isfinite(cfg.lr) or cfg.lr <= 0:
        raise ValueError("lr must be positive")
    trainer = Trainer(cfg)
    losses = trainer.train()
    trainer.accelerator.end_training()
    return losses
