"""CPU-offloaded gradient checkpointing gives the LoRA weights the same gradients as plain checkpointing."""

from __future__ import annotations

import pytest
import torch

from model.checkpointing import cpu_offloaded_checkpoint
from model.tiny import tiny_transformer
from model.train import TrainConfig, add_lora, check_config


def lora_grads(offload: bool) -> dict[str, torch.Tensor]:
    model = tiny_transformer("v1.1", 0)
    add_lora(model, TrainConfig(lora_rank=4, lora_alpha=4))
    with torch.no_grad():  # LoRA's B starts at zero, which would leave every A gradient zero
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))) * 0.1)
    model.enable_gradient_checkpointing(cpu_offloaded_checkpoint if offload else None)
    model.train()
    c = model.config
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 16, c.in_channels, generator=gen)
    states = torch.randn(1, 12, c.mllm_hidden_size, generator=gen)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, x, states, torch.ones(1, 12, dtype=torch.long), torch.tensor([0.5]), (4, 4))
    out.float().pow(2).mean().backward()
    return {n: p.grad for n, p in model.named_parameters() if p.requires_grad}


def test_offloaded_checkpoints_give_every_block_the_same_gradients() -> None:
    plain, offloaded = lora_grads(False), lora_grads(True)
    assert plain.keys() == offloaded.keys() and len(plain) > 0
    for name, grad in plain.items():
        assert grad.abs().sum() > 0, name  # the first block's LoRA too: the grad anchor works
        torch.testing.assert_close(offloaded[name], grad, rtol=0, atol=0)


def test_offloading_checkpoints_needs_checkpointing() -> None:
    with pytest.raises(ValueError, match="needs gradient_checkpointing"):
        check_config(TrainConfig(offload_checkpoints=True))
    check_config(TrainConfig(offload_checkpoints=True, gradient_checkpointing=True))
