"""Qwen2.5-VL instruction encoder, exactly as Step1X-Edit builds its prompt.

Prompt: the default Qwen system block, the Step1X PREFIX, "Picture 1: " + the image at 256-324 merged visual
tokens, then the instruction. The last hidden state is taken, the first 217 tokens (system block + prefix)
are dropped and the rest zero-padded to 640 with a mask. Quoted text after the prefix is re-tokenised one
character at a time (Step1X's trick for text edits), including its quirk: an odd number of quotes leaves
the quote open to the end, so the template tail is tokenised as literal characters too.

Image preprocessing follows the Qwen2-VL image processor's documented algorithm with numpy/PIL (smart
resize to multiples of 28, 14-pixel patches, temporal patch 2, 2x2 merge, CLIP mean/std), so no
torchvision is needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

PREFIX = (
    'Given a user prompt, generate an "Enhanced prompt" that provides detailed visual descriptions '
    "suitable for image generation. Evaluate the level of detail in the user prompt:\n"
    "- If the prompt is simple, focus on adding specifics about colors, shapes, sizes, textures, and spatial "
    "relationships to create vivid and concrete scenes.\n"
    "- If the prompt is already detailed, refine and enhance the existing details slightly without "
    "overcomplicating.\n\n"
    "Here are examples of how to transform or refine prompts:\n"
    "- User Prompt: A cat sleeping -> Enhanced: A small, fluffy white cat curled up in a round shape, "
    "sleeping peacefully on a warm sunny windowsill, surrounded by pots of blooming red flowers.\n"
    "- User Prompt: A busy city street -> Enhanced: A bustling city street scene at dusk, featuring glowing "
    "street lamps, a diverse crowd of people in colorful clothing, and a double-decker bus passing by "
    "towering glass skyscrapers.\n\n"
    "Please generate only the enhanced description for the prompt below and avoid including any additional "
    "commentary or evaluations:\n"
    "User Prompt:"
)
SYSTEM = "You are a helpful assistant."
DROP_TOKENS = 217  # system block (14) + PREFIX (204) - 1: index 217 is the final ":" of "User Prompt:"
MAX_LENGTH = 640
MIN_PIXELS = 256 * 28 * 28
MAX_PIXELS = 324 * 28 * 28
QUOTE_GUARD = 155  # quotes at or before this string index (the "Enhanced prompt" ones) are not split
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def render_prompt(instruction: str) -> str:
    """The string Qwen's chat template renders for [PREFIX, image, instruction] with add_vision_id."""
    return (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{PREFIX}"
        f"Picture 1: <|vision_start|><|image_pad|><|vision_end|>{instruction}"
        "<|im_end|>\n<|im_start|>assistant\n"
    )


def split_quoted(text: str) -> list[str]:
    """Segments to tokenise: plain runs, and one wrapped “c” segment per character inside quotes.

    ', “ and ” all become ". A quote past QUOTE_GUARD toggles the quoted state; the quote character stays in
    the plain segment it ends or starts.
    """
    text = text.replace("“", '"').replace("”", '"').replace("'", '"')
    segments: list[str] = []
    plain = ""
    quoted = False
    for i, ch in enumerate(text):
        if ch == '"' and i > QUOTE_GUARD:
            plain += ch
            if not quoted:  # an opening quote closes the plain run before the quoted characters
                segments.append(plain)
                plain = ""
            quoted = not quoted
        elif quoted:
            segments.append(f"“{ch}”")
        else:
            plain += ch
    if plain:
        segments.append(plain)
    return segments


def smart_resize(
    height: int, width: int, factor: int = 28, min_pixels: int = MIN_PIXELS, max_pixels: int = MAX_PIXELS
) -> tuple[int, int]:
    """Qwen2-VL's resize rule: sides multiples of `factor`, area within [min_pixels, max_pixels]."""
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


