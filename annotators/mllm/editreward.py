"""EditReward (TIGER-AI-Lab, arXiv 2509.26346) as a judge: a reward model for edits, run in this process.

What it is (EditReward/model/qwen2_5_vl_trainer.py and config/EditReward-Qwen2.5-7B-VL.yaml at edb027e):
Qwen2.5-VL-7B-Instruct, fully fine-tuned, with "<|Reward|>" added to the tokenizer (embeddings resized to the
tokenizer's length) and two reward heads kept in fp32, each Linear(hidden, 1024) - ReLU - Dropout -
Linear(1024, 16) - ReLU - Linear(16, 2): the mean and log-sigma of a Gaussian reward. Head 0 reads the
instruction-following prompt, head 1 the visual-quality prompt (editreward_prompts.py); each sees the source
image, the edited image, then its prompt and the reward suffix, in Qwen's chat template with the generation
prompt, and reads the last hidden state at the "<|Reward|>" token. Each image is resized by PIL bicubic to
256*28*28 pixels (min = max pixels), as its collator does.

Positions: upstream merges the image features into the embeddings itself and calls the backbone without
input ids, so transformers gives every token plain 1-D positions on all three rotary axes, not Qwen2.5-VL's
2-D image positions. The released weights were trained that way, so they are run that way here.

Scale: a reward is unbounded, and only differences between rewards mean something. It is mapped to 0-10 by
10 * sigmoid(reward): monotone, 5 at reward 0. SC comes from head 0, PQ from head 1, O from their mean (the
model's own "mean" pooling of the heads), so O is not sqrt(SC * PQ) here. Thresholds do not carry over from
VIEScore; compare runs scored by the same judge.

Loading: the checkpoint folder's model.safetensors (full weights, in either transformers key layout; a
model.pth is refused: nothing is unpickled) over the Qwen2.5-VL-7B-Instruct folder's config, tokenizer and
image processor. Nothing is downloaded.
"""

from __future__ import annotations

import copy
import io
import math
import threading
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from annotators.judge.result import JudgeResult
from annotators.mllm.editreward_prompts import FOLLOWING, QUALITY, REWARD_SUFFIX

REWARD_TOKEN = "<|Reward|>"
IMAGE_PIXELS = 256 * 28 * 28
SYSTEM = "You are a helpful assistant."
VERSION = 1  # bump with any change to the inputs or the scale: it is part of the judge's name


def reward_head(hidden_size: int, output_dim: int = 2) -> nn.Sequential:
    # The module indices (0, 3, 5) are the checkpoint's key names: rm_heads.head_i.{0,3,5}.{weight,bias}.
    return nn.Sequential(
        nn.Linear(hidden_size, 1024),
        nn.ReLU(),
        nn.Dropout(0.05),
        nn.Linear(1024, 16),
        nn.ReLU(),
        nn.Linear(16, output_dim),
    )


