"""A model folder is untrusted input: only safetensors load. A pickle-only folder is refused, nothing in it
unpickled, with a one-line message whose conversion command works as printed (run here on a tiny real
transformers model) and refuses a hostile pickle."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel

from annotators.pretrained import local_pretrained
from annotators.registry import PluginUnavailable


def refusal(folder: Path) -> str:
    with pytest.raises(PluginUnavailable) as raised:
        local_pretrained(BertModel, str(folder))
    message = str(raised.value)
    assert len(message.splitlines()) == 1
    return message


def conversion_command(message: str) -> str:
    (code,) = re.findall(r'python -c "([^"]+)"', message)
    return code


def test_a_pickle_only_folder_is_refused_and_the_printed_command_converts_it(tmp_path: Path) -> None:
    config = BertConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        vocab_size=64,
        max_position_embeddings=32,
    )
    model = BertModel(config).eval()
    folder = tmp_path / "bert-tiny"
    folder.mkdir()
    config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")

    message = refusal(folder)
    assert "pytorch_model.bin" in message and "never loaded" in message
    converted = subprocess.run(
        [sys.executable, "-c", conversion_command(message)], capture_output=True, text=True, timeout=120
    )
    assert converted.returncode == 0, converted.stderr
    assert (folder / "model.safetensors").exists()

    loaded = local_pretrained(BertModel, str(folder)).eval()
    tokens = torch.tensor([[1, 5, 9, 2]])
    with torch.no_grad():
        assert torch.equal(loaded(tokens).last_hidden_state, model(tokens).last_hidden_state)


class Hostile:
    """Unpickling this runs code: it creates the file named by `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_hostile_pickle_is_never_run(tmp_path: Path) -> None:
    folder = tmp_path / "hostile"
    folder.mkdir()
    marker = tmp_path / "pwned"
    with open(folder / "diffusion_pytorch_model.bin", "wb") as handle:
        pickle.dump({"weight": Hostile(marker)}, handle)
    message = refusal(folder)
    assert str(folder / "diffusion_pytorch_model.safetensors") in message
    converted = subprocess.run(
        [sys.executable, "-c", conversion_command(message)], capture_output=True, text=True, timeout=120
    )
    assert converted.returncode != 0 and "Weights only load failed" in converted.stderr
    assert not marker.exists(), "the refused pickle ran"
    assert not (folder / "diffusion_pytorch_model.safetensors").exists()
