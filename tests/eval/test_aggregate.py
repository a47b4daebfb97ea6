"""GEdit-Bench aggregation against numbers worked out by hand."""

from __future__ import annotations

import math

import pytest

from model.eval.aggregate import aggregate, category_table, compare, compare_table, published_table


def _row(key: str, category: str, language: str, intersection: bool, status: str = "ok", **s: float) -> dict:
    o = math.sqrt(s["sc"] * s["pq"]) if status == "ok" else None
    return {
        "key": key,
        "category": category,
        "language": language,
        "intersection": intersection,
        "status": status,
        "sc": s.get("sc"),
        "pq": s.get("pq"),
        "o": o,
    }


RECORDS = [
    _row("a1", "background_change", "en", True, sc=6, pq=8),
    _row("a2", "background_change", "en", False, sc=8, pq=4),
    _row("a3", "background_change", "en", True, status="judge_failed"),
    _row("a4", "background_change", "en", False, status="missing_output"),
    _row("b1", "subject-add", "en", True, sc=3, pq=9),
    _row("a1", "background_change", "cn", False, sc=5, pq=5),
]


def test_category_means_then_unweighted_mean_over_categories() -> None:
    agg = aggregate(RECORDS)
    assert list(agg) == ["en", "cn"]  # the paper's order
    full = agg["en"]["full"]
    bg = full["categories"]["background_change"]
    assert (bg["rows"], bg["n"], bg["failed"], bg["missing"]) == (4, 2, 1, 1)
    assert bg["sc"] == 7.0 and bg["pq"] == 6.0
    assert bg["o"] == pytest.approx((math.sqrt(48) + math.sqrt(32)) / 2)
    # A macro average: background_change (2 rows) and subject-add (1 row) weigh the same. The mean over the
    # three scored rows would be 17/3 for SC.
    assert full["overall"]["sc"] == (7 + 3) / 2
    assert full["overall"]["pq"] == (6 + 9) / 2
    assert full["overall"]["o"] == pytest.approx(((math.sqrt(48) + math.sqrt(32)) / 2 + math.sqrt(27)) / 2)
    assert (full["rows"], full["scored"], full["categories_scored"]) == (5, 3, 2)
    # The intersection subset: a1 (a3 failed) and b1.
    inter = agg["en"]["intersection"]
    assert inter["categories"]["background_change"]["sc"] == 6.0
    assert inter["overall"]["sc"] == (6 + 3) / 2 and inter["overall"]["pq"] == (8 + 9) / 2
    # Chinese: one row, outside the intersection subset, which is then absent rather than empty.
    assert set(agg["cn"]) == {"full"} and agg["cn"]["full"]["overall"]["sc"] == 5.0


def test_tables_in_the_published_layout() -> None:
    agg = aggregate(RECORDS)
    text = published_table(agg, "G", "my-run")
    lines = text.splitlines()
    assert lines[0] == "| GEdit-Bench-EN | IS G_SC | IS G_PQ | IS G_O | Full G_SC | Full G_PQ | Full G_O |"
    o_is = (math.sqrt(48) + math.sqrt(27)) / 2
    o_full = ((math.sqrt(48) + math.sqrt(32)) / 2 + math.sqrt(27)) / 2
    assert lines[2] == f"| my-run | 4.500 | 8.500 | {o_is:.3f} | 5.000 | 7.500 | {o_full:.3f} |"
    assert "| GEdit-Bench-CN | Full G_SC | Full G_PQ | Full G_O |" in text
    per_category = category_table(agg, "G")
    assert "| background_change | 4 | 2 | 1 | 1 | 7.000 | 6.000 |" in per_category
    assert "GEdit-Bench-EN, full set (3 of 5 rows scored)" in per_category


def test_compare_two_runs_per_category() -> None:
    better = [dict(r) for r in RECORDS]
    for r in better:
        if r["key"] == "b1":
            r["sc"], r["o"] = 5.0, math.sqrt(5 * 9)
    diff = compare(aggregate(RECORDS), aggregate(better))
    en = diff["en"]["full"]
    assert en["subject-add"]["sc_a"] == 3 and en["subject-add"]["sc_b"] == 5
    assert en["subject-add"]["sc_diff"] == 2.0
    assert en["background_change"]["sc_diff"] == 0.0
    assert en["overall"]["sc_diff"] == pytest.approx(1.0)  # one of two categories moved by 2
    assert en["overall"]["o_diff"] == pytest.approx((math.sqrt(45) - math.sqrt(27)) / 2)
    table = compare_table(diff, "G")
    assert "| subject-add | 3.000 | 5.000 | +2.000 | 9.000 | 9.000 | +0.000 |" in table
