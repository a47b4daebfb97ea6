"""Per-task thresholds from YAML, and the keep/drop decision with its reasons."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from pipelines.filter import Thresholds, ThresholdTable, decision


def test_yaml_overrides_key_by_key(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("default: {min_o: 6}\ntone_transformation: {min_sc: 5.5}\nsubject_removal: {}\n")
    table = ThresholdTable.load(Thresholds(min_sc=1.0, min_pq=2.0, min_o=3.0), path)
    # default: the CLI's values, with the YAML default's keys replaced; a task: the default, its keys replaced
    assert table.for_task("style_transfer") == Thresholds(1.0, 2.0, 6.0)
    assert table.for_task("tone_transformation") == Thresholds(5.5, 2.0, 6.0)
    assert table.for_task("subject_removal") == Thresholds(1.0, 2.0, 6.0)
    assert table.to_record()["tone_transformation"] == {"min_sc": 5.5, "min_pq": 2.0, "min_o": 6.0}


@pytest.mark.parametrize(
    "text", ["tone_transformation: {min_score: 5}\n", "tone_transformation: 5\n", "- 1\n"]
)
def test_bad_yaml_is_a_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(click.BadParameter):
        ThresholdTable.load(Thresholds(), path)


def test_decision_reasons() -> None:
    limits = Thresholds(min_sc=5, min_pq=5, min_o=6)
    row = {"judge_status": "ok", "near_dup_of": None, "sc": 7.0, "pq": 6.0, "o": 6.48}
    assert decision(row, limits, keep_near_dups=False) is None
    assert decision(row | {"sc": 4.9}, limits, False) == "below_min_sc"
    assert decision(row | {"pq": 4.0}, limits, False) == "below_min_pq"
    assert decision(row | {"o": 5.9}, limits, False) == "below_min_o"
    assert decision(row | {"near_dup_of": "abc"}, limits, False) == "near_duplicate"
    assert decision(row | {"near_dup_of": "abc"}, limits, True) is None
    failed = {"judge_status": "judge_failed", "near_dup_of": None, "sc": None, "pq": None, "o": None}
    assert decision(failed, Thresholds(), False) == "judge_failed"  # even at zero thresholds
