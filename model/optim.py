"""The trainer's optimizers, and their state as safetensors + json (no pickle).

`adamw` is torch's AdamW; `adamw8bit` is torchao's AdamW8bit (block-wise 8-bit moments for tensors of at
least 4096 elements, fp32 moments for smaller ones). bf16 LoRA weights need stochastic rounding in the
update (an fp32 step rounded to nearest bf16 drops every update below half a bf16 ulp), which torchao's
optimizers provide: `AdamW8bit(bf16_stochastic_round=True)`, or its `_AdamW` for plain AdamW.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file

if TYPE_CHECKING:
    from model.train import TrainConfig

OPTIMIZERS = ("adamw", "adamw8bit")


def make_optimizer(
    cfg: TrainConfig, params: list[torch.nn.Parameter], fused: bool = False
) -> torch.optim.Optimizer:
    """The optimizer of `cfg.optimizer` and `cfg.lora_dtype` (a combination `check_config` accepted);
    `fused`: torch's single-kernel AdamW (no temporary copies of the moments)."""
    bf16 = cfg.lora_dtype == "bf16"
    if cfg.optimizer == "adamw" and not bf16:
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused or None)
    try:
        from torchao.optim import AdamW8bit, _AdamW
    except ImportError as e:
        need = "optimizer adamw8bit" if cfg.optimizer == "adamw8bit" else "lora_dtype bf16"
        raise ImportError(f"{need} needs torchao: pip install 'step1x-data[models]'") from e
    if cfg.optimizer == "adamw8bit":
        return AdamW8bit(params, lr=cfg.lr, weight_decay=cfg.weight_decay, bf16_stochastic_round=bf16)
    # torchao's full-precision AdamW; its moments take the parameters' dtype, bf16 here
    return _AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, bf16_stochastic_round=True)


def _is_plain(v: torch.Tensor) -> bool:
    return type(v) is torch.Tensor


def state_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Every tensor of the optimizer state by `param_id.key`, 8-bit states split into `.codes` / `.scale` /
    `.qmap` (their stored bytes, exactly)."""
    out = {}
    for pid, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            if not torch.is_tensor(v):
                continue
            if _is_plain(v):
                out[f"{pid}.{k}"] = v
            else:
                from torchao.optim.subclass_8bit import OptimState8bit

                if not isinstance(v, OptimState8bit):
                    raise TypeError(f"optimizer state {pid}.{k}: cannot save a {type(v).__name__}")
                for name in OptimState8bit.tensor_attrs:
                    out[f"{pid}.{k}.{name}"] = getattr(v, name)
    return out


def save_optimizer(opt: torch.optim.Optimizer, path: Path) -> dict[str, Any]:
    """Tensors to `path`; returns the json part: param groups, non-tensor state, the 8-bit states' layout."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_tensors(opt).items()}
    sd = opt.state_dict()
    scalars, quantized = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if not torch.is_tensor(v):
                scalars[f"{pid}.{k}"] = v
            elif not _is_plain(v):
                quantized[f"{pid}.{k}"] = {"signed": v.signed, "dtype": str(v.dtype).removeprefix("torch.")}
    save_file(tensors, str(path))
    return {"param_groups": sd["param_groups"], "scalars": scalars, "quantized": quantized}


def load_optimizer(opt: torch.optim.Optimizer, path: Path, meta: dict[str, Any]) -> None:
    flat = load_file(str(path))
    values: dict[str, Any] = dict(meta["scalars"])
    if meta.get("quantized"):
        from torchao.optim.subclass_8bit import OptimState8bit

        for key, layout in meta["quantized"].items():
            parts = [flat.pop(f"{key}.{name}") for name in OptimState8bit.tensor_attrs]
            values[key] = OptimState8bit(*parts, layout["signed"], getattr(torch, layout["dtype"]))
    values.update(flat)
    state: dict[int, dict[str, Any]] = {}
    for key, v in values.items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    groups = retensor(meta["param_groups"], opt.state_dict()["param_groups"])
    opt.load_state_dict({"state": state, "param_groups": groups})


def retensor(saved: Any, live: Any) -> Any:
    """`saved`, read back from json, with tensors again where `live` holds tensors: torchao keeps the
    learning rate as a tensor (in the param groups, and so in the LR scheduler's state), which json stores
    as a number. An fp32 value survives the trip through a json double exactly."""
    if torch.is_tensor(live):
        return torch.tensor(saved, dtype=live.dtype)
    if isinstance(live, dict) and isinstance(saved, dict):
        return {k: retensor(v, live[k]) if k in live else v for k, v in saved.items()}
    if isinstance(live, (list, tuple)) and isinstance(saved, list) and len(saved) == len(live):
        return [retensor(v, w) for v, w in zip(saved, live, strict=True)]
    return saved
