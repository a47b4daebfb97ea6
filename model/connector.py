"""The Step1X-Edit connector: Qwen2.5-VL hidden states -> DiT text tokens and pooled vector.

It is HunyuanVideo's token refiner (diffusers `HunyuanVideoTokenRefiner`) plus one Linear that replaces
FLUX's pooled CLIP vector. It is timestep-conditioned, so it runs at every denoising step.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.transformers.transformer_hunyuan_video import HunyuanVideoTokenRefiner
from torch import nn


class Step1XConnector(ModelMixin, ConfigMixin):
    """Refines the MLLM tokens and pools them into the DiT's modulation vector.

    Args:
        in_channels: MLLM hidden size (3584 for Qwen2.5-VL-7B).
        num_attention_heads, attention_head_dim: refiner attention (32 x 128 = 4096, the DiT's text width).
        num_layers: refiner blocks (2).
        pooled_projection_dim: size of the pooled vector the DiT takes (768).
        use_scale_factor: v1.0 multiplies the masked mean by (1 + s) with a learned scalar s; v1.1 has no s.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3584,
        num_attention_heads: int = 32,
        attention_head_dim: int = 128,
        num_layers: int = 2,
        pooled_projection_dim: int = 768,
        use_scale_factor: bool = False,
    ) -> None:
        super().__init__()
        self.refiner = HunyuanVideoTokenRefiner(
            in_channels=in_channels,
            num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim,
            num_layers=num_layers,
            mlp_ratio=4.0,
            attention_bias=True,
        )
        self.global_proj_out = nn.Linear(in_channels, pooled_projection_dim)
        # v1.0 initialises s at -0.91 (a factor of 0.09); the trained value comes from the checkpoint.
        self.scale_factor = nn.Parameter(torch.tensor(-0.91)) if use_scale_factor else None

    def forward(
        self, hidden_states: torch.Tensor, mask: torch.Tensor, timestep: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden_states [B, T, in], mask [B, T] (1 = valid), timestep [B] in [0, 1].

        Returns (text tokens [B, T, heads*head_dim], pooled [B, pooled_projection_dim]).
        """
        # The masked mean of the raw states in fp32, rounded once to the working dtype: what the reference's
        # autocast does (its sum runs in fp32). diffusers' refiner pools the same way internally.
        mask_f = mask.float().unsqueeze(-1)  # [B, T, 1]
        pooled = (hidden_states.float() * mask_f).sum(dim=1) / mask_f.sum(dim=1)
        if self.scale_factor is not None:
            pooled = pooled * (1 + self.scale_factor.to(hidden_states.dtype))
        pooled = self.global_proj_out(pooled.to(hidden_states.dtype))
        # The refiner's sinusoid expects the 0..1000 scale (inference passes 1000*t; the public training
        # script's 10^6 is a known bug we do not copy). 1000*t is formed in t's dtype, as the reference does.
        tokens = self.refiner(hidden_states, timestep * 1000, mask.long())
        return tokens, pooled
