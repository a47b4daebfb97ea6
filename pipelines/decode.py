"""Turning source bytes into a normalised RGB photo, or a reject with its reason.

Valid but unusual images are converted, not rejected: CMYK, 16-bit, greyscale, palette, alpha (composited
onto neutral grey), EXIF-rotated (rotation applied), animated (first frame), and any file whose name lies
about its format (Pillow reads the content, not the name). Broken or hostile files become a
`DecodeError` whose `reason` is a short code stored in the rejects table.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Alpha is composited onto mid-grey: black or white would invent a strong edge around cut-outs.
NEUTRAL_BACKGROUND = (128, 128, 128)


@dataclass(frozen=True)
class DecodeLimits:
    min_side: int = 64
    max_pixels: int = 64_000_000  # larger is treated as a decompression bomb
    max_bytes: int = 100_000_000


class DecodeError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.sha256: str | None = None  # set once the bytes were read, so the reject row can carry it


def _to_8bit(image: Image.Image) -> Image.Image:
    """Modes with more than 8 bits per channel (I;16*, I, F) scaled into 0..255 instead of clipped."""
    array = np.asarray(image)
    if array.dtype == np.uint8:
        return image
    values = array.astype(np.float64)
    if image.mode.startswith("I;16") or (image.mode == "I" and values.max() <= 65535 and values.min() >= 0):
        scaled = values / 257.0
    else:  # float or 32-bit data: stretch its own range
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / max(high - low, 1e-12) * 255.0
    return Image.fromarray(np.clip(np.round(scaled), 0, 255).astype(np.uint8), mode="L")


def _to_rgb(image: Image.Image, notes: list[str]) -> Image.Image:
    if image.mode == "P":
        has_alpha = "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
        notes.append("palette")
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = _to_8bit(image)
        notes.append("high_bit_depth")
    if image.mode == "CMYK":
        image = image.convert("RGB")
        notes.append("cmyk")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*NEUTRAL_BACKGROUND, 255))
        image = Image.alpha_composite(background, rgba).convert("RGB")
        notes.append("alpha_composited")
    if image.mode in ("L", "1"):
        notes.append("greyscale")
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image


def decode_image(data: bytes, limits: DecodeLimits = DecodeLimits()) -> tuple[np.ndarray, list[str]]:
    """Decode ``data`` to an HxWx3 uint8 array; returns the array and the conversions applied."""
    if len(data) == 0:
        raise DecodeError("empty_file", "the file has zero bytes")
    if len(data) > limits.max_bytes:
        raise DecodeError("file_too_large", f"{len(data)} bytes > limit {limits.max_bytes}")
    notes: list[str] = []
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that: make every size over our limit fatal.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        previous_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = limits.max_pixels
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > limits.max_pixels:
                raise DecodeError(
                    "decompression_bomb", f"{image.width}x{image.height} pixels > limit {limits.max_pixels}"
                )
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)
                notes.append("animated_first_frame")
            image.load()
            orientation = image.getexif().get(0x0112, 1)
            image = ImageOps.exif_transpose(image)
            if orientation not in (1, None):
                notes.append(f"exif_rotated_{orientation}")
            image = _to_rgb(image, notes)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise DecodeError("decompression_bomb", str(error)) from None
        except UnidentifiedImageError:
            raise DecodeError("not_an_image", "the content is not an image format Pillow can read") from None
        except (OSError, SyntaxError, ValueError) as error:
            text = str(error)
            reason = "truncated" if "truncated" in text or "broken data stream" in text else "decode_error"
            raise DecodeError(reason, text) from None
        finally:
            Image.MAX_IMAGE_PIXELS = previous_limit
    if min(image.size) < limits.min_side:
        raise DecodeError("too_small", f"{image.width}x{image.height} < {limits.min_side} px on a side")
    return np.asarray(image, dtype=np.uint8).copy(), notes
