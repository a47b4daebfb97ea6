"""The sampler's fp8 paths: fp8 matmul Linears and fp8 attention, on the CPU with the tiny model (the
attention through the op's fp32 CPU kernel), and on a Hopper GPU: cuDNN and cuBLAS against the CPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from model.fp8_attention import Fp8AttnProcessor, quantize_per_tensor, sdpa_fp8, use_fp8_attention
from model.fp8_base import Fp8Linear, Fp8MatmulLinear, quantize_rows
from model.mllm import Step1XMLLMEncoder
from model.sampler import Step1XEditPipeline
from model.tiny import byte_tokenizer, tiny_qwen, tiny_transformer, tiny_vae

PHOTO = "examples/photos/chelsea.png"


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def linear_and_input(fan_in: int, fan_out: int, shape: tuple[int, ...], seed: int) -> tuple:
    """A frozen bf16 Linear, its `Fp8MatmulLinear`, and a bf16 input of `shape` + (fan_in,)."""
    torch.manual_seed(seed)
    lin = nn.Linear(fan_in, fan_out).to(torch.bfloat16).requires_grad_(False)
    return lin, Fp8MatmulLinear(lin), torch.randn(*shape, fan_in).to(torch.bfloat16)


def test_fp8_matmul_linear_is_the_product_of_the_fp8_operands() -> None:
    lin, fp8, x = linear_and_input(64, 48, (3, 5), seed=0)
    y = fp8(x)
    assert y.shape == (3, 5, 48) and y.dtype == torch.bfloat16
    codes, scales = quantize_rows(x.reshape(-1, 64))
    assert codes.dtype == torch.float8_e4m3fn and codes.float().abs().amax(dim=1).eq(448).all()
    expected = (codes.float() * scales) @ (fp8.weight.float() * fp8.scale[:, None]).T + lin.bias.float()
    torch.testing.assert_close(y.reshape(-1, 48).float(), expected, rtol=1e-2, atol=1e-2)  # bf16 output
    assert 0 < rel(y, lin(x)) < 0.06  # lossy, within e4m3's 3 mantissa bits on both operands
    assert fp8.weight.dtype == torch.float8_e4m3fn


def test_quantize_per_tensor_round_trips_within_e4m3() -> None:
    x = torch.randn(2, 7, 3, 16, generator=torch.Generator().manual_seed(1)) * 5
    codes, descale = quantize_per_tensor(x)
    assert codes.dtype == torch.float8_e4m3fn and descale.shape == (1, 1, 1, 1)
    assert codes.float().abs().max() == 448
    back = codes.float() * descale
    assert ((back - x).abs() <= x.abs() / 16 + descale * 2.0**-9).all()


def test_sdpa_fp8_cpu_kernel_matches_sdpa() -> None:
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 40, 3, 16, generator=gen).to(torch.bfloat16) for _ in range(3))
    out = sdpa_fp8(q, k, v)
    ref = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(
        1, 2
    )
    assert out.shape == q.shape and out.dtype == torch.bfloat16
    assert 0 < rel(out, ref) < 0.1


def test_fp8_attention_processor_matches_flux_attention_in_the_dit() -> None:
    model = tiny_transformer(seed=3).eval()
    gen = torch.Generator().manual_seed(3)
    grid = (3, 4)
    n = grid[0] * grid[1]
    inputs = (
        torch.randn(2, n, 16, generator=gen),
        torch.randn(2, n, 16, generator=gen),
        torch.randn(2, 5, 32, generator=gen),
        torch.ones(2, 5, dtype=torch.long),
        torch.tensor([0.7, 0.3]),
        grid,
    )
    with torch.no_grad():
        ref = model(*inputs)
        assert use_fp8_attention(model.dit) == 3  # 1 double + 2 single blocks
        assert all(
            isinstance(b.attn.processor, Fp8AttnProcessor) for b in model.dit.single_transformer_blocks
        )
        out = model(*inputs)
    assert out.shape == ref.shape and 0 < rel(out, ref) < 0.1
    block = model.dit.single_transformer_blocks[0]
    with pytest.raises(ValueError, match="no mask"):
        block.attn.processor(block.attn, torch.randn(1, 4, 32), attention_mask=torch.ones(1, 4, 4))


def test_sampler_fp8_matmul_and_attention_stay_close_to_bf16() -> None:
    photo = Image.open(PHOTO)

    def build() -> Step1XEditPipeline:
        encoder = Step1XMLLMEncoder(tiny_qwen(), byte_tokenizer())
        return Step1XEditPipeline.from_parts(tiny_transformer("v1.1"), tiny_vae(), encoder)

    def edit(fp8: bool) -> torch.Tensor:
        sampler = build()
        if fp8:
            sampler.quantize_fp8(encoder=True, dit="matmul")
            sampler.use_fp8_attention()
            assert isinstance(sampler.transformer.dit.transformer_blocks[0].attn.to_q, Fp8MatmulLinear)
            linears = [
                type(m) for m in sampler.encoder.model.modules() if isinstance(m, nn.Linear | Fp8Linear)
            ]
            assert linears and set(linears) == {Fp8Linear}  # weight-only fp8 throughout the MLLM
        return sampler.edit([photo], ["make it blue"], size_level=48, num_steps=3, seed=5).latents[0]

    bf16, fp8 = edit(False), edit(True)
    assert torch.isfinite(fp8).all() and 0 < rel(fp8, bf16) < 0.1
    with pytest.raises(ValueError, match="fp8 mode 'int8'"):
        build().quantize_fp8(dit="int8")


cuda_cudnn = pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.get_device_capability() < (9, 0),
    reason="cuDNN's fp8 attention needs a Hopper-class GPU",
)


@cuda_cudnn
def test_cudnn_fp8_attention_matches_its_fp32_reference_on_gpu() -> None:
    pytest.importorskip("cudnn")
    gen = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(2, 333, 4, 128, generator=gen).to(torch.bfloat16) for _ in range(3))
    (qc, dq), (kc, dk), (vc, dv) = (quantize_per_tensor(t) for t in (q, k, v))
    args = (qc, kc, vc, dq, dk, dv, 128**-0.5)
    cpu = torch.ops.step1x.cudnn_sdpa_fp8(*args).float() * dv
    gpu = torch.ops.step1x.cudnn_sdpa_fp8(*(a.cuda() if torch.is_tensor(a) else a for a in args))
    assert gpu.dtype == torch.float8_e4m3fn and gpu.shape == q.shape
    # the kernel also rounds the probabilities to fp8, which the fp32 reference does not
    assert rel(gpu.float().cpu() * dv, cpu) < 0.08
    ref = F.scaled_dot_product_attention(*(t.cuda().transpose(1, 2) for t in (q, k, v))).transpose(1, 2)
    assert rel(sdpa_fp8(q.cuda(), k.cuda(), v.cuda()), ref) < 0.1
    compiled = torch.compile(sdpa_fp8, fullgraph=True)
    assert rel(compiled(q.cuda(), k.cuda(), v.cuda()), ref) < 0.1


@cuda_cudnn
def test_fp8_matmul_on_gpu_is_the_cpu_product() -> None:
    lin, fp8, x = linear_and_input(256, 128, (4, 64), seed=5)
    cpu = fp8(x)
    gpu = fp8.cuda()(x.cuda())
    assert gpu.dtype == torch.bfloat16 and rel(gpu.cpu(), cpu) < 0.01  # cuBLAS vs fp32, both from fp8
    assert rel(torch.compile(fp8, fullgraph=True)(x.cuda()).cpu(), cpu) < 0.01
    fp32 = Fp8MatmulLinear(lin.float())  # cuBLAS takes no bias with an fp32 output: it is added after
    cpu = fp32(x.float())
    assert rel(fp32.cuda()(x.float().cuda()).cpu(), cpu) < 0.01
