"""Step1X-Edit sampling as a diffusers pipeline: resize, encode, rectified-flow Euler with CFG, decode.

Defaults follow the reference inference scripts: size_level 512, 28 steps, CFG 6.0 against the empty
instruction with the same image, the FLUX resolution shift (mu from the target token count), and for v1.1
the norm-damped CFG while t > 0.93. `Recipe` lists what differs between the v1.0 and v1.1 scripts.

Known differences from the reference's numerics, kept on purpose:
- noise is drawn on the CPU in fp32 from one generator per image seeded by `seed` (the same seed gives the
  same edit on any device and in any batch); the reference draws bf16 noise from a generator on the GPU.
  `noise_like_upstream = True` (`--noise-like-upstream`) draws it the reference's way. The reference samples
  its VAE posterior with the unseeded global generator, so that part is never reproducible; here it is seeded.
- the DiT runs without autocast, in its weights' dtype: the reference's autocast keeps LayerNorm outputs and
  the adaLN modulations in fp32 before each Linear, so bf16 results differ in the last bits.
- attention is torch SDPA (or the chosen diffusers backend), not flash-attn; the QK RMSNorm is torch's.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from diffusers.pipelines.flux.pipeline_flux import calculate_shift
from diffusers.utils import BaseOutput
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

CFG_NORM_POWER = 0.4


@dataclass(frozen=True)
class Recipe:
    """What a release's reference inference script does around the model.

    input_resample: the resize to the size_level grid. cfg_truncate: CFG is norm-damped while t > this
    (1.0: never). encode_autocast: the VAE encodes the reference image under bf16 autocast.
    """

    input_resample: Image.Resampling
    cfg_truncate: float
    encode_autocast: bool


# v1.0 follows the v1.0 release script (PIL's default bicubic resize, no damping, fp32 encode). The later
# v1.1 script runs v1.0 too, with its own choices for both versions (Lanczos, 0.93, bf16 encode); the model
# was released with the first, so v1.0 keeps it. The output is resized back with PIL's default (bicubic)
# in both scripts.
RECIPES = {
    "v1.0": Recipe(Image.Resampling.BICUBIC, cfg_truncate=1.0, encode_autocast=False),
    "v1.1": Recipe(Image.Resampling.LANCZOS, cfg_truncate=0.93, encode_autocast=True),
}


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
    """uncond + scale * diff, where diff is divided by max(1, |diff|)^0.4 per token when damped.

    In the reference's dtypes: plain CFG stays in the inputs' dtype; the damped one divides by an fp32
    norm (its torch.norm runs in fp32 under autocast), so its result is fp32.
    """
    diff = cond - uncond  # [B, N, 64]
    if not damp:
        return uncond + scale * diff
    norm = diff.float().norm(dim=-1, keepdim=True).clamp(min=1.0)  # per-token norm over channels
    return uncond + scale * diff / norm.pow(CFG_NORM_POWER)


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
class EditResult(BaseOutput):
    """images: the edits at their inputs' sizes; latents: final normalised latents [C, h, w] per image."""

    images: list[Image.Image]
    latents: list[torch.Tensor]


