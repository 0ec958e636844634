from __future__ import annotations

import math

import pytest
from sklearn.metrics import accuracy_score, f1_score

from eval_plugins import metrics as M
from eval_plugins.parsers import MISSING

GOLD = ["positive", "negative", "neutral", "neutral", "positive", "negative", "neutral"]
PRED = ["positive", "neutral", "neutral", MISSING, "negative", "negative", "neutral"]
ITEMS = [("", g, p) for g, p in zip(GOLD, PRED, strict=True)]


def test_against_sklearn():
    labels = ["negative", "neutral", "positive"]
    assert M.acc(ITEMS) == pytest.approx(accuracy_score(GOLD, PRED))
    assert M.f1_weighted(ITEMS) == pytest.approx(f1_score(GOLD, PRED, labels=labels, average="weighted"))
    assert M.f1_macro(ITEMS) == pytest.approx(f1_score(GOLD, PRED, labels=labels, average="macro"))
    assert M.missing_rate(ITEMS) == pytest.approx(1 / 7)
    assert M.score(ITEMS) == M.f1_weighted(ITEMS)


def test_missing_is_never_a_class():
    # All missing: every gold class has recall 0, so F1 is 0, not undefined and not inflated.
    items = [("", g, MISSING) for g in GOLD]
    assert M.f1_macro(items) == 0.0
    assert M.acc(items) == 0.0
    assert M.missing_rate(items) == 1.0


def test_grouped_score_is_mean_of_weighted_f1_per_group():
    a = [("price_up", "yes", "yes"), ("price_up", "no", "yes"), ("price_up", "no", "no")]
    b = [("past", "yes", "yes"), ("past", "yes", "yes"), ("past", "no", "yes"), ("past", "no", MISSING)]
    expected_a = f1_score(["yes", "no", "no"], ["yes", "yes", "no"], average="weighted")
    expected_b = f1_score(
        ["yes", "yes", "no", "no"], ["yes", "yes", "yes", MISSING], labels=["no", "yes"], average="weighted"
    )
    assert M.score(a + b) == pytest.approx((expected_a + expected_b) / 2)
    assert M.score(a + b) != pytest.approx(M.f1_weighted(a + b))


def test_empty_is_nan():
    assert math.isnan(M.acc([])) and math.isnan(M.score([]))


def test_process_results_rejects_unknown_predictions():
    doc = {"label": "yes", "choices": ["yes", "no"], "group": "q"}
    assert M.process_generate(doc, ["maybe"])["acc"] == ("q", "yes", MISSING)
    assert M.process_generate(doc, ["no"])["score"] == ("q", "yes", "no")
    assert M.process_multiple_choice(doc, [(-3.0, False), (-1.0, True)])["acc"] == ("q", "yes", "no")
