"""The offline judge on real text edits: a word the text task replaced on cookie_box.png scores higher than
the same edit with the new word drawn bolder, blurred or taller, or with the old word's tail beside it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import TEXT_PHOTO, rgb

from annotators.judge.heuristic import HeuristicJudge
from tasks import text_modification as text
from tasks.records import Skip, SourceSample
from tasks.tools import Tools

judge = HeuristicJudge()


@pytest.fixture(scope="module")
def number_edit(ocr, renderer):  # noqa: ANN001, ANN201
    """One forward pair of the text task on the real box photo: a number on a line of Latin print ("NET WT
    8.8 OZ") replaced by another."""
    source = SourceSample(uri="cookie_box.png", sha256="box", image=rgb(TEXT_PHOTO))
    params = text.Params(kinds=("number",), inverse_pairs=False, max_edits=1)
    result = text.make_pairs(source, params, Tools(ocr=ocr, text_render=renderer), seed=0)
    assert not isinstance(result, Skip), result
    return result[0]


def _in_word(candidate, changed: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """The target with `changed` pasted inside the edited word's mask."""
    return np.where(candidate.mask[..., None], changed, candidate.target)


def test_a_word_drawn_unlike_its_line_scores_lower(number_edit) -> None:  # noqa: ANN001
    clean = judge.judge(number_edit.source, number_edit.target, number_edit.instruction)
    assert clean.details["new_text_read"] == 1 and clean.details["old_text_gone"] == 1, clean.details
    assert clean.o > 7, clean.details
    # Dark print on a light box: a minimum filter widens every stroke of the new word (a bold face).
    bold = _in_word(number_edit, cv2.erode(number_edit.target, np.ones((5, 5), np.uint8)))
    blurred = _in_word(number_edit, cv2.GaussianBlur(number_edit.target, (0, 0), 2.5))
    for name, target in (("bold", bold), ("blurred", blurred)):
        worse = judge.judge(number_edit.source, target, number_edit.instruction)
        assert worse.details["word_stroke_off"] > clean.details["word_stroke_off"] + 0.2, (
            name,
            worse.details,
        )
        assert worse.o < clean.o - 1.5, (name, clean.o, worse.o)


def test_the_old_word_left_beside_the_new_one_scores_lower(number_edit) -> None:  # noqa: ANN001
    clean = judge.judge(number_edit.source, number_edit.target, number_edit.instruction)
    ys, xs = np.nonzero(number_edit.mask)
    # The old word's right half is back (the fill stopped half way): neither word reads cleanly there.
    tail = number_edit.mask & (np.arange(number_edit.mask.shape[1])[None, :] > (xs.min() + xs.max()) // 2)
    remnant = np.where(tail[..., None], number_edit.source, number_edit.target)
    left = judge.judge(number_edit.source, remnant, number_edit.instruction)
    assert not (left.details["new_text_read"] and left.details["old_text_gone"]), left.details
    assert left.o < clean.o - 3, (clean.o, left.o)


def test_a_word_taller_than_the_one_it_replaced_scores_lower(number_edit) -> None:  # noqa: ANN001
    clean = judge.judge(number_edit.source, number_edit.target, number_edit.instruction)
    ys, xs = np.nonzero(number_edit.mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    # The new word stretched to 1.4x its height about its middle, over the box's own light background.
    grow = int(round(0.2 * (y1 - y0)))
    word = cv2.resize(
        number_edit.target[y0:y1, x0:x1], (x1 - x0, y1 - y0 + 2 * grow), interpolation=cv2.INTER_CUBIC
    )
    taller = number_edit.target.copy()
    taller[y0 - grow : y1 + grow, x0:x1] = word
    worse = judge.judge(number_edit.source, taller, number_edit.instruction)
    assert worse.details["word_size_off"] > clean.details["word_size_off"] + 0.2, (
        clean.details,
        worse.details,
    )
    assert worse.o < clean.o - 1.5, (clean.o, worse.o)
