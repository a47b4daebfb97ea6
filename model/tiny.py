"""Tiny random-initialised configurations of every component, and an offline byte-level tokenizer.

Used by the CPU tests, by `step1x-train --init tiny` (training from scratch) and by the benchmarks, where
no weights can be downloaded. The tokenizer maps each UTF-8 byte to one id (GPT-2 byte-to-unicode order,
so "!" is id 0 as in Qwen's vocabulary) and places the Qwen special tokens at their real ids.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from model.latents import FLUX_VAE_CONFIG
from model.transformer import Step1XEditTransformer

QWEN_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
QWEN_FIRST_SPECIAL_ID = 151643
QWEN_VOCAB_SIZE = 151936

TINY_TRANSFORMER = {
    "in_channels": 16,  # 4 latent channels x 2x2 packing
    "num_layers": 1,
    "num_single_layers": 2,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": 32,
    "pooled_projection_dim": 16,
    "axes_dims_rope": (4, 6, 6),
    "mllm_hidden_size": 32,
    "connector_num_attention_heads": 2,
    "connector_attention_head_dim": 16,
    "connector_num_layers": 1,
}
TINY_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 2,
    "up_block_types": ["UpDecoderBlock2D"] * 2,
    "block_out_channels": [8, 16],
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 4,
    "scaling_factor": FLUX_VAE_CONFIG["scaling_factor"],
    "shift_factor": FLUX_VAE_CONFIG["shift_factor"],
    "use_quant_conv": False,
    "use_post_quant_conv": False,
}


def tiny_transformer(version: str = "v1.1", seed: int = 0) -> Step1XEditTransformer:
    torch.manual_seed(seed)
    return Step1XEditTransformer.for_version(version, **TINY_TRANSFORMER)


def tiny_vae(seed: int = 0) -> AutoencoderKL:
    torch.manual_seed(seed)
    return AutoencoderKL(**TINY_VAE)


def qwen_config(hidden_size: int = 32, full_size: bool = False) -> Qwen2_5_VLConfig:
    """Qwen2.5-VL config: the 7B-Instruct dims when full_size, else a tiny one with the real vocabulary."""
    specials = {
        "image_token_id": 151655,
        "video_token_id": 151656,
        "vision_start_token_id": 151652,
        "vision_end_token_id": 151653,
    }
    if full_size:
        text = {
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "num_hidden_layers": 28,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "vocab_size": 152064,
            "rope_theta": 1e6,
            "rope_scaling": {"mrope_section": [16, 24, 24], "rope_type": "default", "type": "default"},
            "max_position_embeddings": 128000,
        }
        vision = {
            "depth": 32,
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "out_hidden_size": 3584,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [7, 15, 23, 31],
        }
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, vocab_size=152064, **specials)
    heads = 2
    text = {
        "hidden_size": hidden_size,
        "intermediate_size": 2 * hidden_size,
        "num_hidden_layers": 2,
        "num_attention_heads": heads,
        "num_key_value_heads": 1,
        "vocab_size": QWEN_VOCAB_SIZE,
        "max_position_embeddings": 2048,
        # mrope sections sum to head_dim / 2
        "rope_scaling": {"mrope_section": [2, 3, 3], "rope_type": "default", "type": "default"},
    }
    vision = {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": hidden_size,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [1],
    }
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, vocab_size=QWEN_VOCAB_SIZE, **specials)


def tiny_qwen(seed: int = 0) -> Qwen2_5_VLForConditionalGeneration:
    torch.manual_seed(seed)
    return Qwen2_5_VLForConditionalGeneration(qwen_config()).eval()


def _byte_to_unicode() -> dict[int, str]:
    # GPT-2's reversible byte -> printable character table, the alphabet of Qwen's byte-level BPE
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """One id per byte (0..255), fillers up to 151642, then the Qwen specials at 151643.. ."""
    vocab = {ch: i for i, ch in enumerate(_byte_to_unicode().values())}
    vocab.update({f"<unused_{i}>": i for i in range(256, QWEN_FIRST_SPECIAL_ID)})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok)
    fast.add_special_tokens({"additional_special_tokens": QWEN_SPECIALS})
    return fast
