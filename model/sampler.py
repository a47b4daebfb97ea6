"""Step1X-Edit sampling: resize, encode, rectified-flow Euler with CFG, decode, resize back.

Defaults follow the reference inference script: size_level 512, 28 steps, CFG 6.0 against the empty
instruction with the same image, the FLUX resolution shift (mu from the target token count), and for v1.1
the norm-damped CFG while t > 0.93.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
from diffusers.pipelines.flux.pipeline_flux import calculate_shift
from PIL import Image

from model.fp8_attention import use_fp8_attention
from model.fp8_base import Fp8Linear, Fp8MatmulLinear, fp8_base_linears, fp8_linears
from model.latents import (
    decode_latents,
    encode_images,
    image_to_pixels,
    pack,
    pixels_to_uint8,
    unpack,
    vae_downsample,
)
from model.mllm import Step1XMLLMEncoder
from model.transformer import Step1XEditTransformer

CFG_TRUNCATE = {"v1.0": 1.0, "v1.1": 0.93}  # v1.0 passes 1.0, so its damping is never active
CFG_NORM_POWER = 0.4


def resize_for_size_level(width: int, height: int, size_level: int, multiple: int = 16) -> tuple[int, int]:
    """Area about size_level^2, aspect kept, both sides floored to a multiple of 16 (the reference rule)."""
    r = width / height
    if width > height:
        w = math.ceil(math.sqrt(size_level**2 * r))
        h = math.ceil(w / r)
    else:
        h = math.ceil(math.sqrt(size_level**2 / r))
        w = math.ceil(h * r)
    return max(multiple, w // multiple * multiple), max(multiple, h // multiple * multiple)


def make_scheduler() -> FlowMatchEulerDiscreteScheduler:
    # With these bounds calculate_shift reproduces Step1X's mu = 0.5 + 0.65 (L - 256) / 3840.
    return FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )


def damped_cfg(cond: torch.Tensor, uncond: torch.Tensor, scale: float, damp: bool) -> torch.Tensor:
    """uncond + scale * diff, where diff is divided by max(1, |diff|)^0.4 per token when damped."""
    diff = cond - uncond  # [B, N, 64]
    if damp:
        norm = diff.float().norm(dim=-1, keepdim=True).clamp(min=1.0)  # per-token norm over channels
        diff = diff / norm.pow(CFG_NORM_POWER).to(diff.dtype)
    return uncond + scale * diff


@dataclass(frozen=True)
class StepSkipping:
    """A fixed schedule of denoising steps that run the DiT; the others extrapolate its output.

    TaylorSeer's first-order rule (arXiv 2503.06923, diffusers' TaylorSeerCacheConfig schedule) applied to the
    whole model's guided velocity: steps i < warmup and every `interval`-th step after run the DiT, a skipped
    step takes v_last + (v_last - v_prev) * (i - i_last) / (i_last - i_prev). Done in the sampler rather than
    through diffusers' per-block hooks so that a skipped step launches no kernel and compiled blocks see no
    hook (hooks recompiled the blocks, bench/RESULTS.md run A). Unlike FirstBlockCache its savings do not
    depend on the weights, so random weights measure its speed; only trained weights can show its quality.
    """

    warmup: int = 3
    interval: int = 5

    def __post_init__(self) -> None:
        if self.warmup < 2 or self.interval < 1:
            raise ValueError("step skipping needs warmup >= 2 (two computed steps to extrapolate from)")

    def computes(self, step: int) -> bool:
        return step < self.warmup or (step - self.warmup - 1) % self.interval == 0


@dataclass
class EditResult:
    images: list[Image.Image]
    latents: list[torch.Tensor]  # final normalised latents [C, h, w] per image, for comparisons


class Step1XEditSampler:
    """Python API: `Step1XEditSampler(transformer, vae, encoder).edit(images, instructions)`.

    offload=True keeps every component on the CPU and moves each to `device` only while it runs
    (the reference's --offload), trading time for peak memory.
    """

    def __init__(
        self,
        transformer: Step1XEditTransformer,
        vae: AutoencoderKL,
        encoder: Step1XMLLMEncoder,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        version: str = "v1.1",
        offload: bool = False,
    ) -> None:
        self.transformer = transformer.eval()
        self.vae = vae.eval()
        self.encoder = encoder
        self.device = torch.device(device)
        self.dtype = dtype
        self.cfg_truncate = CFG_TRUNCATE[version]
        self.lora_scale = 1.0
        self.step_cache = False
        self.step_skipping: StepSkipping | None = None
        self.set_offload(offload)

    def set_offload(self, offload: bool) -> None:
        """Keep the three models on the CPU between uses (offload) or resident on `device`."""
        self.offload = offload
        home = torch.device("cpu") if offload else self.device
        for module in (self.transformer, self.vae, self.encoder.model):
            module.to(home)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    @contextlib.contextmanager
    def _on_device(self, module: torch.nn.Module) -> Iterator[None]:
        if self.offload:
            module.to(self.device)
        try:
            yield
        finally:
            if self.offload:
                module.to("cpu")
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()

    def load_lora(self, path: str, adapter_name: str = "edit", scale: float = 1.0) -> None:
        """Load a LoRA adapter saved by `step1x-train` (diffusers/peft safetensors) into the DiT."""
        self.transformer.dit.load_lora_adapter(
            path, prefix=None, adapter_name=adapter_name, use_safetensors=True
        )
        self.lora_scale = scale

    def quantize_fp8(self, encoder: bool = False, dit: str | None = "matmul") -> None:
        """fp8 linear layers (lossy; needs a Hopper-class GPU). dit=None leaves the DiT in bf16.

        dit="matmul": the blocks' Linears become `Fp8MatmulLinear`s: fp8 per-row weights, inputs scaled per
        row into fp8, `torch._scaled_mm`. Plain torch ops, so torch.compile fuses the input quantisation;
        eager it is slower than bf16 (the quantisation runs unfused).
        dit="dynamic": torchao's fp8 dynamic activation + per-row weight quantisation, the same arithmetic
        as "matmul" through a tensor subclass. dit="weight_only": torchao fp8 weights dequantised per layer
        into bf16 matmuls: half the memory at bf16 speed (the reference's --quantized).
        encoder=True stores the MLLM's Linears as fp8 weights dequantised per call (`Fp8Linear`): it runs
        once per edit, so its speed matters little.
        Compiling the DiT in a process where torchao has quantised a model did not finish within 170-400 s
        in most tries (bench/RESULTS.md), hence the torch-only "matmul" and encoder paths.
        """
        modes = (None, "matmul", "dynamic", "weight_only")
        if dit not in modes:
            raise ValueError(f"fp8 mode {dit!r}: expected one of {list(modes)}")
        if encoder:
            fp8_linears(self.encoder.model.requires_grad_(False), Fp8Linear)
        if dit == "matmul":
            fp8_base_linears(self.transformer.dit.requires_grad_(False), Fp8MatmulLinear)
        if dit not in ("dynamic", "weight_only"):
            return
        try:
            from torchao.quantization import (
                Float8DynamicActivationFloat8WeightConfig,
                Float8WeightOnlyConfig,
                PerRow,
                quantize_,
            )
        except ImportError as e:
            raise ImportError(f"fp8 mode {dit!r} needs torchao: pip install torchao") from e
        if dit == "dynamic":
            config = Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())
        else:
            config = Float8WeightOnlyConfig()
        quantize_(self.transformer.dit, config)

    def use_fp8_attention(self) -> None:
        """cuDNN's fp8 attention in every DiT block (model/fp8_attention.py; lossy, Hopper and newer)."""
        use_fp8_attention(self.transformer.dit)

    def enable_step_cache(self, threshold: float = 0.08) -> None:
        """diffusers FirstBlockCache on the DiT: skip the other blocks while block 0's residual barely moves.

        Cond and uncond run as one batch, so one cache context covers both branches.
        """
        from diffusers import FirstBlockCacheConfig

        self.transformer.dit.enable_cache(FirstBlockCacheConfig(threshold=threshold))
        self.step_cache = True

    def disable_step_cache(self) -> None:
        self.transformer.dit.disable_cache()
        self.step_cache = False

    def low_memory_vae(self, dtype: torch.dtype | None = torch.bfloat16, tile: int | None = 512) -> None:
        """Lower the VAE's share of the peak (at 1024^2 the fp32 decode is the largest part of an edit).

        dtype: the VAE's compute dtype instead of the reference's fp32. tile: encode and decode in tiles of
        tile x tile pixels, blended over diffusers' 25 % overlap. bf16 decodes at 45 dB PSNR against fp32
        (bench/RESULTS.md); what tiles cost can only be judged with trained weights.
        """
        if dtype is not None:
            self.vae.to(dtype)
        if tile is not None:
            self.vae.enable_tiling()
            # diffusers sizes tiles from config.sample_size (1024 for FLUX): a 1024^2 image would be one tile
            self.vae.tile_sample_min_size = tile
            self.vae.tile_latent_min_size = tile // vae_downsample(self.vae)

    def set_attention_backend(self, backend: str) -> None:
        """A diffusers attention backend for the DiT: "native" (torch SDPA picks), "_native_cudnn",
        "_native_flash", "flash" (flash-attn package), ... The connector's two blocks keep SDPA."""
        self.transformer.dit.set_attention_backend(backend)

    def compile_blocks(self, fullgraph: bool = True) -> None:
        """torch.compile each repeated DiT block class once; the first edit of each size pays compilation."""
        self.transformer.compile_repeated_blocks(fullgraph=fullgraph)

    @torch.no_grad()
    def edit(
        self,
        images: list[Image.Image],
        instructions: list[str],
        size_level: int = 512,
        num_steps: int = 28,
        guidance: float = 6.0,
        seed: int = 42,
    ) -> EditResult:
        """Edit each image by its instruction. Images that resize to the same size run as one batch."""
        if len(images) != len(instructions):
            raise ValueError("one instruction per image")
        sizes = [resize_for_size_level(im.width, im.height, size_level) for im in images]
        out_images: list[Image.Image | None] = [None] * len(images)
        out_latents: list[torch.Tensor | None] = [None] * len(images)
        for size in dict.fromkeys(sizes):
            idx = [i for i, s in enumerate(sizes) if s == size]
            resized = [images[i].convert("RGB").resize(size, Image.LANCZOS) for i in idx]
            latents = self._edit_batch(resized, [instructions[i] for i in idx], num_steps, guidance, seed)
            decoded = self._decode(latents)
            for j, i in enumerate(idx):
                out_images[i] = decoded[j].resize(images[i].size, Image.LANCZOS)
                out_latents[i] = latents[j].float().cpu()
        return EditResult(out_images, out_latents)  # type: ignore[arg-type]

    def _edit_batch(
        self, images: list[Image.Image], instructions: list[str], num_steps: int, guidance: float, seed: int
    ) -> torch.Tensor:
        b = len(images)
        width, height = images[0].size
        # cond and uncond ("" with the same image) are encoded together and run as one batch of 2B
        with self._on_device(self.encoder.model):
            states, mask = self.encoder(images + images, instructions + [""] * b)
        states, mask = states.to(self.device, self.dtype), mask.to(self.device)

        # One CPU generator per item, all seeded alike: the same seed gives the same noise on any device and
        # in any batch composition, as when the reference edits one image at a time.
        f = vae_downsample(self.vae)
        lat_h, lat_w = height // f, width // f
        grid = (lat_h // 2, lat_w // 2)
        shape = (self.vae.config.latent_channels, lat_h, lat_w)
        generators = [torch.Generator().manual_seed(seed) for _ in range(b)]
        noise = torch.stack([torch.randn(shape, generator=g) for g in generators])  # [B, C, h, w]
        posterior_eps = torch.stack([torch.randn(shape, generator=g) for g in generators])
        pixels = torch.stack([image_to_pixels(im) for im in images]).to(self.device)  # [B, 3, H, W]
        with self._on_device(self.vae):
            # the reference samples the posterior (not its mode) for the reference image
            ref = encode_images(self.vae, pixels, posterior_eps.to(self.device))  # [B, C, h, w]
        x = pack(noise.to(self.device, self.dtype))  # [B, N, 64]
        ref_tokens = pack(ref.to(self.dtype)).repeat(2, 1, 1)  # [2B, N, 64]

        scheduler = make_scheduler()
        sigmas = np.linspace(1.0, 1.0 / num_steps, num_steps)
        mu = calculate_shift(x.shape[1], 256, 4096, 0.5, 1.15)
        scheduler.set_timesteps(sigmas=sigmas, mu=mu, device=self.device)
        scheduler.set_begin_index(0)
        kwargs = {"scale": self.lora_scale}
        caching = contextlib.nullcontext()
        if self.step_cache:
            self.transformer.dit._reset_stateful_cache()  # residuals of the previous edit must not leak in
            caching = self.transformer.dit.cache_context("edit")
        computed: list[tuple[int, torch.Tensor]] = []  # the last two (step, guided velocity) that ran the DiT
        with self._on_device(self.transformer), caching:
            for i, t in enumerate(scheduler.timesteps):
                sigma = scheduler.sigmas[i]  # t in [0, 1]
                if self.step_skipping is None or self.step_skipping.computes(i):
                    v = self.transformer(
                        latents=x.repeat(2, 1, 1),
                        reference=ref_tokens,
                        mllm_states=states,
                        mllm_mask=mask,
                        timestep=sigma.expand(2 * b).to(self.device),
                        grid=grid,
                        joint_attention_kwargs=kwargs,
                    )
                    v_cond, v_uncond = v.chunk(2)
                    v = damped_cfg(v_cond, v_uncond, guidance, damp=bool(sigma > self.cfg_truncate))
                    computed = [*computed[-1:], (i, v)]
                else:
                    (i0, v0), (i1, v1) = computed
                    v = v1 + (v1 - v0) * ((i - i1) / (i1 - i0))
                x = scheduler.step(v, t, x, return_dict=False)[0]
        return unpack(x, *grid)  # [B, C, h, w]

    def _decode(self, latents: torch.Tensor) -> list[Image.Image]:
        with self._on_device(self.vae):
            pixels = decode_latents(self.vae, latents.to(self.device))
        return [Image.fromarray(a) for a in pixels_to_uint8(pixels)]
