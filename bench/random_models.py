"""The model backends' models with random weights, from their configurations: Florence-2-large, SAM-2.1-
hiera-large and FLUX.1-Fill-dev at full size (bench/model_backend_edits.py times them on a GPU), or tiny (the
same code on the CPU: that script's dry run, and the models folder of tests/model_backends/tiny_models.py).
One place holds each configuration, so the benchmark and the tests build the same models.

Tokenizers are built from the tokenizers library's byte alphabet: nothing is downloaded.
"""

from __future__ import annotations

import string
from typing import Any

from model.random_init import built_on


def _byte_vocab(specials: list[str], size: int | None = None) -> dict[str, int]:
    from tokenizers import pre_tokenizers

    vocab = {token: i for i, token in enumerate(specials)}
    for char in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab.setdefault(char, len(vocab))
    for i in range(len(vocab), size or 0):  # fillers up to the real vocabulary's size
        vocab[f"<unused_{i}>"] = i
    return vocab


def florence_parts(tiny: bool) -> tuple[Any, Any]:
    """Florence-2-large (0.77 B: DaViT vision tower at 768 px, a BART-large-sized encoder-decoder), or a
    tiny one at 64 px: its configuration and its processor."""
    from transformers import (
        BartConfig,
        CLIPImageProcessor,
        Florence2Config,
        Florence2Processor,
        Florence2VisionConfig,
        RobertaTokenizer,
    )

    image, vocab_size = (64, 1300) if tiny else (768, 51289)
    tokenizer = RobertaTokenizer(
        vocab=_byte_vocab(["<s>", "<pad>", "</s>", "<unk>"], vocab_size - 1001),
        merges=[],
        extra_special_tokens={"image_token": "<image>"},
    )
    tokenizer.add_tokens([f"<loc_{i}>" for i in range(1000)], special_tokens=True)
    processor = Florence2Processor(
        CLIPImageProcessor(
            size={"height": image, "width": image},
            do_center_crop=False,
            image_seq_length=(image // 32) ** 2 + 1,  # the vision tower's patch grid plus a pooled token
        ),
        tokenizer,
        # Upstream's parse tasks that the backends use: <OD>, region captions, open-vocabulary detection.
        post_processor_config={
            "description_with_bboxes": {},
            "pure_text": {},
            "bboxes": {},
            "description_with_bboxes_or_polygons": {},
        },
    )
    if tiny:
        vision = Florence2VisionConfig(
            depths=[1, 1, 1, 1],
            embed_dim=[8, 16, 32, 32],
            num_heads=[1, 2, 4, 4],
            num_groups=[1, 2, 4, 4],
            window_size=2,
            projection_dim=32,
            drop_path_rate=0.0,  # the tests teach it a few steps: no random depth while they do
            max_position_embeddings=8,
            max_temporal_embeddings=2,
        )
        text = {"d_model": 32, "layers": 1, "heads": 2, "ffn": 64}
    else:
        vision = Florence2VisionConfig(
            depths=[1, 1, 9, 1],
            embed_dim=[256, 512, 1024, 2048],
            num_heads=[8, 16, 32, 64],
            num_groups=[8, 16, 32, 64],
            window_size=12,
            projection_dim=1024,
        )
        text = {"d_model": 1024, "layers": 12, "heads": 16, "ffn": 4096}
    bart = BartConfig(
        vocab_size=len(tokenizer),
        d_model=text["d_model"],
        encoder_layers=text["layers"],
        decoder_layers=text["layers"],
        encoder_attention_heads=text["heads"],
        decoder_attention_heads=text["heads"],
        encoder_ffn_dim=text["ffn"],
        decoder_ffn_dim=text["ffn"],
        max_position_embeddings=1024,
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=2,
        forced_bos_token_id=0,
        forced_eos_token_id=2,
    )
    config = Florence2Config(vision_config=vision, text_config=bart, image_token_id=tokenizer.image_token_id)
    return config, processor


def sam2_parts(tiny: bool) -> tuple[dict[str, Any], Any]:
    """SAM-2.1-hiera-large (224 M) at 1024 px, or a tiny one at 128: the configurations a Sam2Config or a
    Sam2VideoConfig takes (vision, prompt encoder, mask decoder, image size), and the image processor."""
    from transformers import (
        Sam2HieraDetConfig,
        Sam2ImageProcessor,
        Sam2MaskDecoderConfig,
        Sam2PromptEncoderConfig,
        Sam2VisionConfig,
    )

    if tiny:
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
        channels, hidden = [64, 32, 16, 8], 32
        prompt = Sam2PromptEncoderConfig(hidden_size=hidden, image_size=size, mask_input_channels=4)
        decoder = Sam2MaskDecoderConfig(
            hidden_size=hidden,
            mlp_dim=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            iou_head_hidden_dim=hidden,
        )
    else:
        size = 1024
        backbone = Sam2HieraDetConfig(
            hidden_size=144,
            num_attention_heads=2,
            blocks_per_stage=[2, 6, 36, 4],
            embed_dim_per_stage=[144, 288, 576, 1152],
            num_attention_heads_per_stage=[2, 4, 8, 16],
            window_size_per_stage=[8, 4, 16, 8],
            global_attention_blocks=[23, 33, 43],
        )
        channels, hidden = [1152, 576, 288, 144], 256
        prompt = Sam2PromptEncoderConfig(hidden_size=hidden, image_size=size)
        decoder = Sam2MaskDecoderConfig(hidden_size=hidden, iou_head_hidden_dim=hidden)
    vision = Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=channels,
        backbone_feature_sizes=[[size // 4] * 2, [size // 8] * 2, [size // 16] * 2],
        fpn_hidden_size=hidden,
    )
    images = Sam2ImageProcessor(
        size={"height": size, "width": size}, mask_size={"height": size // 4, "width": size // 4}
    )
    configs = {
        "vision_config": vision,
        "prompt_encoder_config": prompt,
        "mask_decoder_config": decoder,
        "image_size": size,
    }
    return configs, images


def clip_text(tiny: bool) -> tuple[Any, Any]:
    """CLIP-L's text encoder (FLUX's and Stable Diffusion's first), or a tiny one: tokenizer and model."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab = _byte_vocab(["<|startoftext|>", "<|endoftext|>"])
    vocab.update({f"{char}</w>": len(vocab) + i for i, char in enumerate(list(vocab)[2:])})
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    if tiny:
        size = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}
    else:
        size = {
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
        }
    config = CLIPTextConfig(
        vocab_size=49408,
        projection_dim=size["hidden_size"],
        max_position_embeddings=77,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        **size,
    )
    return tokenizer, CLIPTextModel(config).eval()


def flux_fill(on: str, dtype: Any, tiny: bool) -> Any:
    """FLUX.1-Fill-dev (the 11.9 B DiT with 384 input channels, CLIP-L, the T5-XXL encoder, the FLUX VAE),
    or a tiny one: a FluxFillPipeline with its seven components, built on `on` in `dtype`."""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxFillPipeline,
        FluxTransformer2DModel,
    )
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(char, -3.0) for char in string.ascii_letters + string.digits]
    t5_tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0)
    if tiny:
        t5_size = {"d_model": 32, "d_kv": 8, "d_ff": 37, "num_layers": 2, "num_heads": 4}
        vae_size = {
            "block_out_channels": [8, 16],
            "layers_per_block": 1,
            "latent_channels": 4,
            "norm_num_groups": 4,
        }
        # Fill's input: packed noise latents (4 x 2x2), packed masked-image latents (16), packed mask (16).
        dit = {
            "in_channels": 48,
            "out_channels": 16,
            "num_layers": 1,
            "num_single_layers": 1,
            "attention_head_dim": 16,
            "num_attention_heads": 2,
            "joint_attention_dim": 32,
            "pooled_projection_dim": 32,
            "axes_dims_rope": [4, 6, 6],
        }
        sample_size = 64  # the canvas the tiny inpainter paints at
    else:
        t5_size = {
            "d_model": 4096,
            "d_kv": 64,
            "d_ff": 10240,
            "num_layers": 24,
            "num_heads": 64,
            "feed_forward_proj": "gated-gelu",
        }
        vae_size = {
            "block_out_channels": [128, 256, 512, 512],
            "layers_per_block": 2,
            "latent_channels": 16,
            "norm_num_groups": 32,
        }
        dit = {
            "in_channels": 384,
            "out_channels": 64,
            "num_layers": 19,
            "num_single_layers": 38,
            "attention_head_dim": 128,
            "num_attention_heads": 24,
            "joint_attention_dim": 4096,
            "pooled_projection_dim": 768,
            "axes_dims_rope": [16, 56, 56],
        }
        sample_size = 1024
    blocks = len(vae_size["block_out_channels"])
    with built_on(on, dtype):
        clip_tokenizer, clip = clip_text(tiny)
        t5 = T5EncoderModel(T5Config(vocab_size=32128, **t5_size))
        vae = AutoencoderKL(
            down_block_types=["DownEncoderBlock2D"] * blocks,
            up_block_types=["UpDecoderBlock2D"] * blocks,
            sample_size=sample_size,
            scaling_factor=0.3611,
            shift_factor=0.1159,
            use_quant_conv=False,
            use_post_quant_conv=False,
            **vae_size,
        )
        transformer = FluxTransformer2DModel(patch_size=1, guidance_embeds=True, **dit)
    pipe = FluxFillPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True),
        vae=vae.eval(),
        text_encoder=clip,
        tokenizer=clip_tokenizer,
        text_encoder_2=t5.eval(),
        tokenizer_2=t5_tokenizer,
        transformer=transformer.eval(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