def render_prompt(prompt: str, image_tokens: list[int]) -> str:
    """Qwen2.5-VL's chat template for [image, image, text] with the generation prompt, the image pads
    expanded to each image's merged token count (what the processor does)."""
    images = "".join(f"<|vision_start|>{'<|image_pad|>' * n}<|vision_end|>" for n in image_tokens)
    return (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{images}{prompt}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


class EditRewardModel(nn.Module):
    """The Qwen2.5-VL backbone (no language-model head: only hidden states are read) and the reward heads."""

    def __init__(self, config: Any, heads: int = 2, output_dim: int = 2) -> None:
        from transformers import Qwen2_5_VLModel

        super().__init__()
        self.config = config
        self.model = Qwen2_5_VLModel(config)
        hidden = config.text_config.hidden_size
        self.rm_heads = nn.ModuleDict({f"head_{i}": reward_head(hidden, output_dim) for i in range(heads)})

    @torch.no_grad()
    def image_features(self, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor) -> torch.Tensor:
        """The merged vision tokens of all images, in order: [image tokens, hidden]. Both heads see the same
        images, so this runs once per sample."""
        features = self.model.get_image_features(pixel_values, image_grid_thw).pooler_output
        return torch.cat(list(features))

    @torch.no_grad()
    def forward(
        self, input_ids: torch.Tensor, image: torch.Tensor, head: int, reward_token_id: int
    ) -> torch.Tensor:
        """One prompt [1, L] and its image tokens -> the head's (mean, log sigma) at the reward token, [2]."""
        embeds = self.model.get_input_embeddings()(input_ids)  # [1, L, hidden]
        slots = (input_ids == self.config.image_token_id).unsqueeze(-1).expand_as(embeds)
        embeds = embeds.masked_scatter(slots, image.to(embeds.dtype))
        length = input_ids.shape[1]
        positions = torch.arange(length, device=input_ids.device).view(1, 1, length).expand(3, 1, length)
        hidden = self.model.language_model(
            inputs_embeds=embeds, attention_mask=torch.ones_like(input_ids), position_ids=positions
        ).last_hidden_state  # [1, L, hidden], final norm applied
        at = hidden[0][input_ids[0] == reward_token_id]  # [1, hidden]
        if at.shape[0] != 1:
            raise ValueError(f"expected one {REWARD_TOKEN} token in the prompt, found {at.shape[0]}")
        return self.rm_heads[f"head_{head}"](at.float())[0]


def _normalise_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Checkpoint keys -> this module's: the legacy layout (visual.*, model.layers.*) and the current one
    (model.visual.*, model.language_model.*) both load; the unused language-model head is dropped."""
    out = {}
    for key, value in state.items():
        if key.startswith("lm_head."):
            continue
        if key.startswith("visual."):
            key = "model." + key
        elif key.startswith("model.") and not key.startswith(("model.visual.", "model.language_model.")):
            key = "model.language_model." + key.removeprefix("model.")
        out[key] = value
    return out


class EditRewardJudge:
    """Thread-safe (one forward at a time): the filter and the eval call it from their worker threads."""

    def __init__(
        self, model: EditRewardModel, tokenizer: Any, image_processor: Any, name: str, language: str = "en"
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.language = language
        self.checkpoint = name
        self.reward_token_id = tokenizer.convert_tokens_to_ids(REWARD_TOKEN)
        self.merge = model.config.vision_config.spatial_merge_size
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"editreward:{self.checkpoint}:{self.language}:v{VERSION}"

    def with_language(self, language: str, prompt_language: str | None = None) -> EditRewardJudge:
        """The same model (and lock) judging another language's instructions; its prompts are English."""
        other = copy.copy(self)
        other.language = language
        return other

    def to_record(self) -> dict[str, Any]:
        param = next(self.model.parameters())
        return {
            "name": self.name,
            "model": self.checkpoint,
            "protocol": "editreward",
            "protocol_version": VERSION,
            "language": self.language,
            "scale": "10 * sigmoid(reward); O from the mean of the two heads' rewards",
            "device": str(param.device),
            "dtype": str(param.dtype).removeprefix("torch."),
        }

    @classmethod
    def load(
        cls, model_dir: str, base_dir: str | None, device: str | None = None, language: str = "en"
    ) -> EditRewardJudge:
        from accelerate import init_empty_weights
        from safetensors.torch import load_file
        from transformers import AutoImageProcessor, AutoTokenizer, Qwen2_5_VLConfig

        checkpoint = Path(model_dir)
        weights = checkpoint / "model.safetensors"
        if not weights.exists():
            found = (
                "model.pth (a pickle, which is never loaded)" if (checkpoint / "model.pth").exists() else ""
            )
            raise FileNotFoundError(
                f"missing {weights} (EditReward's full weights){'; found ' + found if found else ''}"
            )
        if base_dir is None or not (Path(base_dir) / "config.json").exists():
            raise FileNotFoundError(
                "EditReward needs the Qwen2.5-VL-7B-Instruct folder it was trained from "
                f"(--editreward-base); got {base_dir}"
            )
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        tokenizer = AutoTokenizer.from_pretrained(base_dir)
        tokenizer.add_special_tokens({"additional_special_tokens": [REWARD_TOKEN]})
        state = _normalise_keys(load_file(str(weights)))
        config = Qwen2_5_VLConfig.from_pretrained(base_dir)
        # Upstream resized the embeddings to the tokenizer with "<|Reward|>" added: the checkpoint's size.
        vocab = state["model.language_model.embed_tokens.weight"].shape[0]
        config.text_config.vocab_size = config.vocab_size = vocab
        with init_empty_weights():
            model = EditRewardModel(config)
        missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
        if missing or unexpected:
            raise ValueError(
                f"{weights}: {len(missing)} missing keys (e.g. {missing[:2]}), {len(unexpected)} unexpected "
                f"(e.g. {unexpected[:2]}): not an EditReward Qwen2.5-VL checkpoint"
            )
        model.model.to(device, dtype)
        model.rm_heads.to(device, torch.float32)
        image_processor = AutoImageProcessor.from_pretrained(base_dir)
        return cls(model, tokenizer, image_processor, checkpoint.name, language)

    def _pixels(self, data: bytes) -> tuple[torch.Tensor, torch.Tensor, int]:
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

        image = Image.open(io.BytesIO(data)).convert("RGB")
        factor = self.model.config.vision_config.patch_size * self.merge
        h, w = smart_resize(image.height, image.width, factor, IMAGE_PIXELS, IMAGE_PIXELS)
        image = image.resize((w, h), Image.Resampling.BICUBIC)
        out = self.image_processor(images=[image], return_tensors="pt")
        grid = out["image_grid_thw"]
        return out["pixel_values"], grid, int(grid.prod()) // self.merge**2

    def rewards(self, source: bytes, target: bytes, text: str) -> list[tuple[float, float]]:
        """(mean, log sigma) of head 0 (instruction following) and head 1 (visual quality)."""
        pixels, grids, tokens = zip(*(self._pixels(image) for image in (source, target)), strict=True)
        device = next(self.model.model.parameters()).device
        dtype = next(self.model.model.parameters()).dtype
        prompts = [
            render_prompt(prompt.format(text_prompt=text) + REWARD_SUFFIX, list(tokens))
            for prompt in (FOLLOWING, QUALITY)
        ]
        ids = [self.tokenizer(p, add_special_tokens=False, return_tensors="pt")["input_ids"] for p in prompts]
        with self._lock:
            image = self.model.image_features(
                torch.cat(pixels).to(device, dtype), torch.cat(grids).to(device)
            )
            out = [
                tuple(self.model(i.to(device), image, head, self.reward_token_id).tolist())
                for head, i in enumerate(ids)
            ]
        return out

    def judge(self, source: bytes, target: bytes, instruction: dict[str, str]) -> JudgeResult:
        text = instruction.get(self.language) or ""
        if not text:
            details = {"language": self.language, "instruction": text}
            return JudgeResult.failed(f"no_{self.language}_instruction", details)
        return self.judge_text(source, target, text)

    def judge_text(self, source: bytes, target: bytes, text: str) -> JudgeResult:
        (following, log_sigma_f), (quality, log_sigma_q) = self.rewards(source, target, text)
        overall = (following + quality) / 2
        details = {
            "language": self.language,
            "instruction": text,
            "reward_following": following,
            "reward_quality": quality,
            "reward_overall": overall,
            "log_sigma_following": log_sigma_f,
            "log_sigma_quality": log_sigma_q,
        }
        return JudgeResult.scored(_to_ten(following), _to_ten(quality), details, o=_to_ten(overall))


def _to_ten(reward: float) -> float:
    return 10.0 / (1.0 + math.exp(-reward))
