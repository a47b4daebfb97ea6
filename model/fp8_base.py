"""Frozen base Linears stored in float8 for LoRA training (the reference's `--fp8_base`).

Each frozen `nn.Linear` of the DiT blocks becomes an `Fp8Linear`: the weight as float8_e4m3fn with one fp32
scale per output row (amax / 448, the largest e4m3 value), dequantised per call to the compute dtype. Its
backward dequantises again instead of saving a bf16 copy, so the base costs 1 byte per parameter with or
without gradient checkpointing. The base is frozen: only the input gradient is computed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

E4M3_MAX = torch.finfo(torch.float8_e4m3fn).max  # 448


def dequantize(weight: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    # the product in fp32 rounds once to the compute dtype; under torch.compile it fuses into one kernel
    return (weight.float() * scale[:, None]).to(dtype)


class _Fp8Matmul(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        ctx.save_for_backward(weight, scale)  # the fp8 codes, not the dequantised weight
        return F.linear(x, dequantize(weight, scale, x.dtype), bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        weight, scale = ctx.saved_tensors
        return grad @ dequantize(weight, scale, grad.dtype), None, None, None


class Fp8Linear(nn.Module):
    """A frozen Linear with a float8_e4m3fn weight and a per-output-row scale."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        w = linear.weight.detach().float()
        # an all-zero row keeps a tiny scale instead of dividing by zero; its codes are zero anyway
        scale = w.abs().amax(dim=1).clamp(min=1e-12) / E4M3_MAX
        self.in_features, self.out_features = linear.in_features, linear.out_features
        # Parameters (frozen), not buffers, so that parameter counts and `.to()` treat them as weights
        self.weight = nn.Parameter((w / scale[:, None]).to(torch.float8_e4m3fn), requires_grad=False)
        self.scale = nn.Parameter(scale, requires_grad=False)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
        bias = None if self.bias is None else self.bias.to(dtype)
        return _Fp8Matmul.apply(x.to(dtype), self.weight, self.scale, bias)

    def extra_repr(self) -> str:
        bias = self.bias is not None
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={bias}"


def fp8_base_linears(dit: nn.Module) -> int:
    """Replace every frozen Linear inside the double and single blocks by an `Fp8Linear`; returns how many.

    Run after the LoRA adapters are added: peft's `base_layer`s are then the frozen Linears, and the
    trainable lora_A / lora_B Linears stay as they are.
    """
    count = 0
    for blocks in (dit.transformer_blocks, dit.single_transformer_blocks):
        for parent in list(blocks.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is nn.Linear and not child.weight.requires_grad:
                    setattr(parent, name, Fp8Linear(child))
                    count += 1
    return count
