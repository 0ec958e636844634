"""TAT-QA scoring by the official script's rules: exact match, numeracy F1, tolerant match, real golds."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from task_modules import task_utils

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
TQ = task_utils("tatqa")


def _doc(answer, kind: str, scale: str = "") -> dict:
    q = {"uid": "u", "question": "q", "answer": answer, "answer_type": kind, "scale": scale}
    return TQ.row_from_question(q, "ctx", "test")


@pytest.mark.parametrize(
    ("answer", "kind", "scale", "pred", "em", "f1"),
    [
        # a span with a scale: the number times the scale must match; the unit word alone is not enough
        (["$1,496.5"], "span", "million", "1,496.5 million", 1.0, 1.0),
        (["$1,496.5"], "span", "million", "$1,496.5", 0.0, 0.0),
        # arithmetic: rounded to 2 decimals, scale-aware; F1 = EM
        (-12.6, "arithmetic", "million", "-12.60 million", 1.0, 1.0),
        (-12.6, "arithmetic", "million", "-12.6", 0.0, 0.0),
        (-12.6, "arithmetic", "million", "-12.7 million", 0.0, 0.0),
        # percent: "12.5%", "12.5 percent" and a bare fraction 0.125 (add_percent_pred) all match
        (12.5, "arithmetic", "percent", "12.5%", 1.0, 1.0),
        (12.5, "arithmetic", "percent", "12.5 percent", 1.0, 1.0),
        (12.5, "arithmetic", "percent", "0.125", 1.0, 1.0),
        ("4", "count", "", "4", 1.0, 1.0),
        # multi-span: one sorted string, bag-of-tokens F1 (a set: "type" counts once):
        # gold {costplus, fixedprice, timeandmaterial, type}, pred {costplus, fixedprice, type}
        # -> P 1, R 3/4, F1 0.857 -> 0.86 (rounded to 2 decimals, as upstream)
        (
            ["fixed-price type", "cost-plus type", "time-and-material type"],
            "multi-span",
            "",
            "fixed-price type; cost-plus type",
            0.0,
            0.86,
        ),
        (
            ["fixed-price type", "cost-plus type"],
            "multi-span",
            "",
            "cost-plus type; fixed-price type",
            1.0,
            1.0,
        ),
        # articles and punctuation are ignored in spans
        (["the modified retrospective method"], "span", "", "Modified retrospective method.", 1.0, 1.0),
    ],
)
def test_tatqa_official_em_and_f1(answer, kind, scale, pred, em, f1) -> None:
    out = TQ.process_results(_doc(answer, kind, scale), [TQ.read_answer(" " + pred, strict=False)])
    assert (out["exact_match"], out["f1"], out["score"]) == (em, f1, f1)
    assert out["missing_rate"] == 0.0


def test_tatqa_tolerant_match_and_missing() -> None:
    doc = _doc(-12.6, "arithmetic", "million")
    tolerant = TQ.process_results(doc, ["-12.65 million"])
    assert tolerant["exact_match"] == 0.0 and tolerant["tolerant_match"] == 1.0  # within 1%
    assert TQ.process_results(doc, ["-12.6"])["tolerant_match"] == 0.0  # scale still matters
    span = TQ.process_results(_doc(["Acme"], "span"), ["Acme"])
    assert span["tolerant_match"] == span["exact_match"] == 1.0
    missing = TQ.process_results(doc, [TQ.AnswerFilter(strict=True).one("12\nmore text")])
    assert missing["missing_rate"] == 1.0 and missing["score"] == 0.0
    assert TQ.AnswerFilter(strict=False).one("\nAnswer: -12.6 million\n") == "-12.6 million"


@pytest.mark.skipif(not (SHARED / "tatqa").is_dir(), reason="../shared/data/tatqa absent")
def test_real_tatqa_golds_score_as_correct(caplog) -> None:
    # The real dev and test-with-gold files: every training target, read back by both filters,
    # must get EM = F1 = 1 from the official rules (3,331 questions of every type and scale).
    with caplog.at_level(logging.WARNING):
        splits = TQ.read_raw(SHARED)
    assert (len(splits["dev"]), len(splits["test"])) == (1668, 1663)  # counts in SOURCES.md
    for row in splits["dev"] + splits["test"]:
        for strict in (False, True):
            out = TQ.process_results(row, [TQ.AnswerFilter(strict=strict).one(" " + row["target"])])
            assert (out["exact_match"], out["f1"], out["tolerant_match"]) == (1.0, 1.0, 1.0), row["id"]
