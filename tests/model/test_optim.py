"""The trainer's optimizers on the CPU: bf16 weights keep updates smaller than their rounding step
(stochastic rounding), and torchao's 8-bit state goes through safetensors + json bit-exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from model.optim import load_optimizer, make_optimizer, save_optimizer, state_tensors
from model.train import TrainConfig


@pytest.mark.parametrize("optimizer", ["adamw", "adamw8bit"])
def test_bf16_weights_take_updates_below_their_rounding_step(optimizer: str) -> None:
    torch.manual_seed(0)
    cfg = TrainConfig(optimizer=optimizer, lora_dtype="bf16", lr=1e-4, weight_decay=0.0)
    p = nn.Parameter(torch.ones(64, 64, dtype=torch.bfloat16))  # 4096 elements: 8-bit moments
    opt = make_optimizer(cfg, [p])
    for _ in range(10):
        p.grad = torch.ones_like(p)
        opt.step()
    # Adam moves every weight by ~lr per step, 1/39 of the bf16 spacing below 1.0: rounded to nearest, the
    # weights would stay at 1.0; stochastically rounded, their mean follows the fp32 trajectory
    assert p.dtype == torch.bfloat16
    assert abs((1 - p.float().mean().item()) - 10 * cfg.lr) < 2e-4


def test_8bit_state_round_trip_is_exact(tmp_path: Path) -> None:
    cfg = TrainConfig(optimizer="adamw8bit", lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(64, 64, generator=gen) for _ in range(4)]
    p = nn.Parameter(torch.randn(64, 64, generator=gen))
    opt = make_optimizer(cfg, [p])
    for g in grads[:3]:
        p.grad = g.clone()
        opt.step()
    # the json part goes through a file as the trainer's state.json does
    meta = json.loads(json.dumps(save_optimizer(opt, tmp_path / "opt.safetensors"), default=float))
    q = nn.Parameter(p.detach().clone())
    resumed = make_optimizer(cfg, [q])
    load_optimizer(resumed, tmp_path / "opt.safetensors", meta)
    before, after = state_tensors(opt), state_tensors(resumed)
    assert any(k.endswith(".codes") for k in before) and before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    for param, o in ((p, opt), (q, resumed)):
        param.grad = grads[3].clone()
        o.step()
    assert torch.equal(p, q)
