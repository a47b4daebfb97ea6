"""Full fine-tuning sharded over processes with torch's FSDP2 (`fully_shard`), and its checkpoints.

Each DiT block (19 double-stream, 38 single-stream) is one FSDP unit, the connector another, and the
embedders and output layer belong to the root unit. A unit's parameters are gathered just before it runs
and freed after it (and again for its backward pass), so a GPU holds its 1/N share of the fp32 weights,
gradients and AdamW moments (16 bytes per parameter: 99 GB per GPU for the 12.4 B parameters on 2 GPUs)
plus a few gathered blocks. Under bf16 mixed precision the gathered weights are bf16 (half the traffic)
and gradients are reduced in fp32.

Checkpoints: torch.distributed.checkpoint writes its metadata as a pickle, and this project's checkpoints
are safetensors and json only (nothing is ever unpickled). So each process writes the local tensors of
its shards, of the parameters and of their optimizer state, to `rank-R-of-W.safetensors`, and the json
part (world size, param groups) goes into the checkpoint's state.json. Resuming needs the same number of
processes, which is checked; the gathered full weights (`gather_full_state`) let another number of GPUs,
or the sampler, start from the same weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch.distributed.tensor import DTensor

from model.optim import retensor
from model.transformer import Step1XEditTransformer


def shard_transformer(model: Step1XEditTransformer, device: torch.device, mixed_precision: str) -> None:
    """Shard `model` in place over all processes of the default group (its parameters become DTensors
    on `device`; an optimizer must be made after this)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    scalars = [n for n, p in model.named_parameters() if p.dim() == 0]
    if scalars:  # v1.0's connector.scale_factor
        raise ValueError(f"FSDP2 cannot shard scalar parameters ({', '.join(scalars)}): train v1.1, or LoRA")
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    param_dtype = torch.bfloat16 if mixed_precision == "bf16" else None
    # On a GPU, inputs are not cast: bf16 autocast (the trainer's, on CUDA) sets the compute dtype, and
    # FSDP2 skips its input cast when a gradient-checkpointed block is recomputed in backward, so a cast
    # input (the rotary embedding) would be bf16 in the forward and fp32 in the recompute, which
    # checkpointing refuses (seen on H200s). On the CPU no autocast runs: FSDP2 casts the inputs.
    policy = MixedPrecisionPolicy(
        param_dtype=param_dtype, reduce_dtype=torch.float32, cast_forward_inputs=device.type != "cuda"
    )
    for block in [*model.dit.transformer_blocks, *model.dit.single_transformer_blocks]:
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(model.connector, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)


def resharded(model: torch.nn.Module) -> torch.nn.Module:
    """`model` with its sharded parameters registered: a forward pass without backward (validation,
    sampling) leaves the root unit's gathered parameters in place of its shards."""
    from torch.distributed.fsdp import FSDPModule

    if isinstance(model, FSDPModule):
        model.reshard()
    return model


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if isinstance(t, DTensor) else t


def _shard_file(folder: Path, rank: int, world: int) -> Path:
    return folder / f"rank-{rank:05d}-of-{world:05d}.safetensors"


def _ordered_params(optimizer: torch.optim.Optimizer) -> list[torch.nn.Parameter]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def save_shards(model: torch.nn.Module, optimizer: torch.optim.Optimizer, folder: Path) -> dict[str, Any]:
    """This process's shards of every parameter and of its optimizer state to one safetensors file in
    `folder`; returns the json part (the same on every process)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    names = {p: n for n, p in resharded(model).named_parameters()}
    tensors = {f"param/{n}": _local(p.detach()) for n, p in model.named_parameters()}
    for p, state in optimizer.state.items():
        for key, value in state.items():
            if not torch.is_tensor(value):
                raise TypeError(f"optimizer state {names[p]}.{key} is not a tensor: cannot save it")
            # "sharded" entries are DTensors like their parameter (the moments), "plain" ones are not (step)
            kind = "sharded" if isinstance(value, DTensor) else "plain"
            tensors[f"optim/{kind}/{names[p]}/{key}"] = _local(value.detach())
    folder.mkdir(parents=True, exist_ok=True)
    target = _shard_file(folder, rank, world)
    tmp = target.with_name("." + target.name + ".partial")
    save_file({k: v.cpu().contiguous() for k, v in tensors.items()}, str(tmp))
    tmp.replace(target)
    groups = optimizer.state_dict()["param_groups"]
    order = [names[p] for p in _ordered_params(optimizer)]
    for group in groups:
        group["params"] = [order[i] for i in group["params"]]
    return {"world_size": world, "param_groups": groups}


def load_shards(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, folder: Path, meta: dict[str, Any]
) -> None:
    """Restore what `save_shards` wrote, on the same number of processes."""
    rank, world = dist.get_rank(), dist.get_world_size()
    if meta["world_size"] != world:
        raise ValueError(
            f"{folder.parent} was saved by {meta['world_size']} processes and this run has {world}: resume "
            "with the same number, or start a new run from its transformer/ (the gathered weights)"
        )
    saved = load_file(str(_shard_file(folder, rank, world)))
    named = dict(resharded(model).named_parameters())
    with torch.no_grad():
        for n, p in named.items():
            local, value = _local(p), saved[f"param/{n}"]
            if local.shape != value.shape:
                raise ValueError(f"{n}: saved shard {tuple(value.shape)}, this run's {tuple(local.shape)}")
            local.copy_(value)
    order = _ordered_params(optimizer)
    names = {p: n for n, p in named.items()}
    index = {names[p]: i for i, p in enumerate(order)}
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in saved.items():
        if not key.startswith("optim/"):
            continue
        _, kind, name, slot = key.split("/")
        p = named[name]
        if kind == "sharded":
            value = DTensor.from_local(
                value.to(p.device),
                p.device_mesh,
                p.placements,
                run_check=False,
                shape=p.shape,
                stride=p.stride(),
            )
        state.setdefault(index[name], {})[slot] = value
    groups = retensor(meta["param_groups"], optimizer.state_dict()["param_groups"])
    for group in groups:
        group["params"] = [index[n] for n in group["params"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def gather_full_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The full state dict on the CPU of process 0 (empty elsewhere); every process must call it, since
    each parameter is all-gathered in turn (one full tensor on the device at a time)."""
    rank = dist.get_rank()
    out = {}
    for key, value in resharded(model).state_dict().items():
        full = value.full_tensor() if isinstance(value, DTensor) else value
        if rank == 0:
            out[key] = full.detach().cpu()
    return out
