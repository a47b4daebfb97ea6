"""The model CLIs as a newcomer meets them: every flag explained, a tiny smoke test that picks a size it can
finish quickly, a quiet start, and a missing optional dependency as one line naming the extra."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from model import cli_edit, cli_train, serve
from model.console import EXTRA_OF_MODULE
from model.quiet import KNOWN_MESSAGES, silence_known_messages
from model.sampler import Step1XEditPipeline

ROOT = Path(__file__).resolve().parents[2]
PHOTO = str(ROOT / "examples" / "photos" / "chelsea.png")


@pytest.mark.parametrize("parser", [cli_edit.build_parser(), serve.build_parser(), cli_train.build_parser()])
def test_every_flag_has_help(parser: argparse.ArgumentParser) -> None:
    flags = [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS]
    assert len(flags) > 10
    missing = [a.option_strings[0] for a in flags if not (a.help or "").strip()]
    assert missing == []


def test_train_flags_say_what_they_accept() -> None:
    text = cli_train.build_parser().format_help()
    assert "--version {v1.0,v1.1}" in text and "--mode {lora,full}" in text
    assert "(1, r+1, c+1)" in " ".join(text.split())  # what --version changes in training
    with pytest.raises(SystemExit):
        cli_train.build_parser().parse_args(["--mode", "half"])


def test_tiny_smoke_test_picks_a_small_size_level(tmp_path, monkeypatch, keep_torch_threads) -> None:
    levels: list[int] = []
    real_edit = Step1XEditPipeline.edit

    def spy(self, images, instructions, size_level=512, *args, **kwargs):  # noqa: ANN001, ANN202
        levels.append(size_level)
        return real_edit(self, images, instructions, size_level, *args, **kwargs)

    monkeypatch.setattr(Step1XEditPipeline, "edit", spy)
    out = tmp_path / "out.png"
    args = ["--tiny", "--image", PHOTO, "--instruction", "make it blue", "--out", str(out), "--steps", "2"]
    cli_edit.main([*args, "--device", "cpu"])
    assert levels == [cli_edit.TINY_SIZE_LEVEL] and Image.open(out).size == Image.open(PHOTO).size


def test_extras_table_matches_the_package_metadata() -> None:
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    reqs = [Requirement(r) for r in requires("step1x-data") or []]

    def names(extra: str) -> set[str]:
        # requirement name -> top-level module; cuDNN's frontend is the only one named otherwise
        found = {r.name for r in reqs if r.marker is not None and r.marker.evaluate({"extra": extra})}
        return {"cudnn" if n == "nvidia-cudnn-frontend" else n for n in found}

    for extra in set(EXTRA_OF_MODULE.values()):
        assert names(extra) == {m for m, e in EXTRA_OF_MODULE.items() if e == extra}


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("command", "entry", "module"),
    [("step1x-edit", "edit", "diffusers"), ("step1x-train", "train", "accelerate")],
)
def test_a_missing_optional_dependency_is_one_line(command: str, entry: str, module: str) -> None:
    # None in sys.modules makes `import module` fail exactly as an absent package does
    done = _run(
        f"import sys; sys.modules[{module!r}] = None; from model.console import {entry}; {entry}(['--help'])"
    )
    assert done.returncode == 1
    hint = "install it with: pip install 'step1x-data[models]'"
    assert done.stderr.strip().splitlines() == [
        f"{command}: the Python package '{module}' is missing; {hint}"
    ]


def test_start_up_is_quiet_but_other_messages_stay() -> None:
    noisy = _run("import torchao")  # what the libraries print on their own in this environment
    assert "is an Enum subclass" in noisy.stderr
    quiet = _run("from model.console import edit; edit(['--help'])")
    assert quiet.returncode == 0 and "usage: step1x-edit" in quiet.stdout
    assert quiet.stderr.strip() == ""
    # a message of a filtered logger that is not a known one still shows
    silence_known_messages()
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("torchao")
    logger.addHandler(handler)
    try:
        logger.warning("Failed to load /x/_C.so: undefined symbol")
        logger.warning("a new, unknown warning")
    finally:
        logger.removeHandler(handler)
    assert seen == ["a new, unknown warning"] and "torchao" in KNOWN_MESSAGES
