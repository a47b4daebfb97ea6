"""Frozen Linears stored in float8: the LoRA trainer's base (the reference's `--fp8_base`) and the sampler's
fp8 matmuls.

Each frozen `nn.Linear` of the DiT blocks keeps its weight as float8_e4m3fn with one fp32 scale per output
row (amax / 448, the largest e4m3 value).
- `Fp8Linear` (training) dequantises the weight per call to the compute dtype. Its backward dequantises
  again instead of saving a bf16 copy, so the base costs 1 byte per parameter with or without gradient
  checkpointing. Only the input gradient is computed.
- `Fp8MatmulLinear` (inference) also scales each input row into fp8 and multiplies the two fp8 operands
  with `torch._scaled_mm` (cuBLAS, per-row scales, Hopper and newer; other devices compute the same
  product from the same fp8 operands in fp32). These are plain torch ops, so
  torch.compile fuses the input quantisation into the kernel before it, with no tensor subclass to trace.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

E4M3_MAX = torch.finfo(torch.float8_e4m3fn).max  # 448


def quantize(x: torch.Tensor, amax: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float8 codes of x and the fp32 scale (amax / 448, broadcast against x) with codes * scale ≈ x."""
    # an all-zero amax keeps a tiny scale instead of dividing by zero; its codes are zero anyway
    scale = amax.detach().float().clamp(min=1e-12) / E4M3_MAX
    return (x.float() / scale).to(torch.float8_e4m3fn), scale


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float8 codes of a 2-D tensor and its per-row fp32 scales ([rows, 1])."""
    return quantize(x, x.abs().amax(dim=1, keepdim=True))


def scaled_linear(
    x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """x @ (weight * scale)ᵀ + bias with both operands in fp8: x's rows are scaled per call."""
    rows, row_scale = quantize_rows(x.reshape(-1, x.shape[-1]))
    if rows.device.type == "cuda":
        # fast accumulation (no periodic promotion to fp32 in the tensor cores), as in torchao's fp8 inference
        fused = None if x.dtype == torch.float32 else bias  # cuBLAS takes no bias with an fp32 output
        out = torch._scaled_mm(
            rows, weight.t(), row_scale, scale[None, :], bias=fused, out_dtype=x.dtype, use_fast_accum=True
        )
        out = out if fused is not None or bias is None else out + bias
    else:  # the same product in fp32: CPU _scaled_mm takes per-row scales only from torch 2.13 on
        out = (rows.float() * row_scale) @ (weight.float() * scale[:, None]).T
        out = (out if bias is None else out + bias.float()).to(x.dtype)
    return out.reshape(*x.shape[:-1], weight.shape[0])


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
        codes, scale = quantize_rows(linear.weight)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        # Parameters (frozen), not buffers, so that parameter counts and `.to()` treat them as weights
        self.weight = nn.Parameter(codes, requires_grad=False)
        self.scale = nn.Parameter(scale[:, 0], requires_grad=False)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
        bias = None if self.bias is None else self.bias.to(dtype)
        return _Fp8Matmul.apply(x.to(dtype), self.weight, self.scale, bias)

    def extra_repr(self) -> str:
        bias = self.bias is not None
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={bias}"


class Fp8MatmulLinear(Fp8Linear):
    """An `Fp8Linear` whose matmul runs in fp8 (inference only: it has no backward)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return scaled_linear(x, self.weight, self.scale, bias)


def fp8_linears(root: nn.Module, cls: type[Fp8Linear] = Fp8Linear) -> int:
    """Replace every frozen `nn.Linear` under `root` by `cls`; returns how many."""
    count = 0
    for parent in list(root.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear and not child.weight.requires_grad:
                setattr(parent, name, cls(child))
                count += 1
    return count


def fp8_base_linears(dit: nn.Module, cls: type[Fp8Linear] = Fp8Linear) -> int:
    """Replace every frozen Linear inside the double and single blocks by `cls`; returns how many.

    For LoRA, run after the adapters are added: peft's `base_layer`s are then the frozen Linears, and the
    trainable lora_A / lora_B Linears stay as they are.
    """
    return sum(fp8_linears(blocks, cls) for blocks in (dit.transformer_blocks, dit.single_transformer_blocks))
