"""fp8 attention for the DiT's fp8 mode: cuDNN's fp8 SDPA (Hopper and newer) through cudnn-frontend.

In the compiled bf16 step, attention is a third of the GPU time (bench/RESULTS.md, run S4), and fp8
linear layers alone leave it untouched. Here Q, K and V are scaled per tensor into float8_e4m3fn
(amax / 448), cuDNN computes softmax(QKᵀ·d^-½)·V with fp8 tensor-core matmuls, and the output comes back
as fp8 too (Hopper's kernel writes no bf16): since each output row is a convex combination of V's rows,
|O| ≤ amax(V), so O is scaled by V's own scale and needs no measured amax. The quantisation and
dequantisation are plain torch ops, so that torch.compile fuses them into the RoPE and output-projection
kernels; only the cuDNN call is an opaque custom op.

Lossy: the bench (bench/kernels_fp8.py) reports its error against bf16 SDPA.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from diffusers.models.embeddings import apply_rotary_emb
from diffusers.models.transformers.transformer_flux import FluxAttnProcessor, _get_qkv_projections

from model.fp8_base import E4M3_MAX, quantize

E4M3 = torch.float8_e4m3fn


def _cudnn() -> Any:
    try:
        import cudnn
    except ImportError as e:
        raise ImportError("fp8 attention needs: pip install 'step1x-data[fp8-attention]'") from e
    return cudnn


def cudnn_version() -> str:
    """cuDNN's backend version as cudnn-frontend sees it (it may differ from torch's own cuDNN)."""
    return str(_cudnn().backend_version())


def quantize_per_tensor(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float8 codes and the fp32 descale (amax / 448) that turns them back into x."""
    codes, descale = quantize(x, x.abs().amax())
    return codes, descale.reshape(1, 1, 1, 1)


@functools.cache
def _handle(device: int) -> Any:
    return _cudnn().create_handle()


