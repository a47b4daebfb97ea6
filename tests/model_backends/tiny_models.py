"""Tiny random-initialised model folders in their upstream layouts, for the model backends' tests.

The real transformers / diffusers classes (Florence2ForConditionalGeneration + Florence2Processor,
Sam2VideoModel + Sam2VideoProcessor as facebook/sam2.1-* ship them, FluxFillPipeline, an SD inpainting
pipeline) with tiny configurations, saved with save_pretrained. Tokenizers are built from the tokenizers
library's byte alphabet: nothing is downloaded.

Florence-2 is random except that it is first taught, in a few dozen optimiser steps, one answer to
``<OD>`` on one photo: with pure random weights it answers nothing parseable, and the tests need known
boxes and names (a vocabulary name and one that is not) to follow through the annotator.
"""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tokenizers import pre_tokenizers

FLORENCE_IMAGE = 64  # pixels; the vision tower's 4 stages downsample by 32
FLORENCE_IMAGE_TOKENS = (FLORENCE_IMAGE // 32) ** 2 + 1  # the patch grid plus a pooled token


def _byte_alphabet() -> list[str]:
    return sorted(pre_tokenizers.ByteLevel.alphabet())


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
    from transformers import (
        BartConfig,
        CLIPImageProcessor,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
        Florence2VisionConfig,
        RobertaTokenizer,
    )

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for char in _byte_alphabet():
        vocab.setdefault(char, len(vocab))
    tokenizer = RobertaTokenizer(vocab=vocab, merges=[], extra_special_tokens={"image_token": "<image>"})
    tokenizer.add_tokens([f"<loc_{i}>" for i in range(1000)], special_tokens=True)
    image_processor = CLIPImageProcessor(
        size={"height": FLORENCE_IMAGE, "width": FLORENCE_IMAGE},
        do_center_crop=False,
        image_seq_length=FLORENCE_IMAGE_TOKENS,
    )
    parse = {"description_with_bboxes": {}, "pure_text": {}, "bboxes": {}}
    processor = Florence2Processor(image_processor, tokenizer, post_processor_config=parse)
    vision = Florence2VisionConfig(
        depths=[1, 1, 1, 1],
        embed_dim=[8, 16, 32, 32],
        num_heads=[1, 2, 4, 4],
        num_groups=[1, 2, 4, 4],
        window_size=2,
        projection_dim=32,
        drop_path_rate=0.0,
        max_position_embeddings=8,
        max_temporal_embeddings=2,
    )
    text = BartConfig(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=128,
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=2,
        forced_bos_token_id=0,
        forced_eos_token_id=2,
    )
    torch.manual_seed(0)
    model = Florence2ForConditionalGeneration(
        Florence2Config(vision_config=vision, text_config=text, image_token_id=tokenizer.image_token_id)
    )
    if teach is not None:
        image, answer = teach
        inputs = processor(text=["<OD>"], images=[image], return_tensors="pt")
        labels = tokenizer([answer], return_tensors="pt")["input_ids"]
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
    from transformers import (
        Sam2HieraDetConfig,
        Sam2ImageProcessor,
        Sam2MaskDecoderConfig,
        Sam2PromptEncoderConfig,
        Sam2VideoConfig,
        Sam2VideoModel,
        Sam2VideoProcessor,
        Sam2VideoVideoProcessor,
        Sam2VisionConfig,
    )

    size = 128
    backbone = Sam2HieraDetConfig(
        hidden_size=8,
        image_size=[size, size],
        blocks_per_stage=[1, 2, 2, 1],
        embed_dim_per_stage=[8, 16, 32, 64],
        num_attention_heads_per_stage=[1, 1, 2, 2],
        window_size_per_stage=[4, 4, 4, 2],
        global_attention_blocks=[2, 4],
        window_positional_embedding_background_size=[2, 2],
    )
    vision = Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=[64, 32, 16, 8],
        backbone_feature_sizes=[[size // 4] * 2, [size // 8] * 2, [size // 16] * 2],
        fpn_hidden_size=32,
    )
    config = Sam2VideoConfig(
        vision_config=vision,
        prompt_encoder_config=Sam2PromptEncoderConfig(hidden_size=32, image_size=size, mask_input_channels=4),
        mask_decoder_config=Sam2MaskDecoderConfig(
            hidden_size=32, mlp_dim=64, num_hidden_layers=1, num_attention_heads=2, iou_head_hidden_dim=32
        ),
        memory_attention_hidden_size=32,
        memory_encoder_hidden_size=32,
        mask_downsampler_embed_dim=32,
        memory_fuser_embed_dim=32,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=32,
        image_size=size,
    )
    torch.manual_seed(0)
    Sam2VideoModel(config).eval().save_pretrained(path)
    Sam2VideoProcessor(
        image_processor=Sam2ImageProcessor(
            size={"height": size, "width": size}, mask_size={"height": size // 4, "width": size // 4}
        ),
        video_processor=Sam2VideoVideoProcessor(size={"height": size, "width": size}),
        target_size=size,
    ).save_pretrained(path)


def _clip_parts(hidden: int = 32) -> tuple:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in _byte_alphabet():
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            projection_dim=hidden,
            max_position_embeddings=77,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    return tokenizer, encoder


def _tiny_vae(**extra: object):
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
        **extra,
    )


def flux_fill_folder(path: Path) -> None:
    """black-forest-labs/FLUX.1-Fill-dev's layout: FluxFillPipeline's seven components."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxFillPipeline, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    torch.manual_seed(0)
    clip_tokenizer, clip = _clip_parts()
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(char, -3.0) for char in string.ascii_letters + string.digits]
    t5_tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0)
    t5 = T5EncoderModel(
        T5Config(vocab_size=len(t5_tokenizer), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4)
    )
    vae = _tiny_vae(
        sample_size=64,  # the canvas the inpainter paints at (FLUX.1-Fill-dev's VAE says 1024)
        shift_factor=0.1159,
        scaling_factor=0.3611,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    # Fill's input: packed noise latents (4 x 2x2) + packed masked-image latents (16) + the packed mask (16).
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=48,
        out_channels=16,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        guidance_embeds=True,
        axes_dims_rope=[4, 6, 6],
    )
    FluxFillPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=clip,
        tokenizer=clip_tokenizer,
        text_encoder_2=t5,
        tokenizer_2=t5_tokenizer,
        transformer=transformer,
    ).save_pretrained(path)


def sd_inpainting_folder(path: Path) -> None:
    """stabilityai/stable-diffusion-2-inpainting's layout: a 9-channel UNet and its companions."""
    from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    tokenizer, encoder = _clip_parts()
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
