"""The entry points of `step1x-edit`, `step1x-train` and `step1x-eval`: a missing optional dependency is
reported as one line naming the extra that installs it (the package's import already silenced the known
start-up noise)."""

from __future__ import annotations

import importlib

# Top-level modules of the optional dependencies, by the pyproject extra that installs them
# (tests/model/test_cli_help.py checks this table against pyproject.toml).
EXTRA_OF_MODULE: dict[str, str] = {
    "torch": "models",
    "torchvision": "models",
    "diffusers": "models",
    "transformers": "models",
    "accelerate": "models",
    "peft": "models",
    "safetensors": "models",
    "tensorboard": "models",
    "torchao": "models",
    "cudnn": "fp8-attention",
}


def _missing_module(error: ImportError) -> str | None:
    """The top-level name of the module whose absence caused `error`, directly or as its cause."""
    for e in (error, error.__cause__):
        if isinstance(e, ModuleNotFoundError) and e.name:
            return e.name.split(".")[0]
    return None


def run(module: str, command: str, argv: list[str] | None = None) -> None:
    try:
        importlib.import_module(module).main(argv)
    except ImportError as e:
        name = _missing_module(e)
        if name not in EXTRA_OF_MODULE:
            raise
        extra = EXTRA_OF_MODULE[name]
        raise SystemExit(
            f"{command}: the Python package '{name}' is missing; install it with: "
            f"pip install 'step1x-data[{extra}]'"
        ) from None


def edit(argv: list[str] | None = None) -> None:
    run("model.cli_edit", "step1x-edit", argv)


def train(argv: list[str] | None = None) -> None:
    run("model.cli_train", "step1x-train", argv)


def evaluate(argv: list[str] | None = None) -> None:
    run("model.eval.cli", "step1x-eval", argv)
