"""Key conversion from the official Step1X-Edit checkpoint layout to `Step1XEditTransformer`.

The official names are the BFL FLUX module names plus `connector.*` (HunyuanVideo's refiner); both map onto
diffusers modules. Widths are read from the tensors, so the same conversion serves full-size and tiny test
checkpoints (diffusers' own FLUX converter hard-codes width 3072).
"""

from __future__ import annotations

import re

import torch

# (official suffix, diffusers suffix) for tensors that are only renamed. Each entry covers .weight and .bias.
_TOP_LEVEL = {
    "img_in": "x_embedder",
    "txt_in": "context_embedder",
    "time_in.in_layer": "time_text_embed.timestep_embedder.linear_1",
    "time_in.out_layer": "time_text_embed.timestep_embedder.linear_2",
    "vector_in.in_layer": "time_text_embed.text_embedder.linear_1",
    "vector_in.out_layer": "time_text_embed.text_embedder.linear_2",
    "final_layer.linear": "proj_out",
}
_DOUBLE = {
    "img_mod.lin": "norm1.linear",
    "txt_mod.lin": "norm1_context.linear",
    "img_attn.proj": "attn.to_out.0",
    "txt_attn.proj": "attn.to_add_out",
    "img_mlp.0": "ff.net.0.proj",
    "img_mlp.2": "ff.net.2",
    "txt_mlp.0": "ff_context.net.0.proj",
    "txt_mlp.2": "ff_context.net.2",
    "img_attn.norm.query_norm.scale": "attn.norm_q.weight",
    "img_attn.norm.key_norm.scale": "attn.norm_k.weight",
    "txt_attn.norm.query_norm.scale": "attn.norm_added_q.weight",
    "txt_attn.norm.key_norm.scale": "attn.norm_added_k.weight",
}
_SINGLE = {
    "modulation.lin": "norm.linear",
    "linear2": "proj_out",
    "norm.query_norm.scale": "attn.norm_q.weight",
    "norm.key_norm.scale": "attn.norm_k.weight",
}
# Connector renames, applied in order to the part after `connector.S.` (verified.md).
_REFINER = [
    ("individual_token_refiner.blocks.", "token_refiner.refiner_blocks."),
    ("adaLN_modulation.1", "norm_out.linear"),
    ("t_embedder.mlp.0", "time_text_embed.timestep_embedder.linear_1"),
    ("t_embedder.mlp.2", "time_text_embed.timestep_embedder.linear_2"),
    ("c_embedder", "time_text_embed.text_embedder"),
    ("mlp.fc1", "ff.net.0.proj"),
    ("mlp.fc2", "ff.net.2"),
    ("self_attn_proj", "attn.to_out.0"),
    ("input_embedder", "proj_in"),
]


def _swap_shift_scale(t: torch.Tensor) -> torch.Tensor:
    # BFL's final adaLN emits (shift, scale); diffusers' AdaLayerNormContinuous expects (scale, shift).
    shift, scale = t.chunk(2, dim=0)
    return torch.cat([scale, shift], dim=0)


def _rename(name: str, table: dict[str, str]) -> str | None:
    for old, new in table.items():
        if name == old or name.startswith(old + "."):
            if old.endswith(".scale"):
                return new
            return new + name[len(old) :]
    return None


def convert_official_state_dict(official: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official Step1X-Edit keys (v1.0 or v1.1) -> `Step1XEditTransformer` keys.

    Raises KeyError naming every official key that no rule covers, so a layout change cannot load silently.
    """
    src = {k.removeprefix("model.diffusion_model."): v for k, v in official.items()}
    inner = src["img_in.weight"].shape[0]
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, tensor in src.items():
        if key.startswith("connector."):
            _convert_connector_key(key.removeprefix("connector."), tensor, out, unknown)
            continue
        if key.startswith("final_layer.adaLN_modulation.1."):
            out["dit.norm_out.linear." + key.rsplit(".", 1)[1]] = _swap_shift_scale(tensor)
            continue
        m = re.fullmatch(r"double_blocks\.(\d+)\.(.+)", key)
        if m:
            i, rest = m.groups()
            prefix = f"dit.transformer_blocks.{i}."
            qkv = re.fullmatch(r"(img|txt)_attn\.qkv\.(weight|bias)", rest)
            if qkv:
                stream, kind = qkv.groups()
                names = (
                    ("to_q", "to_k", "to_v")
                    if stream == "img"
                    else ("add_q_proj", "add_k_proj", "add_v_proj")
                )
                for name, part in zip(names, tensor.chunk(3, dim=0), strict=True):
                    out[f"{prefix}attn.{name}.{kind}"] = part
                continue
            new = _rename(rest, _DOUBLE)
        elif m := re.fullmatch(r"single_blocks\.(\d+)\.(.+)", key):
            i, rest = m.groups()
            prefix = f"dit.single_transformer_blocks.{i}."
            lin1 = re.fullmatch(r"linear1\.(weight|bias)", rest)
            if lin1:
                # linear1 = [q | k | v | mlp_in] along the output dim.
                q, k, v, mlp = tensor.split([inner, inner, inner, tensor.shape[0] - 3 * inner], dim=0)
                kind = lin1.group(1)
                for name, part in (("attn.to_q", q), ("attn.to_k", k), ("attn.to_v", v), ("proj_mlp", mlp)):
                    out[f"{prefix}{name}.{kind}"] = part
                continue
            new = _rename(rest, _SINGLE)
        else:
            prefix = "dit."
            new = _rename(key, _TOP_LEVEL)
        if new is None:
            unknown.append(key)
        else:
            out[prefix + new] = tensor
    if unknown:
        raise KeyError(f"official checkpoint keys with no conversion rule: {unknown[:20]}")
    return out


def _convert_connector_key(
    key: str, tensor: torch.Tensor, out: dict[str, torch.Tensor], unknown: list[str]
) -> None:
    if key in ("global_proj_out.weight", "global_proj_out.bias", "scale_factor"):
        out["connector." + key] = tensor
        return
    if not key.startswith("S."):
        unknown.append("connector." + key)
        return
    rest = key.removeprefix("S.")
    qkv = re.fullmatch(r"individual_token_refiner\.blocks\.(\d+)\.self_attn_qkv\.(weight|bias)", rest)
    if qkv:
        i, kind = qkv.groups()
        for name, part in zip(("to_q", "to_k", "to_v"), tensor.chunk(3, dim=0), strict=True):
            out[f"connector.refiner.token_refiner.refiner_blocks.{i}.attn.{name}.{kind}"] = part
        return
    for old, new in _REFINER:
        rest = rest.replace(old, new)
    out["connector.refiner." + rest] = tensor
