"""Spearman and Cohen's kappa against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipelines.judge_agreement import agreement, cohen_kappa, rank_average, roc_auc, spearman


def test_rank_average_shares_ranks_between_ties() -> None:
    assert rank_average(np.array([5.0, 6, 7, 8, 7])).tolist() == [1, 2, 3.5, 5, 3.5]


def test_spearman_by_hand() -> None:
    # ranks x: 1..5, ranks y: 1, 2, 3.5, 5, 3.5 -> centred dot 8, squared norms 10 and 9.5
    rho = spearman(np.array([1.0, 2, 3, 4, 5]), np.array([5.0, 6, 7, 8, 7]))
    assert rho == pytest.approx(8 / math.sqrt(95))
    assert spearman(np.array([1.0, 2, 3]), np.array([30.0, 20, 10])) == pytest.approx(-1.0)
    assert math.isnan(spearman(np.array([1.0, 2, 3]), np.array([4.0, 4, 4])))


def test_cohen_kappa_by_hand() -> None:
    # observed 0.75; chance 0.5*0.25 + 0.5*0.75 = 0.5 -> (0.75 - 0.5) / 0.5
    a = np.array([True, True, False, False])
    b = np.array([True, False, False, False])
    assert cohen_kappa(a, b) == pytest.approx(0.5)
    assert cohen_kappa(a, a) == 1.0
    assert cohen_kappa(a, ~a) == -1.0
    assert math.isnan(cohen_kappa(np.ones(3, bool), np.ones(3, bool)))


def test_agreement_matches_ids_and_skips_missing_scores() -> None:
    a = {"x": {"sc": 8.0, "o": 7.0}, "y": {"sc": 2.0, "o": 3.0}, "z": {"sc": 5.0, "o": 6.5}}
    b = {"x": {"sc": 9.0}, "y": {"sc": 1.0}, "w": {"sc": 4.0}}
    report = agreement(a, b, {"sc": 6.0, "pq": 6.0, "o": 6.0})
    assert report["n_common"] == 2 and set(report["scores"]) == {"sc"}
    sc = report["scores"]["sc"]
    assert sc["n"] == 2 and sc["spearman"] == pytest.approx(1.0) and sc["kappa"] == 1.0


def test_roc_auc_and_kept_precision_against_labels_by_hand() -> None:
    # positives score 9, 7, 5 and negatives 6, 2: (9>6, 9>2) + (7>6, 7>2) + (5>2) = 5 of 6 pairs
    labels_ = np.array([True, True, True, False, False])
    assert roc_auc(np.array([9.0, 7, 5, 6, 2]), labels_) == pytest.approx(5 / 6)
    assert roc_auc(np.array([1.0, 1.0]), np.array([True, False])) == 0.5  # a tie counts half
    assert math.isnan(roc_auc(np.array([1.0, 2.0]), np.array([True, True])))
    judge = {k: {"o": v} for k, v in {"a": 9.0, "b": 7.0, "c": 5.0, "d": 6.0, "e": 2.0}.items()}
    labels = {k: {"o": v} for k, v in {"a": 10.0, "b": 10.0, "c": 10.0, "d": 0.0, "e": 0.0}.items()}
    o = agreement(judge, labels, {"sc": 6.0, "pq": 6.0, "o": 6.0})["scores"]["o"]
    assert o["roc_auc"] == pytest.approx(5 / 6)
    assert o["kept"] == 3 and o["kept_accepted"] == pytest.approx(2 / 3)  # a, b, d kept; d is a reject