class Step1XEditPipeline(DiffusionPipeline):
    """Step1X-Edit as a diffusers pipeline, with the component names of the diffusers-format checkpoint
    upstream publishes (stepfun-ai/Step1X-Edit-v1p1-diffusers): scheduler, vae, text_encoder, processor,
    transformer.

        pipe = Step1XEditPipeline.from_pretrained("Step1X-Edit-v1p1-diffusers", torch_dtype=torch.bfloat16)
        pipe = Step1XEditPipeline.from_single_file("Step1X-Edit/step1x-edit-v1p1-official.safetensors")
        pipe.to("cuda")
        image = pipe(image=photo, prompt="remove the cat", size_level=1024).images[0]
        pipe.save_pretrained("out/")  # the upstream diffusers layout

    diffusers' `enable_model_cpu_offload`, `transformer.set_attention_backend` and
    `transformer.compile_repeated_blocks` apply as usual; the methods below add the speed options of
    `step1x-edit` (fp8, step skipping, a low-memory VAE, the reference's own offload). `text_encoder` is the
    Qwen2.5-VL backbone (or the full model, whose output head is then never used); `processor` is its
    Qwen2.5-VL processor, of which the tokenizer and image processor are used. `version` ("v1.0"/"v1.1")
    picks the reference script's `Recipe`.
    """

    model_cpu_offload_seq = "text_encoder->transformer->vae"

    def __init__(
        self,
        scheduler: FlowMatchEulerDiscreteScheduler,
        vae: AutoencoderKL,
        text_encoder: torch.nn.Module,
        processor,
        transformer: Step1XEditTransformer,
        version: str = "v1.1",
    ) -> None:
        super().__init__()
        if version not in RECIPES:
            raise ValueError(f"unknown Step1X-Edit version {version!r}; expected one of {list(RECIPES)}")
        self.register_modules(
            scheduler=scheduler,
            vae=vae,
            text_encoder=text_encoder,
            processor=processor,
            transformer=transformer,
        )
        self.register_to_config(version=version)
        self.transformer.eval()
        self.vae.eval()
        self.encoder = Step1XMLLMEncoder(
            text_encoder, processor.tokenizer, image_processor=getattr(processor, "image_processor", None)
        )
        self.recipe = RECIPES[version]
        self.lora_scale = 1.0
        self.step_cache = False
        self.step_skipping: StepSkipping | None = None
        self.noise_like_upstream = False
        self.offload_device: torch.device | None = None  # set by set_offload(True)
        self.cfg_parallel = False  # set by enable_cfg_parallel()

    # ---- construction and saving (model/loading.py does the file work) ----

    @classmethod
    def from_parts(
        cls,
        transformer: Step1XEditTransformer,
        vae: AutoencoderKL,
        encoder: Step1XMLLMEncoder,
        device: torch.device | str = "cpu",
        version: str = "v1.1",
        offload: bool = False,
    ) -> Step1XEditPipeline:
        """A pipeline from models already in memory (the trainer's, the tests' tiny ones)."""
        from model.loading import qwen_processor

        processor = qwen_processor(encoder.tokenizer, encoder.image_processor)
        pipe = cls(make_scheduler(), vae, encoder.model, processor, transformer, version=version)
        pipe.set_offload(offload, device)
        return pipe

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, torch_dtype: torch.dtype = torch.bfloat16
    ) -> Step1XEditPipeline:
        """A local folder in the diffusers layout: upstream's Step1X-Edit-v1p1-diffusers or a
        `save_pretrained` output. Nothing is downloaded; weights load from safetensors only."""
        from model.loading import load_pipeline_folder

        return load_pipeline_folder(cls, pretrained_model_name_or_path, torch_dtype)

    @classmethod
    def from_single_file(
        cls,
        pretrained_model_link_or_path: str | os.PathLike,
        torch_dtype: torch.dtype = torch.bfloat16,
        vae_path: str | os.PathLike | None = None,
        qwen_path: str | os.PathLike | None = None,
        transformer_config: dict | None = None,
        **components,
    ) -> Step1XEditPipeline:
        """An official checkpoint (step1x-edit-i1258 / -v1p1-official.safetensors; the version is read from
        its keys), with vae.safetensors beside it and Qwen2.5-VL-7B-Instruct/ beside it or one folder up
        (the reference's model folder, or this project's models folder), unless given as paths or as
        components (vae=, text_encoder=, processor=), as diffusers' from_single_file takes them.
        transformer_config: other dimensions than the released model's (tests' tiny checkpoints)."""
        from model.loading import load_single_file

        return load_single_file(
            cls,
            pretrained_model_link_or_path,
            torch_dtype,
            vae_path,
            qwen_path,
            transformer_config,
            **components,
        )

    def save_pretrained(self, save_directory: str | os.PathLike, safe_serialization: bool = True) -> None:
        """The upstream diffusers layout (model_index.json + one folder per component, safetensors); the
        transformer in upstream's Step1XEditTransformer2DModel key names and config."""
        from model.loading import save_pipeline_folder

        if not safe_serialization:
            raise ValueError("Step1XEditPipeline saves safetensors only (nothing pickled is written or read)")
        save_pipeline_folder(self, save_directory)

    # ---- where things run ----

    @property
    def compute_device(self) -> torch.device:
        return self.offload_device if self.offload_device is not None else self._execution_device

    @property
    def compute_dtype(self) -> torch.dtype:
        """The working dtype (bf16 for the real model): the connector's, which fp8 options never change."""
        return self.transformer.connector.global_proj_out.weight.dtype

    def set_offload(self, offload: bool, device: torch.device | str | None = None) -> None:
        """offload=True keeps the three models on the CPU and moves each to `device` only while it runs (the
        reference's --offload); offload=False moves them to `device` and keeps them there."""
        device = torch.device(device) if device is not None else self.compute_device
        self.offload_device = device if offload else None
        home = torch.device("cpu") if offload else device
        for module in (self.transformer, self.vae, self.text_encoder):
            module.to(home)
        if device.type == "cuda":
            torch.cuda.empty_cache()

    @contextlib.contextmanager
    def _on_device(self, module: torch.nn.Module) -> Iterator[None]:
        if self.offload_device is not None:
            module.to(self.offload_device)
        try:
            yield
        finally:
            if self.offload_device is not None:
                module.to("cpu")
                if self.offload_device.type == "cuda":
                    torch.cuda.empty_cache()

    # ---- speed and memory options ----

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
            fp8_linears(self.text_encoder.requires_grad_(False), Fp8Linear)
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
            raise ImportError(f"fp8 mode {dit!r} needs torchao: pip install 'step1x-data[models]'") from e
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
        self.transformer.set_attention_backend(backend)

    def enable_cfg_parallel(self) -> None:
        """Run the two CFG branches on two processes (one GPU each, started by torchrun: `step1x-edit --gpus
        2`): process 0 runs the DiT on the instructions, process 1 on the empty ones, and the two velocities
        are exchanged after every step, so both processes hold the same latents and return the same images.
        Every process must call `edit` with the same arguments."""
        import torch.distributed as dist

        if not dist.is_initialized() or dist.get_world_size() != 2:
            raise ValueError("CFG parallelism needs exactly 2 processes (step1x-edit --gpus 2)")
        self.cfg_parallel = True

    def enable_sequence_parallel(self) -> None:
        """Split the DiT's joint sequence (text + target + reference tokens) over all processes with
        diffusers' context parallelism, Ulysses (an all-to-all trades the token split for a head split
        around each attention): every process runs every step on its part of the tokens, for the same
        images on all. The DiT's attention is unmasked (as in the reference), which is what diffusers'
        split supports; the text length (640) and the image token count are even, the 24 heads divide by 2.
        The connector runs whole on each process. Ring attention is not offered: it needs a backend that
        returns the softmax normaliser (flash-attn, cuDNN), which diffusers' SDPA backend does not."""
        import torch.distributed as dist
        from diffusers import ContextParallelConfig

        if not dist.is_initialized() or dist.get_world_size() < 2:
            raise ValueError("sequence parallelism needs 2 or more processes (step1x-edit --gpus N)")
        config = ContextParallelConfig(ulysses_degree=dist.get_world_size())
        count = torch.accelerator.device_count
        if self.compute_device.type == "cpu" and not count():
            # diffusers picks the device as rank % accelerator count, zero on a machine without one; the
            # device it picks is not used for CPU tensors, so one is reported while it is set up
            torch.accelerator.device_count = lambda: 1
        try:
            self.transformer.dit.enable_parallelism(config=config)
        finally:
            torch.accelerator.device_count = count

    def _velocity(self, v_local: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(cond, uncond) velocities: the halves of one 2B batch, or with CFG parallelism this process's
        half and the other's, all-gathered."""
        if not self.cfg_parallel:
            v_cond, v_uncond = v_local.chunk(2)
            return v_cond, v_uncond
        import torch.distributed as dist

        halves = [torch.empty_like(v_local) for _ in range(2)]
        dist.all_gather(halves, v_local.contiguous())
        return halves[0], halves[1]

    def compile_blocks(self, fullgraph: bool = True) -> None:
        """torch.compile each repeated DiT block class once; the first edit of each size pays compilation."""
        self.transformer.compile_repeated_blocks(fullgraph=fullgraph)

    # ---- editing ----

    def __call__(
        self,
        image: Image.Image | list[Image.Image],
        prompt: str | list[str],
        num_inference_steps: int = 28,
        true_cfg_scale: float = 6.0,
        size_level: int = 512,
        seed: int = 42,
        return_dict: bool = True,
    ) -> EditResult | tuple[list[Image.Image]]:
        """diffusers-style call: `pipe(image=..., prompt=...).images`. The negative prompt is the empty
        instruction with the same image, as in the reference."""
        images = [image] if isinstance(image, Image.Image) else list(image)
        prompts = [prompt] * len(images) if isinstance(prompt, str) else list(prompt)
        result = self.edit(images, prompts, size_level, num_inference_steps, true_cfg_scale, seed)
        return result if return_dict else (result.images,)

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
            resized = [images[i].convert("RGB").resize(size, self.recipe.input_resample) for i in idx]
            latents = self._edit_batch(resized, [instructions[i] for i in idx], num_steps, guidance, seed)
            decoded = self._decode(latents)
            for j, i in enumerate(idx):
                out_images[i] = decoded[j].resize(images[i].size, Image.Resampling.BICUBIC)
                out_latents[i] = latents[j].float().cpu()
        self.maybe_free_model_hooks()
        return EditResult(out_images, out_latents)  # type: ignore[arg-type]

    def _noise(self, shape: tuple[int, ...], generators: list[torch.Generator]) -> torch.Tensor:
        """Initial noise [B, C, h, w] in the working dtype, one draw per image from its seeded generator."""
        noise = torch.stack([torch.randn(shape, generator=g) for g in generators])
        return noise.to(self.compute_device, self.compute_dtype)

    def _noise_like_upstream(self, shape: tuple[int, ...], batch: int, seed: int) -> torch.Tensor:
        """The reference's draw: in the working dtype, from a generator on the GPU seeded with `seed`, one
        image at a time (so every image of a batch gets the same noise)."""
        device = self.compute_device
        generator = torch.Generator(device).manual_seed(seed)
        noise = torch.randn((1, *shape), generator=generator, device=device, dtype=self.compute_dtype)
        return noise.repeat(batch, 1, 1, 1)

    def _edit_batch(
        self, images: list[Image.Image], instructions: list[str], num_steps: int, guidance: float, seed: int
    ) -> torch.Tensor:
        device, dtype = self.compute_device, self.compute_dtype
        b = len(images)
        width, height = images[0].size
        # cond and uncond ("" with the same image) are encoded together and run as one batch of 2B
        with self._on_device(self.text_encoder):
            states, mask = self.encoder(images + images, instructions + [""] * b)
        states, mask = states.to(device, dtype), mask.to(device)

        f = vae_downsample(self.vae)
        lat_h, lat_w = height // f, width // f
        grid = (lat_h // 2, lat_w // 2)
        shape = (self.vae.config.latent_channels, lat_h, lat_w)
        # One CPU generator per item, all seeded alike: the same seed gives the same noise on any device and
        # in any batch composition, as when the reference edits one image at a time.
        generators = [torch.Generator().manual_seed(seed) for _ in range(b)]
        noise = self._noise(shape, generators)  # [B, C, h, w]
        posterior_eps = torch.stack([torch.randn(shape, generator=g) for g in generators])
        if self.noise_like_upstream:
            noise = self._noise_like_upstream(shape, b, seed)
        pixels = torch.stack([image_to_pixels(im) for im in images]).to(device)  # [B, 3, H, W]
        autocast = self.recipe.encode_autocast and self.vae.dtype == torch.float32
        with self._on_device(self.vae), torch.autocast(device.type, torch.bfloat16, enabled=autocast):
            # the reference samples the posterior (not its mode) for the reference image
            ref = encode_images(self.vae, pixels, posterior_eps.to(device))  # [B, C, h, w]
        x = pack(noise)  # [B, N, 64]
        ref_tokens = pack(ref.to(dtype)).repeat(2, 1, 1)  # [2B, N, 64]

        scheduler = self.scheduler
        sigmas = np.linspace(1.0, 1.0 / num_steps, num_steps)
        mu = calculate_shift(x.shape[1], 256, 4096, 0.5, 1.15)
        scheduler.set_timesteps(sigmas=sigmas, mu=mu, device=device)
        scheduler.set_begin_index(0)
        kwargs = {"scale": self.lora_scale}
        caching = contextlib.nullcontext()
        if self.step_cache:
            self.transformer.dit._reset_stateful_cache()  # residuals of the previous edit must not leak in
            caching = self.transformer.dit.cache_context("edit")
        # the rows of the 2B batch (cond, then uncond) this process runs the DiT on
        branches, mine = 2, slice(None)
        if self.cfg_parallel:
            import torch.distributed as dist

            branches, rank = 1, dist.get_rank()
            mine = slice(rank * b, (rank + 1) * b)
        computed: list[tuple[int, torch.Tensor]] = []  # the last two (step, guided velocity) that ran the DiT
        with self._on_device(self.transformer), caching, self.progress_bar(total=num_steps) as progress:
            for i, t in enumerate(scheduler.timesteps):
                sigma = scheduler.sigmas[i]  # t in [0, 1]
                if self.step_skipping is None or self.step_skipping.computes(i):
                    v = self.transformer(
                        latents=x.repeat(branches, 1, 1),
                        reference=ref_tokens[mine],
                        mllm_states=states[mine],
                        mllm_mask=mask[mine],
                        # the reference builds t in its latents' dtype
                        timestep=sigma.to(device, x.dtype).expand(branches * b),
                        grid=grid,
                        joint_attention_kwargs=kwargs,
                    )
                    v_cond, v_uncond = self._velocity(v)
                    v = damped_cfg(v_cond, v_uncond, guidance, damp=bool(sigma > self.recipe.cfg_truncate))
                    computed = [*computed[-1:], (i, v)]
                else:
                    (i0, v0), (i1, v1) = computed
                    v = v1 + (v1 - v0) * ((i - i1) / (i1 - i0))
                # The reference's update x + dt * v takes the wider dtype of the two: v1.1's damped (fp32)
                # first steps leave its latents, and so t, in fp32 for the rest; v1.0 stays in bf16. The
                # scheduler returns v's dtype. (The reference forms dt * v in bf16 on undamped steps, here
                # in v's promoted dtype: the product's last bit may differ.)
                v = v.to(torch.promote_types(x.dtype, v.dtype))
                x = scheduler.step(v, t, x, return_dict=False)[0]
                progress.update()
        return unpack(x, *grid)  # [B, C, h, w]

    def _decode(self, latents: torch.Tensor) -> list[Image.Image]:
        with self._on_device(self.vae):
            pixels = decode_latents(self.vae, latents.to(self.compute_device))
        # the reference's float -> uint8 conversion truncates (torchvision's to_pil_image)
        return [Image.fromarray(a) for a in pixels_to_uint8(pixels, truncate=True)]


def Step1XEditSampler(  # noqa: N802 - the name this constructor had before the sampler became a pipeline
    transformer: Step1XEditTransformer,
    vae: AutoencoderKL,
    encoder: Step1XMLLMEncoder,
    device: torch.device | str = "cpu",
    version: str = "v1.1",
    offload: bool = False,
) -> Step1XEditPipeline:
    """`Step1XEditPipeline.from_parts`, under the sampler's former name."""
    return Step1XEditPipeline.from_parts(transformer, vae, encoder, device, version, offload)