def qwen_pixel_values(
    image: Image.Image,
    patch: int = 14,
    temporal: int = 2,
    merge: int = 2,
    min_pixels: int = MIN_PIXELS,
    max_pixels: int = MAX_PIXELS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PIL image -> (pixel_values [grid_h*grid_w, 3*temporal*patch*patch], image_grid_thw [1, 3])."""
    h, w = smart_resize(image.height, image.width, patch * merge, min_pixels, max_pixels)
    x = np.asarray(image.convert("RGB").resize((w, h), Image.BICUBIC), dtype=np.float32) / 255.0
    x = ((x - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1)  # [3, h, w]
    x = np.repeat(x[None], temporal, axis=0)  # a still image is repeated to fill one temporal patch
    gh, gw = h // patch, w // patch
    x = x.reshape(1, temporal, 3, gh // merge, merge, patch, gw // merge, merge, patch)
    # order tokens merge-window by merge-window so the 2x2 merger sees neighbours contiguously
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(gh * gw, 3 * temporal * patch * patch)
    return torch.from_numpy(np.ascontiguousarray(x)), torch.tensor([[1, gh, gw]])


@dataclass
class MLLMTokens:
    """One encoded prompt: input ids [1, L] with the image pads expanded, pixel values and grid."""

    input_ids: torch.Tensor
    pixel_values: torch.Tensor
    image_grid_thw: torch.Tensor


class Step1XMLLMEncoder:
    """Frozen Qwen2.5-VL -> ([B, 640, hidden] embeddings, [B, 640] mask).

    `model` is a `Qwen2_5_VLModel` or a `Qwen2_5_VLForConditionalGeneration`, of which only the backbone is
    kept: Step1X reads the last hidden state, so the 0.5 B-parameter output head (1 GiB in bf16) would only
    take memory. `tokenizer` is a Qwen2 tokenizer whose added tokens include the Qwen vision specials.
    `image_processor`, when given (the checkpoint's own Qwen2-VL image processor, created with min/max
    pixels 256*28*28 / 324*28*28), replaces the built-in numpy preprocessing.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        max_length: int = MAX_LENGTH,
        drop_tokens: int = DROP_TOKENS,
        image_processor=None,
    ) -> None:
        backbone = model.model if hasattr(model, "lm_head") else model
        self.model = backbone.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.drop_tokens = drop_tokens
        self.image_processor = image_processor
        cfg = backbone.config
        self.image_token_id = cfg.image_token_id
        self.vision_end_id = cfg.vision_end_token_id
        vision = cfg.vision_config
        self.patch, self.temporal, self.merge = (
            vision.patch_size,
            vision.temporal_patch_size,
            vision.spatial_merge_size,
        )
        # The reference strips the ids of the wrapping quotes (2073, 854 in Qwen's vocabulary).
        self.open_quote = self._ids("“")
        self.close_quote = self._ids("”")

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def tokenize(self, image: Image.Image, instruction: str) -> MLLMTokens:
        if self.image_processor is not None:
            processed = self.image_processor(images=[image.convert("RGB")], return_tensors="pt")
            pixel_values, grid = processed["pixel_values"], processed["image_grid_thw"]
        else:
            pixel_values, grid = qwen_pixel_values(image, self.patch, self.temporal, self.merge)
        n_image_tokens = int(grid.prod()) // self.merge**2
        text = render_prompt(instruction)
        full = self._ids(text.replace("<|image_pad|>", "<|image_pad|>" * n_image_tokens))
        retok: list[int] = []
        for seg in split_quoted(text):
            ids = self._ids(seg)
            if (
                len(ids) >= 2
                and ids[: len(self.open_quote)] == self.open_quote
                and ids[-len(self.close_quote) :] == self.close_quote
            ):
                ids = ids[len(self.open_quote) : -len(self.close_quote)]
            retok.extend(ids)
        # processor ids up to the first <|vision_end|>, then the re-tokenised ids from it onwards
        ids = full[: full.index(self.vision_end_id)] + retok[retok.index(self.vision_end_id) :]
        return MLLMTokens(torch.tensor([ids]), pixel_values, grid)

    @torch.no_grad()
    def __call__(
        self, images: list[Image.Image], instructions: list[str]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        device = next(self.model.parameters()).device
        dtype = next(self.model.parameters()).dtype
        hidden = self.model.config.text_config.hidden_size
        embeds = torch.zeros(len(images), self.max_length, hidden, dtype=dtype, device=device)
        mask = torch.zeros(len(images), self.max_length, dtype=torch.long, device=device)
        for i, (image, instruction) in enumerate(zip(images, instructions, strict=True)):
            tok = self.tokenize(image, instruction)
            input_ids = tok.input_ids.to(device)
            out = self.model(
                input_ids=input_ids,
                # the reference masks with ids > 0 (so a literal "!" token, id 0, is masked too)
                attention_mask=(input_ids > 0).long(),
                pixel_values=tok.pixel_values.to(device, dtype),
                image_grid_thw=tok.image_grid_thw.to(device),
                mm_token_type_ids=(input_ids == self.image_token_id).int(),  # enables the 3-D mRoPE ids
            )
            # the final-normed last layer: what the reference's hidden_states[-1] is
            states = out.last_hidden_state[0, self.drop_tokens :][: self.max_length]  # [<=640, hidden]
            embeds[i, : states.shape[0]] = states
            mask[i, : states.shape[0]] = 1
        return embeds, mask
