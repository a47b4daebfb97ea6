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


# ---- upstream's diffusers layout (stepfun-ai/Step1X-Edit-v1p1-diffusers, class Step1XEditTransformer2DModel)
#
# Its DiT tensors carry diffusers' FLUX names except the two embedders, and its connector keeps the official
# names. Our Step1XEditTransformer nests the FLUX DiT under `dit.` and the refiner under `connector.refiner.`.
DIFFUSERS_CLASS = "Step1XEditTransformer2DModel"
_DIFFUSERS_EMBEDDERS = {
    "time_embed.in_layer": "time_text_embed.timestep_embedder.linear_1",
    "time_embed.out_layer": "time_text_embed.timestep_embedder.linear_2",
    "vec_embed.in_layer": "time_text_embed.text_embedder.linear_1",
    "vec_embed.out_layer": "time_text_embed.text_embedder.linear_2",
}


def from_diffusers_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """upstream diffusers-layout transformer keys -> `Step1XEditTransformer` keys."""
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, tensor in state.items():
        if key.startswith("connector."):
            _convert_connector_key(key.removeprefix("connector."), tensor, out, unknown)
        elif key.startswith("text_token_mapping."):
            unknown.append(key)
        else:
            out["dit." + (_rename(key, _DIFFUSERS_EMBEDDERS) or key)] = tensor
    if unknown:
        raise KeyError(f"diffusers-layout Step1X-Edit keys this model does not have: {unknown[:20]}")
    return out


def to_diffusers_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`Step1XEditTransformer` keys -> upstream's diffusers layout (from_diffusers_state_dict's inverse)."""
    embedders = {new: old for old, new in _DIFFUSERS_EMBEDDERS.items()}
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}  # the refiner's q, k, v parts of each fused official tensor
    for key, tensor in state.items():
        if key.startswith("dit."):
            rest = key.removeprefix("dit.")
            out[_rename(rest, embedders) or rest] = tensor
        elif key.startswith("connector.refiner."):
            rest = key.removeprefix("connector.refiner.")
            m = re.fullmatch(r"token_refiner\.refiner_blocks\.(\d+)\.attn\.to_([qkv])\.(weight|bias)", rest)
            if m:
                i, part, kind = m.groups()
                qkv.setdefault(f"connector.S.individual_token_refiner.blocks.{i}.self_attn_qkv.{kind}", {})[
                    part
                ] = tensor
                continue
            for old, new in reversed(_REFINER):
                rest = rest.replace(new, old)
            out["connector.S." + rest] = tensor
        else:  # connector.global_proj_out.*, connector.scale_factor
            out[key] = tensor
    for key, parts in qkv.items():
        out[key] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out


def from_diffusers_config(config: dict) -> dict:
    """upstream's Step1XEditTransformer2DModel config -> `Step1XEditTransformer` arguments.

    Fields upstream's class has and this model does not support (a text-token mapping, guidance
    embeddings, patches other than 1) are refused by name. Our extra fields (the v1.0 scale factor, the
    reference ids) are read when present; upstream's layout is v1.1 otherwise.
    """
    unsupported = {
        "patch_size": 1,
        "guidance_embeds": False,
        "enable_text_token_mapping": False,
        "timestep_in_dim": 256,
    }
    for name, supported in unsupported.items():
        if config.get(name, supported) != supported:
            raise ValueError(f"Step1X-Edit transformer config {name}={config[name]!r} is not supported")
    if config.get("out_channels") not in (None, config["in_channels"]):
        raise ValueError("Step1X-Edit transformer config: out_channels must equal in_channels")
    heads = config.get("connector_heads_num", 32)
    args = {
        "in_channels": config["in_channels"],
        "num_layers": config["num_layers"],
        "num_single_layers": config["num_single_layers"],
        "attention_head_dim": config["attention_head_dim"],
        "num_attention_heads": config["num_attention_heads"],
        "joint_attention_dim": config["joint_attention_dim"],
        "pooled_projection_dim": config.get("vector_in_dim", 768),
        "axes_dims_rope": tuple(config["axes_dims_rope"]),
        "mllm_hidden_size": config.get("connector_in_channels", 3584),
        "connector_num_attention_heads": heads,
        "connector_attention_head_dim": config.get("connector_hidden_size", 4096) // heads,
        "connector_num_layers": config.get("connector_depth", 2),
    }
    for extra in ("connector_scale_factor", "reference_id_offset"):
        if extra in config:
            args[extra] = tuple(config[extra]) if extra == "reference_id_offset" else config[extra]
    return args


def to_diffusers_config(config: dict) -> dict:
    """`Step1XEditTransformer` config -> upstream's Step1XEditTransformer2DModel config, plus our fields."""
    return {
        "_class_name": DIFFUSERS_CLASS,
        "patch_size": 1,
        "in_channels": config["in_channels"],
        "out_channels": None,
        "num_layers": config["num_layers"],
        "num_single_layers": config["num_single_layers"],
        "attention_head_dim": config["attention_head_dim"],
        "num_attention_heads": config["num_attention_heads"],
        "joint_attention_dim": config["joint_attention_dim"],
        "timestep_in_dim": 256,
        "vector_in_dim": config["pooled_projection_dim"],
        "connector_in_channels": config["mllm_hidden_size"],
        "connector_hidden_size": config["joint_attention_dim"],  # the refiner's width (checked at init)
        "connector_heads_num": config["connector_num_attention_heads"],
        "connector_depth": config["connector_num_layers"],
        "guidance_embeds": False,
        "axes_dims_rope": list(config["axes_dims_rope"]),
        "enable_text_token_mapping": False,
        # not in upstream's class (its loader ignores them): v1.0 checkpoints need both
        "connector_scale_factor": config["connector_scale_factor"],
        "reference_id_offset": list(config["reference_id_offset"]),
    }
