"""fp8 base weights for LoRA training on the tiny model, CPU: a converted Linear equals the matmul with its
dequantised weight, which is within e4m3 rounding of the original; input gradients match; autocast and
torch.compile work; the blocks' base weights take about half the bytes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from model.fp8_base import Fp8Linear, dequantize
from model.tiny import tiny_transformer
from model.train import TrainConfig, add_lora, check_config


def bf16_linear(seed: int = 0) -> nn.Linear:
    """A Linear of the tiny DiT's single block (proj_out: 160 -> 32, with bias), in bf16 and frozen."""
    block = tiny_transformer(seed=seed).dit.single_transformer_blocks[0]
    return block.proj_out.to(torch.bfloat16).requires_grad_(False)


def test_weight_is_e4m3_with_row_scales() -> None:
    lin = bf16_linear()
    fp8 = Fp8Linear(lin)
    assert fp8.weight.dtype == torch.float8_e4m3fn and fp8.scale.shape == (lin.out_features,)
    assert torch.equal(fp8.weight.float().abs().amax(dim=1), torch.full((lin.out_features,), 448.0))
    w = lin.weight.float()
    deq = dequantize(fp8.weight, fp8.scale, torch.float32)
    # e4m3 keeps 3 mantissa bits: a relative error of at most 2^-4, plus half a subnormal step near zero
    bound = w.abs() / 16 + fp8.scale[:, None] * 2.0**-10
    assert ((deq - w).abs() <= bound).all()
    assert (deq != w).any()


def test_forward_and_input_gradient_match_bf16() -> None:
    lin = bf16_linear()
    fp8 = Fp8Linear(lin)
    x = torch.randn(3, 7, lin.in_features, dtype=torch.bfloat16, generator=torch.Generator().manual_seed(1))
    x8, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y8, yb = fp8(x8), lin(xb)
    g = torch.randn_like(yb)
    (y8 * g).sum().backward()
    (yb * g).sum().backward()
    assert y8.dtype == torch.bfloat16 and x8.grad.dtype == torch.bfloat16
    # exactly the bf16 matmul with the dequantised weight ...
    w = dequantize(fp8.weight, fp8.scale, torch.bfloat16)
    torch.testing.assert_close(y8, F.linear(x, w, lin.bias), rtol=0, atol=0)
    torch.testing.assert_close(x8.grad, g @ w, rtol=0, atol=0)

    # ... and within fp8 rounding of the bf16 layer
    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return ((a.float() - b.float()).norm() / b.float().norm()).item()

    assert rel(y8, yb) < 0.05 and rel(x8.grad, xb.grad) < 0.05
    assert fp8.weight.grad is None and fp8.scale.grad is None  # the base stays frozen


def test_autocast_and_compile() -> None:
    fp8 = Fp8Linear(bf16_linear())
    x = torch.randn(5, fp8.in_features, requires_grad=True)  # fp32 activations, bf16 autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        eager = fp8(x)
    assert eager.dtype == torch.bfloat16
    eager.float().square().sum().backward()
    grad, x.grad = x.grad.clone(), None
    assert grad.dtype == torch.float32
    compiled = torch.compile(fp8, fullgraph=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = compiled(x)
    out.float().square().sum().backward()
    torch.testing.assert_close(out, eager)
    torch.testing.assert_close(x.grad, grad)


def test_add_lora_converts_the_blocks_base_linears() -> None:
    models = {}
    for fp8 in (False, True):
        models[fp8] = tiny_transformer(seed=2).to(torch.bfloat16)  # same weights and LoRA init both times
        add_lora(models[fp8], TrainConfig(lora_rank=4, lora_alpha=4, fp8_base=fp8))

    def blocks(model: nn.Module) -> list[nn.Module]:
        return [*model.dit.transformer_blocks, *model.dit.single_transformer_blocks]

    def base_bytes(model: nn.Module) -> int:
        frozen = [p for b in blocks(model) for p in b.parameters() if not p.requires_grad]
        return sum(p.numel() * p.element_size() for p in frozen)

    def modules(model: nn.Module, kind: type) -> list[nn.Module]:
        return [m for b in blocks(model) for m in b.modules() if type(m) is kind]

    frozen = [m for m in modules(models[False], nn.Linear) if not m.weight.requires_grad]
    assert len(modules(models[True], Fp8Linear)) == len(frozen) > 0
    assert all(m.weight.requires_grad for m in modules(models[True], nn.Linear))  # only LoRA's are left
    # 1 byte per weight instead of 2; the per-row fp32 scales and bf16 biases add a few % at 32 wide
    assert 0.5 < base_bytes(models[True]) / base_bytes(models[False]) < 0.6
    lora = [{n: p for n, p in m.named_parameters() if p.requires_grad} for m in models.values()]
    assert lora[0].keys() == lora[1].keys() and all(torch.equal(lora[0][n], lora[1][n]) for n in lora[0])
    assert all(p.dtype == torch.float32 for p in lora[1].values())


def test_fp8_and_bf16_lora_need_lora_mode() -> None:
    with pytest.raises(ValueError, match="fp8_base .* needs mode lora"):
        check_config(TrainConfig(mode="full", fp8_base=True))
    with pytest.raises(ValueError, match="lora_dtype .* needs mode lora"):
        check_config(TrainConfig(mode="full", lora_dtype="bf16"))
    with pytest.raises(ValueError, match="lora_dtype must be one of"):
        check_config(TrainConfig(lora_dtype="fp16"))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        check_config(TrainConfig(optimizer="adam8bit"))
    check_config(TrainConfig(fp8_base=True, lora_dtype="bf16", optimizer="adamw8bit"))
