"""Models backends of the appearance tools: ControlNet re-rendering through diffusers (Stable Diffusion 1.5).

- `recolour` (DepthRecolour) and `retexture` (DepthRetexture): StableDiffusionControlNetInpaintPipeline with
  the depth ControlNet. The region to change is repainted from a prompt naming the object and its new colour
  or material ("a blue cup", "a cup made of marble") while the depth map (the `depth` tool's) holds its
  shape; the result is composited back through the region's soft mask, so every pixel outside it is the
  photo's own.
- `stylise` (CannyStylise): StableDiffusionControlNetImg2ImgPipeline with the canny ControlNet: the whole
  photo redrawn from a style prompt, its canny edges holding the scene's outlines.

Weights load once per process from --models-dir/<upstream repository name>: the base model
(stable-diffusion-v1-5, or stable-diffusion-inpainting) and the ControlNet (control_v11f1p_sd15_depth,
control_v11p_sd15_canny), safetensors only. The working size is the base model's native one (its UNet's
sample size times the VAE's scale: 512 for SD 1.5); edited regions are cropped around with context and
scaled to it.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import cv2
import numpy as np

from annotators.pretrained import device, inference_dtype, local_pretrained
from annotators.registry import Plugin, Resources
from tasks.masks import bbox_of, dilate

BASE_MODELS = ("stable-diffusion-v1-5", "stable-diffusion-inpainting")
DEPTH_CONTROLNET = "control_v11f1p_sd15_depth"
CANNY_CONTROLNET = "control_v11p_sd15_canny"
NEGATIVE = "blurry, distorted, deformed, low quality, artifacts, watermark, text"


def image_seed(image: np.ndarray, *extra: object) -> int:
    """A seed from the pixels and the request: the same input gives the same output."""
    digest = hashlib.sha256(np.ascontiguousarray(image[::7, ::7]).tobytes())
    digest.update(repr(extra).encode())
    return int(digest.hexdigest()[:8], 16)


def working_size(width: int, height: int, native: int) -> tuple[int, int]:
    """(w, h) with the longer side ``native`` and both multiples of 8 (the VAE's stride)."""
    scale = native / max(width, height)
    return max(8, round(width * scale / 8) * 8), max(8, round(height * scale / 8) * 8)


def context_box(region: np.ndarray, context: float) -> tuple[int, int, int, int]:
    """The region's box grown by ``context`` of its size on each side (what the model sees around it)."""
    x0, y0, x1, y1 = bbox_of(region)
    height, width = region.shape
    mx, my = round((x1 - x0) * context) + 8, round((y1 - y0) * context) + 8
    return max(0, x0 - mx), max(0, y0 - my), min(width, x1 + mx), min(height, y1 + my)


class ControlNetPainter(Plugin):
    """Loads a Stable Diffusion 1.5 pipeline with one ControlNet and runs it on crops."""

    backend = "models"
    resources = Resources(num_cpus=1, num_gpus=0.6, memory_gb=8.0)
    packages = (("torch", "models"), ("diffusers", "models"), ("transformers", "models"))
    controlnet: ClassVar[str]
    pipeline_class: ClassVar[str]
    steps: ClassVar[int] = 25
    guidance: ClassVar[float] = 7.5
    control_scale: ClassVar[float] = 0.8

    def __init__(self, models_dir: str | None = None) -> None:
        super().__init__(models_dir)
        import diffusers

        self.device = device()
        self.dtype = inference_dtype(self.device)
        control = local_pretrained(
            diffusers.ControlNetModel, self.model_path(self.controlnet), dtype=self.dtype
        )
        self.pipe = local_pretrained(
            getattr(diffusers, self.pipeline_class),
            self.model_path(*BASE_MODELS),
            controlnet=control,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
            dtype=self.dtype,
        ).to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.native = int(self.pipe.unet.config.sample_size) * int(self.pipe.vae_scale_factor)

    def paint(self, prompt: str, seed: int, **inputs: Any) -> np.ndarray:
        """One pipeline call; ``inputs`` are the pipeline's own (image, mask_image, control_image...)."""
        import torch

        generator = torch.Generator(device="cpu").manual_seed(seed)
        width, height = inputs["image"].size
        result = self.pipe(
            prompt=prompt,
            negative_prompt=NEGATIVE,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance,
            controlnet_conditioning_scale=self.control_scale,
            generator=generator,
            width=width,
            height=height,
            output_type="np",
            **inputs,
        ).images[0]
        return np.clip(np.round(result * 255), 0, 255).astype(np.uint8)


class _RegionRepaint(ControlNetPainter):
    """Repaints a soft region of a photo with a prompt, its shape held by the depth ControlNet."""

    controlnet = DEPTH_CONTROLNET
    pipeline_class = "StableDiffusionControlNetInpaintPipeline"
    models: ClassVar[tuple[str | tuple[str, ...], ...]] = (BASE_MODELS, DEPTH_CONTROLNET)
    context = 0.25

    def repaint(self, image: np.ndarray, weights: np.ndarray, depth: np.ndarray, prompt: str) -> np.ndarray:
        from PIL import Image

        region = weights > 0.3
        if bbox_of(region) is None:
            return image.copy()
        x0, y0, x1, y1 = context_box(region, self.context)
        crop = image[y0:y1, x0:x1]
        size = working_size(x1 - x0, y1 - y0, self.native)
        # The model repaints a slightly larger hole than the region: the composite below takes only the
        # region back, so its edge is the model's own continuation, not the hole's border.
        hole = dilate(region[y0:y1, x0:x1], max(2, round(0.02 * max(size))))
        control = (np.clip(depth[y0:y1, x0:x1], 0, 1) * 255).astype(np.uint8)
        painted = self.paint(
            prompt,
            image_seed(crop, prompt),
            image=Image.fromarray(cv2.resize(crop, size, interpolation=cv2.INTER_AREA)),
            mask_image=Image.fromarray(
                cv2.resize(hole.astype(np.uint8) * 255, size, interpolation=cv2.INTER_NEAREST)
            ),
            control_image=Image.fromarray(cv2.cvtColor(cv2.resize(control, size), cv2.COLOR_GRAY2RGB)),
        )
        painted = cv2.resize(painted, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        alpha = np.clip(weights[y0:y1, x0:x1], 0.0, 1.0)[..., None]
        out = image.copy()
        blended = crop.astype(np.float32) * (1.0 - alpha) + painted * alpha
        out[y0:y1, x0:x1] = np.where(alpha > 0, np.clip(np.round(blended), 0, 255).astype(np.uint8), crop)
        return out


class DepthRecolour(_RegionRepaint):
    name = "controlnet_depth_recolour"
    version = "diffusers-sd15"

    def __call__(
        self,
        image: np.ndarray,
        weights: np.ndarray,
        colour: Any,
        subject: str,
        depth: np.ndarray | None = None,
    ) -> np.ndarray:
        if depth is None:
            raise ValueError(f"{self.name} re-renders along a depth map and needs one")
        prompt = f"a {colour.en} {subject}, realistic photo, natural lighting, high detail"
        return self.repaint(image, weights, depth, prompt)


class DepthRetexture(_RegionRepaint):
    name = "controlnet_depth_retexture"
    version = "diffusers-sd15"

    def __call__(
        self, image: np.ndarray, mask: np.ndarray, material: Any, subject: str, depth: np.ndarray, seed: int
    ) -> np.ndarray:
        prompt = (
            f"a {subject} made of {material.en}, {material.adjective} {subject}, realistic photo, high detail"
        )
        # A soft edge of a few pixels, inside the object: the model's surface meets the photo smoothly.
        feather = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.5) * dilate(mask, 2)
        return self.repaint(image, feather, depth, prompt)


class CannyStylise(ControlNetPainter):
    name = "controlnet_canny_stylise"
    version = "diffusers-sd15"
    controlnet = CANNY_CONTROLNET
    pipeline_class = "StableDiffusionControlNetImg2ImgPipeline"
    models: ClassVar[tuple[str | tuple[str, ...], ...]] = (BASE_MODELS, CANNY_CONTROLNET)
    strength: ClassVar[float] = 0.8  # how much of the photo is redrawn; the edges keep the rest in place

    def __call__(self, image: np.ndarray, style: Any, seed: int) -> np.ndarray:
        from PIL import Image

        height, width = image.shape[:2]
        size = working_size(width, height, self.native)
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        edges = cv2.Canny(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), 100, 200)
        prompt = f"{style.en}, artwork, masterpiece, in the style of {style.name}"
        drawn = self.paint(
            prompt,
            seed,
            image=Image.fromarray(small),
            control_image=Image.fromarray(cv2.cvtColor(edges, cv2.COLOR_GRAY2RGB)),
            strength=self.strength,
        )
        return cv2.resize(drawn, (width, height), interpolation=cv2.INTER_CUBIC)
