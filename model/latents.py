"""The FLUX autoencoder configuration, latent normalisation, 2x2 token packing and RoPE position ids."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import AutoencoderKL
from PIL import Image

# FLUX.1 `vae/config.json`, equal to the AutoEncoder params in Step1X-Edit's inference.py.
FLUX_VAE_CONFIG: dict = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 16,
    "norm_num_groups": 32,
    "sample_size": 1024,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "mid_block_add_attention": True,
    "force_upcast": True,
}


def image_to_pixels(image: Image.Image) -> torch.Tensor:
    """An RGB PIL image -> [3, H, W] float32 in [-1, 1], the VAE's input range.

    Computed as the reference does (torchvision's to_tensor, x / 255, then * 2 - 1), to the last bit.
    """
    return torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1) / 255 * 2 - 1


def pixels_to_uint8(pixels: torch.Tensor, truncate: bool = False) -> np.ndarray:
    """[..., 3, H, W] in [-1, 1] -> [..., H, W, 3] uint8 on the CPU.

    Rounds by default, so that `image_to_pixels` round-trips exactly. truncate=True is the reference
    sampler's conversion, (x * 0.5 + 0.5) * 255 cut towards zero (torchvision's to_pil_image), which is up
    to 1 LSB darker than rounding.
    """
    x = pixels.float().clamp(-1, 1).mul(0.5).add(0.5).mul(255)
    return (x.byte() if truncate else x.round().byte()).movedim(-3, -1).cpu().numpy()


def vae_downsample(vae: AutoencoderKL) -> int:
    """Pixels per latent cell along one side (8 for the FLUX VAE)."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def encode_images(vae: AutoencoderKL, pixels: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """pixels [B, 3, H, W] in [-1, 1] -> normalised latents [B, C, H/8, W/8].

    Step1X samples the posterior (mean + std * eps) for the reference at inference and for the training
    targets: pass eps [B, C, H/8, W/8] for that; eps=None takes the mode. The caller owns the randomness
    so that results do not depend on how items are batched.
    """
    dist = vae.encode(pixels.to(vae.dtype)).latent_dist
    z = dist.mode() if eps is None else dist.mean + dist.std * eps.to(dist.mean)
    return (z - vae.config.shift_factor) * vae.config.scaling_factor


def decode_latents(vae: AutoencoderKL, latents: torch.Tensor) -> torch.Tensor:
    """Normalised latents [B, C, h, w] -> pixels [B, 3, 8h, 8w] in [-1, 1] (clamped)."""
    z = latents.to(vae.dtype) / vae.config.scaling_factor + vae.config.shift_factor
    return vae.decode(z).sample.clamp(-1, 1)


def pack(latents: torch.Tensor) -> torch.Tensor:
    """[B, C, h, w] -> [B, (h/2)(w/2), 4C], feature index c*4 + ph*2 + pw (Step1X/FLUX packing)."""
    b, c, h, w = latents.shape
    x = latents.view(b, c, h // 2, 2, w // 2, 2)  # b c gh ph gw pw
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(tokens: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    """Inverse of `pack`: [B, grid_h*grid_w, 4C] -> [B, C, 2*grid_h, 2*grid_w]."""
    b, _, d = tokens.shape
    c = d // 4
    x = tokens.view(b, grid_h, grid_w, c, 2, 2)  # b gh gw c ph pw
    return x.permute(0, 3, 1, 4, 2, 5).reshape(b, c, grid_h * 2, grid_w * 2)


def image_ids(
    grid_h: int,
    grid_w: int,
    offset: tuple[int, int, int] = (0, 0, 0),
    device: torch.device | None = None,
) -> torch.Tensor:
    """RoPE ids [grid_h*grid_w, 3] = offset + (0, row, col) at packed-token resolution."""
    ids = torch.zeros(grid_h, grid_w, 3, device=device)
    ids[..., 1] = torch.arange(grid_h, device=device)[:, None]
    ids[..., 2] = torch.arange(grid_w, device=device)[None, :]
    return ids.reshape(grid_h * grid_w, 3) + torch.tensor(offset, dtype=ids.dtype, device=device)
