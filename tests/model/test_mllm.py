"""The Qwen2.5-VL prompt, quote re-tokenisation (quirk included) and the torchvision-free preprocessing."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from model.mllm import PREFIX, Step1XMLLMEncoder, qwen_pixel_values, render_prompt, split_quoted
from model.tiny import byte_tokenizer, tiny_qwen

PHOTO = "examples/photos/chelsea.png"


def test_prompt_layout() -> None:
    text = render_prompt("add a hat")
    assert text.startswith(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nGiven"
    )
    assert PREFIX.endswith("User Prompt:") and text.count('"') == 2  # only the "Enhanced prompt" quotes
    assert "User Prompt:Picture 1: <|vision_start|><|image_pad|><|vision_end|>add a hat<|im_end|>\n" in text
    assert text.endswith("<|im_start|>assistant\n")


def test_quoted_text_is_split_per_character() -> None:
    segs = split_quoted(render_prompt("Replace “TRAIN” with 'OK'"))
    assert "“T”" in segs and "“R”" in segs and "“K”" in segs
    # the prefix quotes (index <= 155) stay inside the first plain segment
    assert segs[0].count('"') == 3 and segs[0].endswith('Replace "')  # 2 prefix quotes + the opening one
    assert segs[-1] == '"<|im_end|>\n<|im_start|>assistant\n'


def test_odd_quote_leaves_the_tail_split_quirk() -> None:
    segs = split_quoted(render_prompt("put a scarf around this girl's neck."))
    # the apostrophe opens a quote that never closes: the template tail becomes single characters
    assert segs[-1] == "“\n”" and "“<”" in segs and "“|”" in segs
    assert segs[0].endswith('girl"') and not any("<|im_end|>" in s for s in segs[1:])


def test_pixel_values_match_the_transformers_processor() -> None:
    from transformers import Qwen2VLImageProcessorPil

    image = Image.open(PHOTO).convert("RGB")
    ours, grid = qwen_pixel_values(image)
    proc = Qwen2VLImageProcessorPil(min_pixels=256 * 28 * 28, max_pixels=324 * 28 * 28)
    theirs = proc(images=[image], return_tensors="pt")
    assert torch.equal(grid, theirs["image_grid_thw"])
    assert 256 <= int(grid.prod()) // 4 <= 324
    torch.testing.assert_close(ours, theirs["pixel_values"], atol=2e-2, rtol=0)  # PIL resampling rounding


def test_encoder_drops_prefix_pads_and_masks() -> None:
    tokenizer = byte_tokenizer()
    # 217 is the Qwen-vocabulary index of the ":" ending "User Prompt:"; the same point in the byte tokenizer
    head = render_prompt("")[: render_prompt("").index("Picture 1:")]
    drop = len(tokenizer(head, add_special_tokens=False)["input_ids"]) - 1
    encoder = Step1XMLLMEncoder(tiny_qwen(), tokenizer, max_length=640, drop_tokens=drop)
    image = Image.open(PHOTO)
    tok = encoder.tokenize(image, 'write "HI"')
    ids = tok.input_ids[0].tolist()
    n_pad = int(tok.image_grid_thw.prod()) // 4
    assert ids.count(151655) == n_pad and ids.count(151653) == 1
    # "HI" was re-tokenised per character: H and I each appear as their own byte ids after <|vision_end|>
    tail = ids[ids.index(151653) :]
    assert tokenizer("H", add_special_tokens=False)["input_ids"][0] in tail
    emb, mask = encoder([image, image], ['write "HI"', ""])
    assert emb.shape == (2, 640, 32) and mask.shape == (2, 640)
    valid = int(mask[1].sum())
    assert valid == min(640, len(encoder.tokenize(image, "").input_ids[0]) - drop)
    assert torch.all(emb[1, valid:] == 0) and torch.all(emb[1, :valid].abs().sum(-1) > 0)
    assert not np.allclose(emb[0].numpy(), emb[1].numpy())


def test_a_transformers_image_processor_can_replace_the_numpy_path() -> None:
    from transformers import Qwen2VLImageProcessorPil

    proc = Qwen2VLImageProcessorPil(min_pixels=256 * 28 * 28, max_pixels=324 * 28 * 28)
    tokenizer = byte_tokenizer()
    model = tiny_qwen()
    image = Image.open(PHOTO)
    ours = Step1XMLLMEncoder(model, tokenizer).tokenize(image, "add a hat")
    theirs = Step1XMLLMEncoder(model, tokenizer, image_processor=proc).tokenize(image, "add a hat")
    assert torch.equal(ours.input_ids, theirs.input_ids) and torch.equal(
        ours.image_grid_thw, theirs.image_grid_thw
    )
    torch.testing.assert_close(ours.pixel_values, theirs.pixel_values, atol=2e-2, rtol=0)


def test_encoder_keeps_only_the_backbone_and_matches_the_full_models_last_hidden_state() -> None:
    tokenizer = byte_tokenizer()
    qwen = tiny_qwen()
    encoder = Step1XMLLMEncoder(qwen, tokenizer, max_length=640, drop_tokens=5)
    assert encoder.model is qwen.model and not hasattr(encoder.model, "lm_head")
    image = Image.open(PHOTO)
    emb, mask = encoder([image], ['make it "red"'])
    tok = encoder.tokenize(image, 'make it "red"')
    with torch.no_grad():
        ref = qwen(
            input_ids=tok.input_ids,
            attention_mask=(tok.input_ids > 0).long(),
            pixel_values=tok.pixel_values,
            image_grid_thw=tok.image_grid_thw,
            mm_token_type_ids=(tok.input_ids == qwen.config.image_token_id).int(),
            output_hidden_states=True,
        ).hidden_states[-1][0, 5:645]
    valid = int(mask[0].sum())
    assert valid == ref.shape[0]
    torch.testing.assert_close(emb[0, :valid], ref)
