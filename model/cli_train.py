"""`step1x-train`: train Step1X-Edit on data-engine shards. Options come from a YAML file (--config) and
from flags named like its keys; flags win. The effective config is written to OUT/config.yaml.

    step1x-train --shards 'runs/demo/shards/*.tar' --init official --models-dir /models --out ckpt/
    accelerate launch --config_file cluster/accelerate/fsdp_2gpu.yaml -m model.cli_train --config train.yaml
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path

import yaml

from model.train import TrainConfig, train


def _flag_type(tp: object) -> tuple[type, bool]:
    """(element type, is_list) for a TrainConfig annotation such as `int`, `str | None`, `list[str]`."""
    hints = typing.get_args(tp) if isinstance(tp, types.UnionType) else (tp,)
    base = next(h for h in hints if h is not type(None))
    if typing.get_origin(base) is list:
        return typing.get_args(base)[0], True
    return base, False


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="step1x-train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", help="YAML file with TrainConfig keys")
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        tp, is_list = _flag_type(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        if tp is bool:
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None)
        else:
            p.add_argument(flag, dest=f.name, type=tp, nargs="+" if is_list else None, default=None)
    return p


def load_config(argv: list[str] | None = None) -> TrainConfig:
    args = vars(build_parser().parse_args(argv))
    config_path = args.pop("config")
    values: dict = (yaml.safe_load(Path(config_path).read_text()) or {}) if config_path else {}
    unknown = set(values) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        raise SystemExit(f"unknown config keys: {sorted(unknown)}")
    values.update({k: v for k, v in args.items() if v is not None})
    return TrainConfig(**values)


def main(argv: list[str] | None = None) -> None:
    cfg = load_config(argv)
    losses = train(cfg)
    if losses:
        print(f"trained {len(losses)} steps; last loss {losses[-1]:.4f}; checkpoints in {cfg.out}")


if __name__ == "__main__":
    main()
