"""EditReward as a judge: a tiny random checkpoint in its layout, loaded from folders, checked against the
upstream forward (the backbone called without input ids, as EditReward's model does)."""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save_file
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor

from annotators.mllm.editreward import REWARD_TOKEN, EditRewardJudge, reward_head
from annotators.mllm.editreward_prompts import FOLLOWING, QUALITY, REWARD_SUFFIX
from model.eval.cli import main
from model.tiny import byte_tokenizer, qwen_config

PHOTOS = Path(__file__).resolve().parents[2] / "examples" / "photos"
TEXT = "Remove the cat."
# Qwen's smart_resize to 256*28*28 pixels, worked out by hand: chelsea 451x300 rounds to 448x308, below the
# minimum, so it is scaled up by sqrt(200704 / 135300) and ceiled to multiples of 28; coffee 600x400 rounds to
# 588x392, above the maximum, so it is scaled down and floored.
SIZES = {"chelsea.png": (560, 392), "coffee.png": (532, 364)}  # (width, height)


@dataclass
class TinyEditReward:
    base: Path  # the Qwen2.5-VL folder: config, tokenizer, image processor
    checkpoints: dict[bool, Path]  # legacy key layout or not -> the checkpoint folder
    model: Qwen2_5_VLForConditionalGeneration
    heads: dict[int, torch.nn.Module]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyEditReward:
    """A base folder and an EditReward-style checkpoint over it, in both key layouts."""
    root = tmp_path_factory.mktemp("editreward")
    base = root / "Qwen2.5-VL-7B-Instruct"
    config = qwen_config()
    tokenizer = byte_tokenizer()
    config.save_pretrained(base)
    tokenizer.save_pretrained(base)
    Qwen2VLImageProcessor().save_pretrained(base)  # the base model's processor: its default pixel range
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    tokenizer.add_special_tokens({"additional_special_tokens": [REWARD_TOKEN]})
    model.resize_token_embeddings(len(tokenizer))  # as upstream's training script
    heads = {i: reward_head(config.text_config.hidden_size).eval() for i in range(2)}
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    for i, head in heads.items():
        state |= {f"rm_heads.head_{i}.{k}": v for k, v in head.state_dict().items()}
    # The layout transformers 4.5x writes with save_pretrained, and the current one.
    legacy = {
        k.replace("model.visual.", "visual.").replace("model.language_model.", "model."): v
        for k, v in state.items()
    }
    checkpoints = {}
    for is_legacy, weights in ((False, state), (True, legacy)):
        checkpoints[is_legacy] = root / f"EditReward-tiny{'-legacy' if is_legacy else ''}"
        checkpoints[is_legacy].mkdir()
        save_file(weights, checkpoints[is_legacy] / "model.safetensors")
    return TinyEditReward(base, checkpoints, model, heads)


@pytest.fixture(scope="module")
def judge(tiny: TinyEditReward) -> EditRewardJudge:
    return EditRewardJudge.load(str(tiny.checkpoints[False]), str(tiny.base), "cpu")


