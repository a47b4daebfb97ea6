"""The `text_render` tool: text drawn as anti-aliased coverage with Pillow's FreeType renderer, in one of a
few installed font families, so that a task can pick the one that looks most like the text it replaces.

Fonts are Debian packages (the Makefile's system-deps): fonts-liberation (Liberation Sans, Sans Narrow and
Serif, regular and bold: metric twins of Arial, Arial Narrow and Times, the faces of most signs and labels),
fonts-dejavu-core (DejaVu Sans in extra-light, regular and bold, condensed, and DejaVu Serif), and
fonts-wqy-microhei (WenQuanYi Micro Hei, for Chinese, and for Latin beside Chinese). A missing font is a
one-line error before any work starts.
"""

from __future__ import annotations

import os
from functools import lru_cache

import cv2
import numpy as np
import PIL
from PIL import Image, ImageDraw, ImageFont

from annotators.registry import Plugin, PluginUnavailable, Resources
from tasks.tools import RenderedText

BACKENDS = {"offline": "annotators.text_render:PillowTextRenderer"}

FONT_ROOT = "/usr/share/fonts/truetype"
LATIN_FONTS = {
    "sans": "liberation/LiberationSans-Regular.ttf",
    "sans-bold": "liberation/LiberationSans-Bold.ttf",
    "narrow": "liberation/LiberationSansNarrow-Regular.ttf",
    "narrow-bold": "liberation/LiberationSansNarrow-Bold.ttf",
    "serif": "liberation/LiberationSerif-Regular.ttf",
    "serif-bold": "liberation/LiberationSerif-Bold.ttf",
    # DejaVu: more weights and widths (an extra-light, condensed regular and bold, a condensed serif), so
    # that the face chosen can match the stroke weight of the line as well as its letter shapes
    "dejavu-sans": "dejavu/DejaVuSans.ttf",
    "dejavu-sans-light": "dejavu/DejaVuSans-ExtraLight.ttf",
    "dejavu-sans-bold": "dejavu/DejaVuSans-Bold.ttf",
    "dejavu-condensed": "dejavu/DejaVuSansCondensed.ttf",
    "dejavu-condensed-bold": "dejavu/DejaVuSansCondensed-Bold.ttf",
    "dejavu-serif": "dejavu/DejaVuSerif.ttf",
    "dejavu-serif-bold": "dejavu/DejaVuSerif-Bold.ttf",
    "dejavu-serif-condensed": "dejavu/DejaVuSerifCondensed.ttf",
}
CJK_FONTS = {"cjk": "wqy/wqy-microhei.ttc"}
SUPERSAMPLE = 4  # small text is drawn this many times larger, then averaged down
SUPERSAMPLED_PX = 160  # the drawn size supersampling aims at: beyond it, a whole-pixel stem is exact enough
INK_LEVEL = 0.35  # coverage above which a pixel is counted in the ink's box
DEBIAN_PACKAGES = {
    "liberation": "fonts-liberation",
    "wqy": "fonts-wqy-microhei",
    "dejavu": "fonts-dejavu-core",
}


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds a CJK ideograph or CJK punctuation (then only the CJK font draws it)."""
    return any(
        "\u3000" <= ch <= "\u30ff" or "\u3400" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef" for ch in text
    )


def font_paths(root: str) -> dict[str, str]:
    return {name: os.path.join(root, rel) for name, rel in {**LATIN_FONTS, **CJK_FONTS}.items()}


@lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


class PillowTextRenderer(Plugin):
    name = "pillow_freetype"
    version = f"pillow-{PIL.__version__}"
    resources = Resources(num_cpus=1.0)

    def __init__(self, models_dir: str | None = None, font_root: str = FONT_ROOT) -> None:
        super().__init__(models_dir)
        self.paths = font_paths(font_root)
        self._require(self.paths)

    @classmethod
    def check(cls, models_dir: str | None) -> None:
        cls._require(font_paths(FONT_ROOT))

    @staticmethod
    def _require(paths: dict[str, str]) -> None:
        for path in paths.values():
            if not os.path.isfile(path):
                package = DEBIAN_PACKAGES[os.path.basename(os.path.dirname(path))]
                raise PluginUnavailable(
                    f"text_render needs the font {path}: apt-get install {package} (make system-deps)"
                )

    def fonts(self, text: str) -> tuple[str, ...]:
        return tuple(CJK_FONTS) if has_cjk(text) else tuple(LATIN_FONTS)

    def __call__(self, text: str, font: str, size_px: float, stroke_offset_px: float = 0.0) -> RenderedText:
        # Drawn SUPERSAMPLE times larger and averaged down: the outlines' true stroke widths and positions
        # (FreeType's hinting at 12 px snaps every stem to a whole pixel, a regular face then as heavy as a
        # semibold one), and room to move the outlines by a fraction of a pixel. Large lettering has stems
        # many pixels wide, where a pixel's snap hardly shows: it is drawn at no more than SUPERSAMPLED_PX,
        # as the outline offset's distance transforms cost the square of the drawn size.
        scale = max(1, min(SUPERSAMPLE, round(SUPERSAMPLED_PX / max(size_px, 1.0))))
        face = _font(self.paths[font], max(4 * scale, round(size_px * scale)))
        left, top, right, bottom = face.getbbox(text, anchor="ls")  # relative to the baseline's start
        grow = max(0, int(np.ceil(stroke_offset_px * scale)))
        pad = 2 * scale + grow  # a whole number of output pixels of margin, plus the outlines' growth
        # The canvas is a whole number of output pixels: the ink starts pad high-resolution pixels in.
        width = -(-(right - left + 2 * pad) // scale) * scale
        height = -(-(bottom - top + 2 * pad) // scale) * scale
        canvas = Image.new("L", (width, height), 0)
        origin = (pad - left, pad - top)
        ImageDraw.Draw(canvas).text(origin, text, fill=255, font=face, anchor="ls")
        coverage = np.asarray(canvas, np.float32) / 255.0
        if stroke_offset_px:
            coverage = _offset_outlines(coverage, stroke_offset_px * scale)
        small = cv2.resize(coverage, (width // scale, height // scale), interpolation=cv2.INTER_AREA)
        # The ink's box as a reader's threshold sees it (coverage over INK_LEVEL), the way a task measures
        # the box of the text it replaces: the faint rim of anti-aliasing is not part of a letter's height.
        rows = np.nonzero((small > INK_LEVEL).any(axis=1))[0]
        cols = np.nonzero((small > INK_LEVEL).any(axis=0))[0]
        ink = (
            (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
            if rows.size
            else (0, 0, small.shape[1], small.shape[0])
        )
        return RenderedText(coverage=small, origin=(origin[0] / scale, origin[1] / scale), ink=ink)


def _offset_outlines(coverage: np.ndarray, offset: float) -> np.ndarray:
    """Coverage whose outlines moved outwards by ``offset`` pixels (negative: inwards), from the signed
    distance to the outline: a pixel is covered by how far inside the moved outline it is (one-pixel ramp)."""
    inside = (coverage >= 0.5).astype(np.uint8)
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 5) - cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
    return np.clip(depth + offset + 0.5, 0.0, 1.0).astype(np.float32)
