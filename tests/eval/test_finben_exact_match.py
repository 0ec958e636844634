"""FinBen's strict exact match for FinQA/ConvFinQA and the filter that routes raw model text to it."""

from __future__ import annotations

import pytest
from task_modules import score_responses

from eval_plugins import finben_em as FE


@pytest.mark.parametrize(
    ("response", "golds", "em"),
    [
        (" 3.8\n", ["380", "3.8"], 1.0),
        ("380", ["380", "3.8"], 1.0),
        ("3.80", ["380", "3.8"], 0.0),  # numerically equal, but not the gold string
        ("The answer is 3.8", ["3.8"], 0.0),
        ("", ["3.8"], 0.0),
        (None, ["3.8"], 0.0),
    ],
)
def test_finben_exact_match(response, golds, em) -> None:
    assert FE.exact_match(response, golds) == em


def test_finben_filter_routes_raw_text(fixture_data, task_manager) -> None:
    task = task_manager.load(["finqa"])["tasks"]["finqa"]
    doc = list(task.test_docs())[0]
    outputs = [" " + doc["target"], " " + doc["target"] + " (rounded)"]
    results = score_responses(task, "finqa", [(doc, text) for text in outputs])
    assert [r["finben_em"] for r in results["finben"]] == [1.0, 0.0]
    assert all(set(r) == {"finben_em"} for r in results["finben"])
    # our tolerant reading still scores the second answer (the first number is right)
    assert [r["score"] for r in results["tolerant"]] == [1.0, 1.0]
    assert "finben_em" not in results["tolerant"][0]
