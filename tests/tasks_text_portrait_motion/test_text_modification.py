"""text_modification on a real photo with printed text (examples/text_modification/cookie_box.png): words
replaced in the old text's style and read back by the OCR, Chinese text, the replacement vocabulary, the
OCR's models backend, and the one-line errors for missing fonts and models."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import PHOTOS, TEXT_PHOTO, rgb
from PIL import Image, ImageDraw, ImageFont

from annotators.registry import PluginUnavailable
from tasks import text_modification as text
from tasks.records import Skip, SourceSample
from tasks.text_edit import TextEditError, WordEditor, stroke_width
from tasks.text_vocabulary import match_case, number_replacement, word_replacements
from tasks.tools import Tools


@pytest.fixture(scope="module")
def tools(ocr, renderer) -> Tools:  # noqa: ANN001
    return Tools(ocr=ocr, text_render=renderer)


@pytest.fixture(scope="module")
def box_pairs(tools: Tools) -> list:
    source = SourceSample(uri="cookie_box.png", sha256="box", image=rgb(TEXT_PHOTO))
    result = text.make_pairs(source, text.Params(), tools, seed=0)
    assert not isinstance(result, Skip), result
    return result


def test_words_are_replaced_and_read_back(box_pairs: list, ocr) -> None:  # noqa: ANN001
    line_texts = text.normalise("".join(line.text for line in ocr(rgb(TEXT_PHOTO))))
    forward = [c for c in box_pairs if not c.params["inverse"]]
    assert len(forward) == text.Params().max_edits
    for candidate in forward:
        old, new = candidate.params["old"], candidate.params["new"]
        assert old != new
        assert f'"{old}"' in candidate.instruction["en"] and f'"{new}"' in candidate.instruction["en"]
        assert f'"{old}"' in candidate.instruction["zh"] and f'"{new}"' in candidate.instruction["zh"]
        mask = candidate.mask
        assert mask.any() and mask.mean() < 0.05
        assert np.array_equal(candidate.source[~mask], candidate.target[~mask])
        # An independent full OCR pass over the edited photo finds the new word, and the old one is gone.
        read = text.normalise("".join(line.text for line in ocr(candidate.target)))
        assert text.normalise(new) in read
        assert read.count(text.normalise(old)) < line_texts.count(text.normalise(old))


def test_inverse_pairs_have_the_photo_as_target(box_pairs: list) -> None:
    photo = rgb(TEXT_PHOTO)
    inverse = [c for c in box_pairs if c.params["inverse"]]
    assert len(inverse) == len(box_pairs) // 2
    for candidate in inverse:
        assert np.array_equal(candidate.target, photo)
        assert candidate.instruction["en"].index(f'"{candidate.params["new"]}"') < candidate.instruction[
            "en"
        ].index(f'"{candidate.params["old"]}"')


def test_chinese_text_is_replaced_with_chinese(tools: Tools, renderer) -> None:  # noqa: ANN001
    # A real photo's sky with a Chinese sign printed on it (the shipped photos have no Chinese text).
    photo = Image.fromarray(rgb(PHOTOS / "camera.png")[:100, 270:512].copy())
    font = ImageFont.truetype(renderer.paths["cjk"], 34)
    ImageDraw.Draw(photo).text((40, 28), "欢迎光临", font=font, fill=(40, 30, 30))
    source = SourceSample(uri="sign.png", sha256="sign", image=np.asarray(photo))
    params = text.Params(kinds=("zh_zh",), inverse_pairs=False)
    result = text.make_pairs(source, params, tools, seed=0)
    assert not isinstance(result, Skip), result
    (candidate,) = result
    assert candidate.params["old"] == "欢迎光临" and candidate.params["kind"] == "zh_zh"
    assert candidate.params["font"] == "cjk"
    read = text.normalise("".join(line.text for line in tools["ocr"](candidate.target)))
    assert text.normalise(candidate.params["new"]) in read and "欢迎光临" not in read


def test_a_photo_without_text_is_skipped(tools: Tools) -> None:
    source = SourceSample(uri="chelsea.png", sha256="cat", image=rgb(PHOTOS / "chelsea.png"))
    result = text.make_pairs(source, text.Params(), tools, seed=0)
    assert isinstance(result, Skip) and result.reason == "no_text"


def test_replacements_keep_their_format() -> None:
    rng = np.random.default_rng(0)
    kind, price = number_replacement("$19.99", rng)
    assert (
        kind == "price"
        and price.startswith("$")
        and len(price) == 6
        and price[3] == "."
        and price != "$19.99"
    )
    kind, date = number_replacement("2024-05-01", rng)
    assert kind == "date" and len(date) == 10 and date[4] == date[7] == "-"
    assert number_replacement("C68", rng)[0] == "code" and number_replacement("hello", rng) is None
    options = dict(word_replacements("OPEN", rng))
    assert options["en_zh"] == "营业中" and options["en_en"].isupper()
    assert dict(word_replacements("营业中", rng))["zh_en"].isascii()
    assert match_case("walnut", "Almond") == "Walnut" and match_case("walnut", "ALMOND") == "WALNUT"


def test_verify_needs_the_new_text_and_not_the_old() -> None:
    assert text.verify("Crisp Walnut Cookies", "Crisp Almond Cookies", "Almond", "Walnut", 0.75) is None
    assert text.verify("Crisp Almond Cookies", "Crisp Almond Cookies", "Almond", "Walnut", 0.75) == (
        "new_text_unreadable"
    )
    assert text.verify("Crisp Walnut Almond", "Crisp Almond Cookies", "Almond", "Walnut", 0.75) == (
        "old_text_still_readable"
    )
    # A letter of the next word erased with the old one (the OCR still finds the new word).
    assert text.verify("Crisp Walnut ookies", "Crisp Almond Cookies", "Almond", "Walnut", 0.75) == (
        "neighbours_changed"
    )
    # The second of two equal words replaced: the rest of the line is still the photo's.
    assert text.verify("of the big dog", "of the the dog", "the", "big", 0.75) is None


def _lightness(image: np.ndarray, where: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2LAB)[..., 0][where].astype(np.float32) * (100 / 255)


def test_new_text_is_as_dark_and_heavy_as_the_old(box_pairs: list) -> None:
    # Within a script (a Chinese word holds more ink than the Latin word it replaces).
    latin = [c for c in box_pairs if not c.params["inverse"] and c.params["font"] != "cjk"]
    assert latin
    for candidate in latin:
        mask = candidate.mask
        old, new = _lightness(candidate.source, mask), _lightness(candidate.target, mask)
        # Dark text on the light box: its darkest twentieth (the stroke cores) is the text's colour...
        assert abs(np.percentile(old, 5) - np.percentile(new, 5)) < 12, candidate.params
        # ...and the share of the edited region that is ink about the same (the words differ in length).
        background = np.median(old)
        old_ink = float(np.mean(old < background - 25))
        new_ink = float(np.mean(new < background - 25))
        assert 0.5 < new_ink / old_ink < 2.0, (candidate.params, old_ink, new_ink)


def test_the_gates_switch_turns_the_read_back_off(tools: Tools, monkeypatch: pytest.MonkeyPatch) -> None:
    # An OCR that cannot read the edited line: every edit fails the read-back, unless the gates are off.
    source = SourceSample(uri="cookie_box.png", sha256="box", image=rgb(TEXT_PHOTO))
    monkeypatch.setattr(type(tools["ocr"]), "read_line", lambda self, image: ("", 0.0))
    gated = text.make_pairs(source, text.Params(inverse_pairs=False), tools, seed=0)
    assert isinstance(gated, Skip) and "new_text_unreadable" in gated.detail, gated
    ungated = text.make_pairs(source, text.Params(inverse_pairs=False, gates=False), tools, seed=0)
    assert not isinstance(ungated, Skip) and len(ungated) == text.Params().max_edits


def test_a_missing_font_is_a_one_line_error(tmp_path: Path) -> None:
    from annotators.text_render import FONT_ROOT, LATIN_FONTS, PillowTextRenderer

    for relative in LATIN_FONTS.values():  # the Latin fonts are there, the CJK one is not
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(FONT_ROOT) / relative, tmp_path / relative)
    with pytest.raises(PluginUnavailable) as missing:
        PillowTextRenderer(font_root=str(tmp_path))
    assert "fonts-wqy-microhei" in str(missing.value) and "\n" not in str(missing.value)


def test_ocr_models_backend_reads_onnx_models_from_the_models_folder(tmp_path: Path) -> None:
    import rapidocr

    from annotators.ocr import PaddleServerOCR

    with pytest.raises(PluginUnavailable) as missing:
        PaddleServerOCR.check(str(tmp_path))
    assert "PP-OCRv5_server_det" in str(missing.value)
    # PP-OCR models exported to ONNX, in the models folder's layout: the ones rapidocr ships will do.
    bundled = Path(rapidocr.__file__).parent / "models"
    for folder, pattern in (("PP-OCRv5_server_det", "*det*.onnx"), ("PP-OCRv5_server_rec", "*rec*.onnx")):
        (tmp_path / folder).mkdir()
        shutil.copy(next(bundled.glob(pattern)), tmp_path / folder / "inference.onnx")
    PaddleServerOCR.check(str(tmp_path))
    reader = PaddleServerOCR(str(tmp_path))
    lines = reader(rgb(TEXT_PHOTO))
    assert "cookies" in text.normalise("".join(line.text for line in lines))


class _OnlyFaces:
    """The real renderer, offering only some of its faces (as on a system where only those are installed)."""

    def __init__(self, renderer, faces: tuple[str, ...]) -> None:  # noqa: ANN001
        self.renderer, self.faces = renderer, faces

    def fonts(self, text: str) -> tuple[str, ...]:
        return tuple(f for f in self.renderer.fonts(text) if f in self.faces)

    def __call__(self, text: str, font: str, size_px: float, stroke_offset_px: float = 0.0):  # noqa: ANN204
        return self.renderer(text, font, size_px, stroke_offset_px)


def _replace(ocr, renderer, word: str, new: str):  # noqa: ANN001, ANN202
    """``word`` of the cookie box replaced by ``new`` as the task does it (its line's words as context)."""
    image = rgb(TEXT_PHOTO)
    spans, _ = text.find_spans(ocr(image), text.Params(), np.random.default_rng(0))
    span = next(s for s in spans if s.old == word)
    geometry, context = text.span_geometry(span, text.Params().font_context)
    return WordEditor(renderer).replace(image, geometry, span.old, new, context)


def test_bold_strokes_are_measured_thicker_than_regular_ones(renderer) -> None:  # noqa: ANN001
    # At 20 px (below, strokes under two pixels wide all read about two: see stroke_width).
    def stroke(font: str, offset: float = 0.0) -> float:
        return stroke_width([renderer("Product of Italy", font, 20.0, offset).coverage])

    for regular in ("sans", "serif", "dejavu-sans"):
        bold = f"{regular}-bold"
        assert stroke(bold) > 1.2 * stroke(regular), (regular, stroke(regular), stroke(bold))
    # Moving the outlines out thickens the strokes, moving them in thins them.
    assert stroke("sans", -0.3) < stroke("sans") < stroke("sans", 0.3)


def test_the_face_matches_the_line_stroke_weight(ocr, renderer) -> None:  # noqa: ANN001
    # "Product of Italy" is printed in a heavy sans on the box (strokes about a sixth of the line's height):
    # a bold face, its strokes as thick as the line's.
    edit = _replace(ocr, renderer, "Italy", "Spain")
    assert "bold" in edit.font, edit.font
    assert 1 / 1.15 <= edit.weight <= 1.15, edit.weight


def test_a_line_no_face_matches_is_rejected_with_its_reason(ocr, renderer) -> None:  # noqa: ANN001
    # Only the extra-light face to draw with: the heavy line's weight cannot be matched, and the edit says so.
    light_only = _OnlyFaces(renderer, ("dejavu-sans-light",))
    with pytest.raises(TextEditError) as unmatched:
        _replace(ocr, light_only, "Italy", "Spain")
    assert unmatched.value.reason in ("text_weight_unmatched", "text_style_unmatched"), unmatched.value
    assert "\n" not in str(unmatched.value)
