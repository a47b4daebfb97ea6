"""The `text_render` tool: text drawn as anti-aliased coverage with Pillow's FreeType renderer, in one of a
few installed font families, so that a task can pick the one that looks most like the text it replaces.

Fonts are Debian packages (the Makefile's system-deps): fonts-liberation (Liberation Sans, Sans Narrow and
Serif, regular and bold: metric twins of Arial, Arial Narrow and Times, the faces of most signs and labels)
and fonts-wqy-microhei (WenQuanYi Micro Hei, for Chinese, and for Latin beside Chinese). A missing font is a
one-line error before any work starts.
"""

from __future__ import annotations

import os
from functools import lru_cache

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
}
CJK_FONTS = {"cjk": "wqy/wqy-microhei.ttc"}
DEBIAN_PACKAGES = {"liberation": "fonts-liberation", "wqy": "fonts-wqy-microhei"}


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
        self.paths = {
            name: os.path.join(font_root, rel) for name, rel in {**LATIN_FONTS, **CJK_FONTS}.items()
        }
        self._require(self.paths)

    @classmethod
    def check(cls, models_dir: str | None) -> None:
        cls._require(
            {name: os.path.join(FONT_ROOT, rel) for name, rel in {**LATIN_FONTS, **CJK_FONTS}.items()}
        )

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

    def __call__(self, text: str, font: str, size_px: float) -> RenderedText:
        face = _font(self.paths[font], max(4, round(size_px)))
        left, top, right, bottom = face.getbbox(text, anchor="ls")  # relative to the baseline's start
        pad = 2
        width, height = right - left + 2 * pad, bottom - top + 2 * pad
        canvas = Image.new("L", (max(1, width), max(1, height)), 0)
        origin = (pad - left, pad - top)
        ImageDraw.Draw(canvas).text(origin, text, fill=255, font=face, anchor="ls")
        coverage = np.asarray(canvas, np.float32) / 255.0
        return RenderedText(
            coverage=coverage,
            origin=(float(origin[0]), float(origin[1])),
            ink=(pad, pad, pad + right - left, pad + bottom - top),
        )
