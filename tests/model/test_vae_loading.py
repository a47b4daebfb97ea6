"""A VAE in the LDM key layout of FLUX's ae.safetensors loads strictly into the diffusers AutoencoderKL."""

from __future__ import annotations

import re

import torch
from safetensors.torch import save_file

from model.latents import decode_latents, encode_images
from model.loading import load_flux_vae
from model.tiny import TINY_VAE, tiny_vae


def to_ldm_names(state: dict[str, torch.Tensor], n_blocks: int) -> dict[str, torch.Tensor]:
    """diffusers AutoencoderKL names -> the original LDM names used by FLUX's ae.safetensors."""
    out = {}
    for key, t in state.items():
        k = key
        k = re.sub(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)", r"encoder.down.\1.block.\2", k)
        k = re.sub(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0", r"encoder.down.\1.downsample", k)
        k = re.sub(
            r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)",
            lambda m: f"decoder.up.{n_blocks - 1 - int(m[1])}.block.{m[2]}",
            k,
        )
        k = re.sub(
            r"decoder\.up_blocks\.(\d+)\.upsamplers\.0",
            lambda m: f"decoder.up.{n_blocks - 1 - int(m[1])}.upsample",
            k,
        )
        k = re.sub(r"mid_block\.resnets\.(\d)", lambda m: f"mid.block_{int(m[1]) + 1}", k)
        k = k.replace("conv_shortcut", "nin_shortcut").replace("conv_norm_out", "norm_out")
        attn = re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)", k)
        if attn:
            part = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
            name, kind = attn[2].rsplit(".", 1)
            k = f"{attn[1]}.mid.attn_1.{part[name]}.{kind}"
            if name != "group_norm" and kind == "weight":
                t = t[:, :, None, None]  # LDM attention projections are 1x1 convolutions
        out[k] = t
    return out


def test_ldm_layout_vae_loads_and_matches(tmp_path) -> None:
    reference = tiny_vae(seed=4).eval()
    ldm = to_ldm_names(reference.state_dict(), len(TINY_VAE["block_out_channels"]))
    assert any(k.startswith("decoder.up.1.upsample") for k in ldm) and "encoder.mid.attn_1.q.weight" in ldm
    save_file({k: v.contiguous() for k, v in ldm.items()}, str(tmp_path / "vae.safetensors"))
    loaded = load_flux_vae(tmp_path / "vae.safetensors", TINY_VAE).eval()
    pixels = torch.rand(1, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        z_ref, z = encode_images(reference, pixels), encode_images(loaded, pixels)
        torch.testing.assert_close(z, z_ref)
        torch.testing.assert_close(decode_latents(loaded, z), decode_latents(reference, z_ref))
