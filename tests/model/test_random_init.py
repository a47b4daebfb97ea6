"""`--init random`: the full-size models with random weights, built where asked. Built on the meta device
here (no memory): the released shapes and dtypes, and the parameter counts they imply."""

from __future__ import annotations

import torch

from model.random_init import random_transformer
from model.tiny import TINY_TRANSFORMER
from model.train import TrainConfig, build_models


def test_full_size_models_have_the_released_shapes() -> None:
    cfg = TrainConfig(init="random", mode="full")
    transformer, vae, encoder = build_models(cfg, torch.device("meta"))
    count = sum(p.numel() for p in transformer.parameters())
    assert 12.3e9 < count < 12.5e9, count  # the 12.4 B trainable parameters of full fine-tuning
    assert {p.device.type for p in transformer.parameters()} == {"meta"}
    assert {p.dtype for p in transformer.parameters()} == {torch.float32}  # fp32 master weights
    dit = transformer.dit
    assert len(dit.transformer_blocks) == 19 and len(dit.single_transformer_blocks) == 38
    # Qwen2.5-VL-7B-Instruct's 8.29 B less its untied output head (152064 x 3584: 0.545 B), which the
    # config here ties to the embeddings (the encoder never uses the head)
    qwen = sum(p.numel() for p in encoder.model.parameters())
    assert abs(qwen - (8.292e9 - 0.545e9)) < 0.01e9, qwen
    assert next(encoder.model.parameters()).dtype == torch.bfloat16
    assert vae.config.latent_channels == 16 and next(vae.parameters()).dtype == torch.float32
    # a LoRA run keeps its frozen base in bf16
    lora = build_models(TrainConfig(init="random"), torch.device("meta"))[0]
    assert next(lora.parameters()).dtype == torch.bfloat16


def test_random_weights_are_seeded_and_the_default_dtype_restored() -> None:
    a = random_transformer("v1.1", "cpu", torch.bfloat16, seed=3, **TINY_TRANSFORMER)
    b = random_transformer("v1.1", "cpu", torch.bfloat16, seed=3, **TINY_TRANSFORMER)
    c = random_transformer("v1.1", "cpu", torch.bfloat16, seed=4, **TINY_TRANSFORMER)
    assert torch.get_default_dtype() == torch.float32
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))
    assert {p.dtype for p in a.parameters()} == {torch.bfloat16}
