"""The Step1X-Edit denoiser: connector + FLUX MMDiT with the reference latents concatenated after the target.

The DiT is diffusers' `FluxTransformer2DModel` at the Step1X configuration (FLUX.1-schnell's: no guidance
embedding); it is weight-compatible with the official checkpoint (see `model/convert.py`). Text padding is
not masked inside the DiT, matching the reference, which passes no mask to its attention kernel.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import FluxTransformer2DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from model.connector import Step1XConnector
from model.latents import image_ids

# What is added to the target's RoPE ids (0, row, col) to give the reference's, per released version. v1.0
# reuses the target ids. v1.1 starts the reference ids from ones and adds the row and column ranges
# (the reference inference.py), so a reference token at (r, c) sits at (1, r + 1, c + 1): a second "frame",
# also shifted by one token diagonally. Training a v1.1 model must use the same ids as its inference.
REFERENCE_ID_OFFSET: dict[str, tuple[int, int, int]] = {"v1.0": (0, 0, 0), "v1.1": (1, 1, 1)}


class Step1XEditTransformer(ModelMixin, ConfigMixin):
    """Predicts the rectified-flow velocity of the target tokens.

    Defaults are the full-size Step1X-Edit configuration (about 12.4 B parameters).
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["FluxTransformerBlock", "FluxSingleTransformerBlock"]
    _repeated_blocks = ["FluxTransformerBlock", "FluxSingleTransformerBlock"]

    @register_to_config
    def __init__(
        self,
        in_channels: int = 64,
        num_layers: int = 19,
        num_single_layers: int = 38,
        attention_head_dim: int = 128,
        num_attention_heads: int = 24,
        joint_attention_dim: int = 4096,
        pooled_projection_dim: int = 768,
        axes_dims_rope: tuple[int, int, int] = (16, 56, 56),
        mllm_hidden_size: int = 3584,
        connector_num_attention_heads: int = 32,
        connector_attention_head_dim: int = 128,
        connector_num_layers: int = 2,
        connector_scale_factor: bool = False,
        reference_id_offset: tuple[int, int, int] = REFERENCE_ID_OFFSET["v1.1"],
    ) -> None:
        super().__init__()
        if connector_num_attention_heads * connector_attention_head_dim != joint_attention_dim:
            raise ValueError("the connector width must equal joint_attention_dim")
        self.connector = Step1XConnector(
            in_channels=mllm_hidden_size,
            num_attention_heads=connector_num_attention_heads,
            attention_head_dim=connector_attention_head_dim,
            num_layers=connector_num_layers,
            pooled_projection_dim=pooled_projection_dim,
            use_scale_factor=connector_scale_factor,
        )
        self.dit = FluxTransformer2DModel(
            patch_size=1,
            in_channels=in_channels,
            num_layers=num_layers,
            num_single_layers=num_single_layers,
            attention_head_dim=attention_head_dim,
            num_attention_heads=num_attention_heads,
            joint_attention_dim=joint_attention_dim,
            pooled_projection_dim=pooled_projection_dim,
            guidance_embeds=False,
            axes_dims_rope=tuple(axes_dims_rope),
        )

    @classmethod
    def for_version(cls, version: str, **overrides: Any) -> Step1XEditTransformer:
        """The configuration of a released checkpoint ("v1.0" or "v1.1"), optionally with smaller dims."""
        if version not in REFERENCE_ID_OFFSET:
            raise ValueError(
                f"unknown Step1X-Edit version {version!r}; expected one of {list(REFERENCE_ID_OFFSET)}"
            )
        return cls(
            connector_scale_factor=version == "v1.0",
            reference_id_offset=REFERENCE_ID_OFFSET[version],
            **overrides,
        )

    def set_attention_backend(self, backend: str) -> None:
        """A diffusers attention backend ("native", "_native_cudnn", "flash", ...) for the DiT's blocks only:
        the connector's refiner attends with a padding mask, which several backends do not take."""
        self.dit.set_attention_backend(backend)

    def forward(
        self,
        latents: torch.Tensor,
        reference: torch.Tensor,
        mllm_states: torch.Tensor,
        mllm_mask: torch.Tensor,
        timestep: torch.Tensor,
        grid: tuple[int, int],
        joint_attention_kwargs: dict[str, Any] | None = None,
    ) -> torch.Tensor:
        """Velocity for the target tokens.

        latents [B, N, 64] noisy target tokens, reference [B, N, 64] clean reference tokens, mllm_states
        [B, T, 3584] with mllm_mask [B, T], timestep [B] in [0, 1] (t=1 is noise), grid = (H/16, W/16) with
        N = grid_h * grid_w. Returns [B, N, 64].

        The timestep reaches the connector in its own dtype and the DiT rounded to the DiT's dtype, as in
        the reference, which builds t in its latents' dtype (bf16 while they are bf16; see
        `Step1XEditPipeline`). latents may be fp32 while reference is bf16 (v1.1's latents after its
        first damped CFG step): they are cast to reference's dtype, as the reference's autocast does.
        """
        n = latents.shape[1]
        grid_h, grid_w = grid
        text, pooled = self.connector(mllm_states, mllm_mask, timestep)  # [B, T, 4096], [B, 768]
        target_ids = image_ids(grid_h, grid_w, device=latents.device)  # [N, 3]
        ref_ids = image_ids(grid_h, grid_w, tuple(self.config.reference_id_offset), latents.device)
        txt_ids = torch.zeros(text.shape[1], 3, device=latents.device)  # identity rotation for all text
        out = self.dit(
            hidden_states=torch.cat([latents.to(reference.dtype), reference], dim=1),  # [B, 2N, 64]
            encoder_hidden_states=text,
            pooled_projections=pooled,
            timestep=timestep,  # FluxTransformer2DModel casts it to the hidden states' dtype
            img_ids=torch.cat([target_ids, ref_ids], dim=0),
            txt_ids=txt_ids,
            joint_attention_kwargs=joint_attention_kwargs,
            return_dict=False,
        )[0]
        return out[:, :n]  # the reference half of the output is discarded
