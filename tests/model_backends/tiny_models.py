"""Tiny random-initialised model folders in their upstream layouts, for the model backends' tests.

The real transformers / diffusers classes (Florence2ForConditionalGeneration + Florence2Processor,
Sam2VideoModel + Sam2VideoProcessor as facebook/sam2.1-* ship them, FluxFillPipeline, an SD inpainting
pipeline), saved with save_pretrained. The configurations are the benchmark's tiny ones
(bench/random_models.py), so the tests load what the benchmark's dry run times.

Florence-2 is random except that it is first taught, in a few dozen optimiser steps, one answer to
``<OD>`` on one photo: with pure random weights it answers nothing parseable, and the tests need known
boxes and names (a vocabulary name and one that is not) to follow through the annotator.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def _random_models():
    path = Path(__file__).resolve().parents[2] / "bench" / "random_models.py"
    spec = importlib.util.spec_from_file_location("bench_random_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RANDOM_MODELS = _random_models()


def florence_answer(named: list[tuple[str, tuple[int, int, int, int]]], width: int, height: int) -> str:
    """An <OD> answer as Florence-2 writes it: a name, then its box as four location tokens (0-999)."""
    text = ""
    for name, (x0, y0, x1, y1) in named:
        bins = (x0 * 1000 // width, y0 * 1000 // height, x1 * 1000 // width, y1 * 1000 // height)
        text += name + "".join(f"<loc_{min(b, 999)}>" for b in bins)
    return text


# What the taught Florence-2 answers to <OD> on coffee.png (600 x 400): the cup (its box in the COCO labels)
# under a vocabulary name, a box under a name the vocabulary does not know (its region caption is asked
# for), and one under a name of something a removal cannot take away (dropped at once).
CUP_BOX = (175, 16, 412, 305)
COFFEE_ANSWER = florence_answer(
    [("cup", CUP_BOX), ("cactus", (450, 250, 590, 390)), ("human face", (30, 60, 150, 200))], 600, 400
)


def florence_folder(path: Path, teach: tuple[Image.Image, str] | None = None, steps: int = 40) -> None:
    from transformers import Florence2ForConditionalGeneration

    config, processor = RANDOM_MODELS.florence_parts(tiny=True)
    torch.manual_seed(0)
    model = Florence2ForConditionalGeneration(config)
    if teach is not None:
        image, answer = teach
        inputs = processor(text=["<OD>"], images=[image], return_tensors="pt")
        labels = processor.tokenizer([answer], return_tensors="pt")["input_ids"]
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
        model.train()
        for _ in range(steps):
            loss = model(**inputs, labels=labels).loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval().save_pretrained(path)
    processor.save_pretrained(path)


def sam2_folder(path: Path) -> None:
    """facebook/sam2.1-hiera-*'s layout: a Sam2VideoModel checkpoint and a Sam2VideoProcessor."""
    from transformers import Sam2VideoConfig, Sam2VideoModel, Sam2VideoProcessor, Sam2VideoVideoProcessor

    configs, images = RANDOM_MODELS.sam2_parts(tiny=True)
    size = configs["image_size"]
    config = Sam2VideoConfig(
        **configs,
        memory_attention_hidden_size=32,
        memory_encoder_hidden_size=32,
        mask_downsampler_embed_dim=32,
        memory_fuser_embed_dim=32,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=32,
    )
    torch.manual_seed(0)
    Sam2VideoModel(config).eval().save_pretrained(path)
    Sam2VideoProcessor(
        image_processor=images,
        video_processor=Sam2VideoVideoProcessor(size={"height": size, "width": size}),
        target_size=size,
    ).save_pretrained(path)


def _tiny_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        block_out_channels=[8, 16],
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
    )


def flux_fill_folder(path: Path) -> None:
    """black-forest-labs/FLUX.1-Fill-dev's layout: FluxFillPipeline's seven components."""
    torch.manual_seed(0)
    RANDOM_MODELS.flux_fill("cpu", torch.float32, tiny=True).save_pretrained(path)


def sd_inpainting_folder(path: Path) -> None:
    """stabilityai/stable-diffusion-2-inpainting's layout: a 9-channel UNet and its companions."""
    from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    tokenizer, encoder = RANDOM_MODELS.clip_text(tiny=True)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        sample_size=16,
        in_channels=9,  # latents, masked-image latents, mask
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=8,
        attention_head_dim=4,
    )
    StableDiffusionInpaintPipeline(
        vae=_tiny_vae(),
        text_encoder=encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=DDIMScheduler(steps_offset=1),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(path)


def photo_array(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))