@functools.cache
def _fixed_operands(device: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """scale_s, descale_s and the ignored amax outputs: made once per GPU, not on every attention call."""
    # S (the unnormalised probabilities, in [0, 1]) is stored as fp8 at full scale for the P·V matmul
    scale_s = torch.full((1, 1, 1, 1), E4M3_MAX, device=f"cuda:{device}")
    return scale_s, 1.0 / scale_s, torch.empty(2, 1, 1, 1, device=f"cuda:{device}")


@functools.cache
def _graph(shape: tuple[int, ...], strides: tuple[int, ...], scale: float, device: int) -> tuple[Any, dict]:
    """The cuDNN graph for one [batch, seq, heads, dim] geometry, built once (building costs ~100 ms)."""
    cudnn = _cudnn()
    graph = cudnn.pygraph(
        io_data_type=cudnn.data_type.FP8_E4M3,
        intermediate_data_type=cudnn.data_type.FLOAT,
        compute_data_type=cudnn.data_type.FLOAT,
        handle=_handle(device),
    )
    batch, seq, heads, dim = shape
    # cuDNN's order is [batch, heads, seq, dim]; the strides keep torch's [batch, seq, heads, dim] memory
    dims, bhsd_strides = [batch, heads, seq, dim], [strides[0], strides[2], strides[1], strides[3]]
    q, k, v = (
        graph.tensor(name=n, dim=dims, stride=bhsd_strides, data_type=cudnn.data_type.FP8_E4M3) for n in "qkv"
    )
    scalars = {
        name: graph.tensor(name=name, dim=[1, 1, 1, 1], stride=[1, 1, 1, 1], data_type=cudnn.data_type.FLOAT)
        for name in ("descale_q", "descale_k", "descale_v", "descale_s", "scale_s", "scale_o")
    }
    o, _, amax_s, amax_o = graph.sdpa_fp8(q=q, k=k, v=v, **scalars, is_inference=True, attn_scale=scale)
    o.set_output(True).set_dim(dims).set_stride(bhsd_strides).set_data_type(cudnn.data_type.FP8_E4M3)
    for amax in (amax_s, amax_o):
        amax.set_output(True).set_dim([1, 1, 1, 1]).set_stride([1, 1, 1, 1]).set_data_type(
            cudnn.data_type.FLOAT
        )
    graph.validate()
    graph.build_operation_graph()
    graph.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
    graph.check_support()
    graph.build_plans()
    return graph, {"q": q, "k": k, "v": v, "o": o, "amax_s": amax_s, "amax_o": amax_o, **scalars}


@torch.library.custom_op("step1x::cudnn_sdpa_fp8", mutates_args=(), device_types="cuda")
def cudnn_sdpa_fp8(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    descale_q: torch.Tensor,
    descale_k: torch.Tensor,
    descale_v: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """fp8 [batch, seq, heads, dim] Q, K, V -> fp8 O in V's scale (O ≈ codes · descale_v)."""
    cudnn = _cudnn()
    device = q.device.index if q.device.index is not None else torch.cuda.current_device()
    graph, t = _graph(tuple(q.shape), tuple(q.stride()), scale, device)
    out = torch.empty_like(q)
    scale_s, descale_s, amax = _fixed_operands(device)
    pack = {
        t["q"]: q, t["k"]: k, t["v"]: v, t["o"]: out,
        t["descale_q"]: descale_q, t["descale_k"]: descale_k, t["descale_v"]: descale_v,
        t["descale_s"]: descale_s, t["scale_s"]: scale_s, t["scale_o"]: 1.0 / descale_v,
        t["amax_s"]: amax[0], t["amax_o"]: amax[1],
    }  # fmt: skip
    workspace = torch.empty(graph.get_workspace_size(), device=q.device, dtype=torch.uint8)
    handle = _handle(device)
    cudnn.set_stream(handle=handle, stream=torch.cuda.current_stream(q.device).cuda_stream)
    graph.execute(pack, workspace, handle=handle)
    return out


@cudnn_sdpa_fp8.register_kernel("cpu")
def _(q, k, v, descale_q, descale_k, descale_v, scale):  # noqa: ANN001, ANN202 - signature fixed by the op
    # the same op in fp32 from the same fp8 inputs, without the fp8 rounding of the probabilities that
    # cuDNN does inside: the reference the GPU test holds cuDNN to, and what the CPU tests run
    q, k, v = (x.float().transpose(1, 2) * d for x, d in ((q, descale_q), (k, descale_k), (v, descale_v)))
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=scale).transpose(1, 2)
    return (out / descale_v).to(E4M3)


@cudnn_sdpa_fp8.register_fake
def _(q, k, v, descale_q, descale_k, descale_v, scale):  # noqa: ANN001, ANN202
    return torch.empty_like(q)


def sdpa_fp8(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """softmax(QKᵀ/√d)·V on [batch, seq, heads, dim] tensors, computed in fp8; returns query's dtype."""
    (q, dq), (k, dk), (v, dv) = (quantize_per_tensor(t) for t in (query, key, value))
    out = torch.ops.step1x.cudnn_sdpa_fp8(
        q.contiguous(), k.contiguous(), v.contiguous(), dq, dk, dv, query.shape[-1] ** -0.5
    )
    return (out.float() * dv).to(query.dtype)


class Fp8AttnProcessor(FluxAttnProcessor):
    """diffusers' Flux attention with the score and value matmuls in fp8 (`sdpa_fp8`); unmasked only,
    as the Step1X DiT always is."""

    def __call__(
        self,
        attn: torch.nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if attention_mask is not None:
            raise ValueError("fp8 attention takes no mask")
        query, key, value, encoder_query, encoder_key, encoder_value = _get_qkv_projections(
            attn, hidden_states, encoder_hidden_states
        )
        query, key, value = (t.unflatten(-1, (-1, attn.head_dim)) for t in (query, key, value))
        query, key = attn.norm_q(query), attn.norm_k(key)
        if encoder_hidden_states is not None:
            encoder_query, encoder_key, encoder_value = (
                t.unflatten(-1, (-1, attn.head_dim)) for t in (encoder_query, encoder_key, encoder_value)
            )
            # text tokens first, as in FluxAttnProcessor
            query = torch.cat([attn.norm_added_q(encoder_query), query], dim=1)
            key = torch.cat([attn.norm_added_k(encoder_key), key], dim=1)
            value = torch.cat([encoder_value, value], dim=1)
        if image_rotary_emb is not None:
            query = apply_rotary_emb(query, image_rotary_emb, sequence_dim=1)
            key = apply_rotary_emb(key, image_rotary_emb, sequence_dim=1)
        out = sdpa_fp8(query, key, value).flatten(2, 3)
        if encoder_hidden_states is None:
            return out
        text, image = out.split_with_sizes([encoder_hidden_states.shape[1], hidden_states.shape[1]], dim=1)
        image = attn.to_out[1](attn.to_out[0](image.contiguous()))
        return image, attn.to_add_out(text.contiguous())


def use_fp8_attention(dit: torch.nn.Module) -> int:
    """Give every attention layer of the DiT's blocks the fp8 processor; returns how many."""
    count = 0
    for blocks in (dit.transformer_blocks, dit.single_transformer_blocks):
        for block in blocks:
            block.attn.set_processor(Fp8AttnProcessor())
            count += 1
    return count