def _upstream_reward(model, heads, tokenizer, processor, head: int, prompt: str) -> tuple[float, float]:
    """EditReward's forward, written out: the chat template by the processor's rule, images resized to
    256*28*28 pixels by PIL bicubic, features scattered into the embeddings, the backbone called WITHOUT
    input ids (so transformers chooses 1-D positions), the head at the reward token."""
    images, counts = [], []
    for name in ("chelsea.png", "coffee.png"):
        image = Image.open(PHOTOS / name).convert("RGB")
        w, h = SIZES[name]
        images.append(image.resize((w, h), Image.BICUBIC))
        counts.append((h // 14) * (w // 14) // 4)
    text = (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        + "".join(f"<|vision_start|>{'<|image_pad|>' * n}<|vision_end|>" for n in counts)
        + prompt.format(text_prompt=TEXT)
        + REWARD_SUFFIX
        + "<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    pixels = processor(images=images, return_tensors="pt")
    backbone = model.model
    embeds = backbone.get_input_embeddings()(ids)
    features = torch.cat(
        list(backbone.get_image_features(pixels["pixel_values"], pixels["image_grid_thw"]).pooler_output)
    )
    embeds = embeds.masked_scatter(
        (ids == model.config.image_token_id).unsqueeze(-1).expand_as(embeds), features
    )
    with torch.no_grad():
        hidden = backbone(
            input_ids=None, inputs_embeds=embeds, attention_mask=torch.ones_like(ids)
        ).last_hidden_state
        mean, log_sigma = heads[head](
            hidden[0][ids[0] == tokenizer.convert_tokens_to_ids(REWARD_TOKEN)].float()
        )[0]
    return float(mean), float(log_sigma)


def test_rewards_match_the_upstream_forward(tiny: TinyEditReward, judge: EditRewardJudge) -> None:
    assert judge.name == "editreward:EditReward-tiny:en:v1"
    tokenizer = byte_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": [REWARD_TOKEN]})
    processor = Qwen2VLImageProcessor()
    source, target = ((PHOTOS / n).read_bytes() for n in ("chelsea.png", "coffee.png"))
    got = judge.rewards(source, target, TEXT)
    for head, prompt in enumerate((FOLLOWING, QUALITY)):
        want = _upstream_reward(tiny.model, tiny.heads, tokenizer, processor, head, prompt)
        assert got[head] == pytest.approx(want, abs=1e-5)
    assert got[0] != pytest.approx(got[1], abs=1e-4)  # each head has its own prompt and weights
    result = judge.judge(source, target, {"en": TEXT})
    following, quality = got[0][0], got[1][0]
    assert result.sc == pytest.approx(10 / (1 + math.exp(-following)))
    assert result.pq == pytest.approx(10 / (1 + math.exp(-quality)))
    assert result.o == pytest.approx(10 / (1 + math.exp(-(following + quality) / 2)))
    assert result.details["reward_following"] == following
    # The same weights saved in transformers 4.5x's key layout load to the same judge.
    legacy = EditRewardJudge.load(str(tiny.checkpoints[True]), str(tiny.base), "cpu")
    flat = [value for pair in got for value in pair]
    assert [value for pair in legacy.rewards(source, target, TEXT) for value in pair] == pytest.approx(flat)


def test_the_positions_matter(judge: EditRewardJudge) -> None:
    """The comparison above can fail: Qwen2.5-VL's own 3-D image positions give other rewards."""
    source, target = ((PHOTOS / n).read_bytes() for n in ("chelsea.png", "coffee.png"))
    ours = judge.rewards(source, target, TEXT)[0][0]
    original = judge.model.forward

    def with_mrope(input_ids, image, head, reward_token_id):
        # Qwen2.5-VL's own positions for the same inputs: 3-D ids from the image grids.
        backbone = judge.model.model
        pixels = Qwen2VLImageProcessor()(
            images=[Image.open(PHOTOS / n).convert("RGB").resize(s) for n, s in SIZES.items()],
            return_tensors="pt",
        )
        with torch.no_grad():
            hidden = backbone(
                input_ids=input_ids,
                pixel_values=pixels["pixel_values"],
                image_grid_thw=pixels["image_grid_thw"],
                mm_token_type_ids=(input_ids == backbone.config.image_token_id).int(),
            ).last_hidden_state
        return judge.model.rm_heads[f"head_{head}"](hidden[0][input_ids[0] == reward_token_id].float())[0]

    judge.model.forward = with_mrope  # type: ignore[method-assign]
    try:
        assert judge.rewards(source, target, TEXT)[0][0] != pytest.approx(ours, abs=1e-6)
    finally:
        judge.model.forward = original  # type: ignore[method-assign]


def test_loading_errors(tiny: TinyEditReward, tmp_path: Path) -> None:
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "model.pth").write_bytes(b"not loaded")
    with pytest.raises(FileNotFoundError, match="model.pth \\(a pickle, which is never loaded\\)"):
        EditRewardJudge.load(str(pickled), None, "cpu")
    with pytest.raises(FileNotFoundError, match="--editreward-base"):
        EditRewardJudge.load(str(tiny.checkpoints[False]), str(tmp_path), "cpu")
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    save_file({"model.language_model.embed_tokens.weight": torch.zeros(4, 32)}, wrong / "model.safetensors")
    with pytest.raises(ValueError, match="not an EditReward Qwen2.5-VL checkpoint"):
        EditRewardJudge.load(str(wrong), str(tiny.base), "cpu")


def test_judged_images_are_encoded_files(judge: EditRewardJudge) -> None:
    """Any encoded image goes in (a JPEG here), and an empty instruction is a verdict, not a crash."""
    judge = judge.with_language("zh")
    buf = io.BytesIO()
    Image.open(PHOTOS / "rocket.jpg").save(buf, format="JPEG")
    result = judge.judge(buf.getvalue(), buf.getvalue(), {"zh": "调成日落的效果。"})
    assert result.status == "ok" and 0 < result.sc < 10 and judge.name.endswith(":zh:v1")
    assert judge.judge(buf.getvalue(), buf.getvalue(), {"en": TEXT}).reason == "no_zh_instruction"


def test_eval_scores_with_editreward(tiny: TinyEditReward, tmp_path: Path) -> None:
    """`step1x-eval score --judge editreward` on a one-row bench whose "edit" is written by hand."""
    photo = (PHOTOS / "chelsea.png").read_bytes()
    row = {"task_type": "subject-remove", "key": "k1", "instruction": TEXT, "instruction_language": "en"}
    pq.write_table(pa.Table.from_pylist([row | {"input_image": photo}]), tmp_path / "bench.parquet")
    edited = tmp_path / "eval" / "fullset" / "subject-remove" / "en" / "k1.png"
    edited.parent.mkdir(parents=True)
    Image.open(PHOTOS / "coffee.png").save(edited)
    args = [
        "score",
        str(tmp_path / "eval"),
        "--bench",
        str(tmp_path / "bench.parquet"),
        "--judge",
        "editreward",
    ]
    args += ["--editreward-dir", str(tiny.checkpoints[False]), "--editreward-base", str(tiny.base)]
    result = CliRunner().invoke(main, [*args, "--editreward-device", "cpu"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (
        "EditReward (a reward model): not GEdit-Bench's judge" in result.output
        and "IS R_SC" not in result.output
    )
    folder = tmp_path / "eval" / "scores" / "editreward"
    (scored,) = pq.read_table(folder / "scores.parquet").to_pylist()
    assert scored["status"] == "ok" and scored["judge"] == "editreward:EditReward-tiny:en:v1"
    reward = json.loads(scored["details"])["reward_following"]
    assert scored["sc"] == pytest.approx(10 / (1 + math.exp(-reward)))
    assert json.loads((folder / "judge.json").read_text())["protocol"] == "editreward"
