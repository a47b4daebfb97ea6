"""The `inpaint` tool's models backend: FLUX.1-Fill-dev, or an SD / SDXL inpainting model on smaller GPUs.

Which model: the subfolder of --models-dir named by the environment variable STEP1X_INPAINT_MODEL (any
diffusers inpainting pipeline: FLUX.1-Fill or one ``AutoPipelineForInpainting`` loads: SD 1.5/2, SDXL),
else the first present of FLUX.1-Fill-dev (full quality, ~34 GB of bf16 weights with its T5-XXL),
stable-diffusion-xl-1.0-inpainting-0.1 (~7 GB), stable-diffusion-2-inpainting and stable-diffusion-inpainting
(~3 GB). On a Ray cluster set the variable for the workers too (``--runtime-env-json
'{"env_vars": {"STEP1X_INPAINT_MODEL": "..."}}'``); each sample records the model that made it.

``prompt=None`` fills the hole from its surroundings (a removal); a prompt paints that object in it (a
replacement). The model works on a window around the hole, not the whole photo: at least ``min_side``
pixels of context on each axis at the photo's own resolution (larger windows are scaled down to
``max_side``), which is both sharper than a downscaled photo and several times cheaper than a 1024² canvas
for a small object. The result is blended back through the mask with an edge feathered inwards, so every
pixel outside the mask is exactly the source's.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from annotators.accelerator_memory import releasing_memory_on_oom
from annotators.pretrained import compiling, device, inference_dtype, local_pretrained
from annotators.registry import Plugin, PluginUnavailable, Resources
from tasks.masks import bbox_of

INPAINT_MODEL_ENV = "STEP1X_INPAINT_MODEL"
FLUX_FILL = "FLUX.1-Fill-dev"
SD_INPAINTING = (
    "stable-diffusion-xl-1.0-inpainting-0.1",
    "stable-diffusion-2-inpainting",
    "stable-diffusion-inpainting",
)


@dataclass(frozen=True)
class Canvas:
    """The sizes a model paints at: windows are grown to ``min_side`` and scaled down to ``max_side``."""

    min_side: int
    max_side: int
    multiple: int  # latent cell (x2 for FLUX's 2x2 packing)


class FluxFill:
    """diffusers' FluxFillPipeline (FLUX.1-Fill-dev), bf16 on the GPU."""

    PROMPTS_KEPT = 64  # encoded prompts kept: a removal asks one prompt, a replacement a vocabulary's

    def __init__(
        self,
        pipe: Any,
        steps: int = 28,
        guidance: float = 30.0,
        removal_prompt: str = "",
        compile_blocks: bool = False,
    ) -> None:
        self.pipe = pipe
        self.steps = steps  # FLUX.1-dev's usual 28; BFL's Fill examples use 50
        self.guidance = guidance  # FLUX.1-Fill-dev's distilled guidance, as published
        self.removal_prompt = removal_prompt
        # The VAE's sample_size is the resolution the model was trained at: 1024 for FLUX.1-Fill-dev.
        native = pipe.vae.config.sample_size
        self.canvas = Canvas(min_side=native * 3 // 4, max_side=native, multiple=pipe.vae_scale_factor * 2)
        self.compiled = compile_blocks
        if compile_blocks:
            # Regional compilation (one compile per block type, not per model) with dynamic shapes, so
            # every canvas size reuses it: on an H200 a 784x720 fill takes 2.25 s instead of 3.22 s, the
            # GPU busy 94 % of it (bench/model_fill_profile.py; 39 s to compile, once per actor).
            pipe.transformer.compile_repeated_blocks(dynamic=True)
        self._prompts: dict[str, tuple[Any, Any]] = {}

    @classmethod
    def load(cls, path: str, on: str, dtype: Any) -> FluxFill:
        from diffusers import FluxFillPipeline

        pipe = _ready(local_pretrained(FluxFillPipeline, path, dtype=dtype), on)
        return cls(pipe, compile_blocks=compiling(on))

    def _encoded(self, prompt: str) -> tuple[Any, Any]:
        """CLIP's pooled and T5-XXL's token embeddings of ``prompt``, computed once: every removal asks
        the same (empty) prompt, and T5-XXL over 512 tokens is GPU time no fill needs twice."""
        import torch

        if prompt not in self._prompts:
            if len(self._prompts) >= self.PROMPTS_KEPT:
                self._prompts.pop(next(iter(self._prompts)))
            with torch.inference_mode():
                embeds, pooled, _ = self.pipe.encode_prompt(prompt, prompt_2=None, device=self.pipe.device)
            self._prompts[prompt] = (embeds, pooled)
        return self._prompts[prompt]

    def __call__(self, image: Any, mask: Any, prompt: str | None, seed: int) -> np.ndarray:
        import torch

        embeds, pooled = self._encoded(self.removal_prompt if prompt is None else prompt)
        result = self.pipe(
            prompt_embeds=embeds,
            pooled_prompt_embeds=pooled,
            image=image,
            mask_image=mask,
            height=image.height,
            width=image.width,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance,
            generator=torch.Generator("cpu").manual_seed(seed),
            output_type="np",
        )
        return result.images[0]

    def describe(self) -> str:
        return f"steps={self.steps} guidance={self.guidance}" + (" compiled" if self.compiled else "")


class StableDiffusionFill:
    """An SD 1.5 / 2 / SDXL inpainting pipeline through diffusers' AutoPipelineForInpainting."""

    # Without a negative prompt an inpainting model with an empty prompt tends to paint some new object.
    REMOVAL_NEGATIVE = "object, person, animal, text, watermark, logo, frame"

    def __init__(self, pipe: Any, steps: int = 30, guidance: float = 7.5, removal_prompt: str = "") -> None:
        self.pipe = pipe
        self.steps = steps
        self.guidance = guidance
        self.removal_prompt = removal_prompt
        native = pipe.unet.config.sample_size * pipe.vae_scale_factor  # 512 (SD) or 1024 (SDXL)
        self.canvas = Canvas(min_side=native * 3 // 4, max_side=native, multiple=pipe.vae_scale_factor)

    @classmethod
    def load(cls, path: str, on: str, dtype: Any) -> StableDiffusionFill:
        from diffusers import AutoPipelineForInpainting

        return cls(_ready(local_pretrained(AutoPipelineForInpainting, path, dtype=dtype), on))

    def __call__(self, image: Any, mask: Any, prompt: str | None, seed: int) -> np.ndarray:
        import torch

        result = self.pipe(
            prompt=self.removal_prompt if prompt is None else prompt,
            negative_prompt=self.REMOVAL_NEGATIVE if prompt is None else None,
            image=image,
            mask_image=mask,
            height=image.height,
            width=image.width,
            strength=1.0,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance,
            generator=torch.Generator("cpu").manual_seed(seed),
            output_type="np",
        )
        return result.images[0]

    def describe(self) -> str:
        return f"{type(self.pipe).__name__} steps={self.steps} guidance={self.guidance}"


def _ready(pipe: Any, on: str) -> Any:
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(on)


def _pipeline_class(path: str) -> str:
    with open(os.path.join(path, "model_index.json")) as handle:
        return json.load(handle).get("_class_name", "")


def feathered_alpha(mask: np.ndarray, feather: int) -> np.ndarray:
    """1 inside the mask, falling to 0 at its edge over ``feather`` pixels, exactly 0 outside it."""
    alpha = mask.astype(np.float32)
    core = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(feather, 1))
    if feather > 0 and core.any():  # a hole thinner than the feather is replaced whole
        blurred = cv2.GaussianBlur(core.astype(np.float32), (0, 0), feather / 2)
        alpha = np.where(mask, np.maximum(blurred, core.astype(np.float32)), 0.0)
    return alpha


def context_window(
    box: tuple[int, int, int, int], width: int, height: int, context: float, min_side: int
) -> tuple[int, int, int, int]:
    """The window (x0, y0, x1, y1) the model sees: the box with ``context`` of its size around it on each
    side, at least ``min_side`` on each axis, kept inside the photo."""

    def span(lo: int, hi: int, limit: int) -> tuple[int, int]:
        size = min(limit, max(round((hi - lo) * (1 + 2 * context)), min_side))
        start = min(max(0, (lo + hi - size) // 2), limit - size)
        return start, start + size

    x0, x1 = span(box[0], box[2], width)
    y0, y1 = span(box[1], box[3], height)
    return x0, y0, x1, y1


def canvas_size(width: int, height: int, canvas: Canvas) -> tuple[int, int]:
    """The model's canvas for a window: scaled down to ``max_side``, or up to ``min_side`` for a small
    photo, rounded to the latent grid."""
    longest = max(width, height)
    scale = canvas.max_side / longest if longest > canvas.max_side else max(1.0, canvas.min_side / longest)
    return (
        max(canvas.multiple, round(width * scale / canvas.multiple) * canvas.multiple),
        max(canvas.multiple, round(height * scale / canvas.multiple) * canvas.multiple),
    )


class DiffusionInpainter(Plugin):
    """Fills a hole with a diffusion inpainting model; see the module's docstring for which and how."""

    name = "diffusion_inpainter"
    backend = "models"
    # One inpainter per GPU, with the objects annotator (0.2) and, for a replacement, the grounding model
    # (0.15) beside it: the shares are Ray's scheduling tokens, and every task's must add up to one GPU
    # at most (tests/engine/test_gpu_shares.py). FLUX.1-Fill's 34 GB of weights and its activations at
    # 1024² fit an 80 GB GPU together with Florence-2 and SAM-2.
    resources = Resources(num_cpus=1.0, num_gpus=0.6)
    models = ((FLUX_FILL, *SD_INPAINTING),)
    packages = (("torch", "models"), ("diffusers", "models"), ("transformers", "models"))

    def __init__(
        self,
        models_dir: str | None = None,
        engine: FluxFill | StableDiffusionFill | None = None,
        context: float = 0.5,
        feather: int = 4,
        seed: int = 0,
    ) -> None:
        super().__init__(models_dir)
        if engine is None:
            folder = chosen_folder(models_dir)
            path = os.path.join(models_dir or "", folder)
            on = device()
            load = FluxFill.load if _pipeline_class(path) == "FluxFillPipeline" else StableDiffusionFill.load
            engine = load(path, on, inference_dtype(on))
            self.model = folder
        else:
            self.model = type(engine).__name__
        self.engine = engine
        self.context = context  # context around the hole on each side, as a fraction of the hole's size
        self.feather = feather
        self.seed = seed

    @classmethod
    def check(cls, models_dir: str | None) -> None:
        named = os.environ.get(INPAINT_MODEL_ENV)
        # The variable replaces the list of alternatives by the one folder it names.
        checked = type(cls.__name__, (cls,), {"models": ((named,),)}) if named else cls
        super(DiffusionInpainter, checked).check(models_dir)

    def describe(self) -> dict[str, str]:
        from diffusers import __version__

        return {
            "backend": self.backend,
            "name": self.model,
            "version": f"diffusers-{__version__} {self.engine.describe()} context={self.context}",
        }

    def can_fill(self, image: np.ndarray, mask: np.ndarray) -> str | None:
        """None: a diffusion model continues structure and texture from the whole window around the hole, so
        no hole is refused for its surroundings (the task still measures every fill before keeping it)."""
        return None

    def __call__(self, image: np.ndarray, mask: np.ndarray, prompt: str | None = None) -> np.ndarray:
        box = bbox_of(mask)
        if box is None:
            return image.copy()
        height, width = mask.shape
        x0, y0, x1, y1 = context_window(box, width, height, self.context, self.engine.canvas.min_side)
        window = image[y0:y1, x0:x1]
        hole = mask[y0:y1, x0:x1]
        size = canvas_size(x1 - x0, y1 - y0, self.engine.canvas)
        shrinking = size[0] < x1 - x0
        painted = cv2.resize(window, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
        painted_hole = cv2.resize(hole.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        # Scaling can shrink thin parts of the hole out of existence; grow it back by a pixel.
        painted_hole = cv2.dilate(painted_hole, np.ones((3, 3), np.uint8)) * 255
        seed = self._seed(image, box, prompt)
        fill = releasing_memory_on_oom(lambda: self._paint(painted, painted_hole, prompt, seed))
        fill = cv2.resize(
            fill, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC if shrinking else cv2.INTER_AREA
        )
        alpha = feathered_alpha(hole, self.feather)[..., None]
        out = image.copy()
        blended = window * (1.0 - alpha) + fill.astype(np.float32) * alpha
        out[y0:y1, x0:x1] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
        return out

    def _paint(self, window: np.ndarray, hole: np.ndarray, prompt: str | None, seed: int) -> np.ndarray:
        from PIL import Image

        result = self.engine(Image.fromarray(window), Image.fromarray(hole), prompt, seed)
        return np.clip(np.round(np.asarray(result) * 255), 0, 255).astype(np.uint8)

    def _seed(self, image: np.ndarray, box: tuple[int, int, int, int], prompt: str | None) -> int:
        """The same photo, hole and prompt always get the same noise (the same sample on a rerun)."""
        key = f"{image.shape}|{box}|{prompt}".encode() + image[::61, ::61].tobytes()
        return (zlib.crc32(key) + self.seed) % 2**31


def chosen_folder(models_dir: str | None) -> str:
    """The subfolder of ``models_dir`` holding the inpainting model this run uses."""
    named = os.environ.get(INPAINT_MODEL_ENV)
    options = (named,) if named else DiffusionInpainter.models[0]
    for option in options:
        if models_dir and os.path.isfile(os.path.join(models_dir, option, "model_index.json")):
            return option
    raise PluginUnavailable(
        f"{DiffusionInpainter.name} (models backend) needs a diffusers inpainting pipeline (model_index.json)"
        f" in {' or '.join(os.path.join(models_dir or '--models-dir', o) for o in options)}"
    )
