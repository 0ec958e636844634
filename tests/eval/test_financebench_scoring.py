"""FinanceBench scoring (numbers, yes/no, text, the optional judge) and the open-book variant's evidence."""

from __future__ import annotations

import pytest
from task_modules import task_utils

from finbench.data import raw as D

FB = task_utils("financebench")


@pytest.mark.parametrize(
    ("gold", "pred", "score"),
    [
        ("$1200.00", "ACME's revenue was $1,200 million.", 1.0),
        ("25.0%", "0.25", 1.0),
        ("$45 million", "About 50 million", 0.0),
        ("Yes, ACME paid a quarterly dividend.", "Yes.", 1.0),
        ("No, capital expenditures were low.", "Yes", 0.0),
        ("Smith & Partners LLP", "It is audited by Smith & Partners LLP.", 1.0),
        ("Widgets", "[missing] empty output", 0.0),
    ],
)
def test_financebench_scoring(gold: str, pred: str, score: float, monkeypatch) -> None:
    monkeypatch.delenv("FINBENCH_JUDGE_URL", raising=False)
    out = task_utils("financebench").process_results({"label": gold, "question": "q"}, [pred])
    assert out["score"] == score
    assert "judge" not in out  # the judge is off by default


def test_financebench_judge_errors_are_logged_not_raised(monkeypatch, caplog) -> None:
    monkeypatch.setenv("FINBENCH_JUDGE_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("FINBENCH_JUDGE_MODEL", "m")
    out = task_utils("financebench").process_results({"label": "Widgets", "question": "q"}, ["Widgets"])
    assert out["score"] == 1.0 and "judge" not in out
    assert "judge call failed" in caplog.text


def test_financebench_open_prompt_has_evidence_closed_does_not(fixture_data, task_manager) -> None:
    loaded = task_manager.load(["financebench", "financebench_open"])["tasks"]
    closed, opened = loaded["financebench"], loaded["financebench_open"]
    doc_c, doc_o = list(closed.test_docs())[0], list(opened.test_docs())[0]
    assert doc_c["id"] == doc_o["id"] and doc_o["evidence"]
    assert doc_o["evidence"] in opened.doc_to_text(doc_o)
    assert doc_c["evidence"] not in closed.doc_to_text(doc_c)
    assert opened.doc_to_text(doc_o).endswith(
        f"Question: {doc_o['question']}\nAnswer briefly, on one line, from the excerpt.\n"
    )
    assert [
        len(list(getattr(t, f"{s}_docs")()))
        for t in (closed, opened)
        for s in ("training", "validation", "test")
    ] == [2, 1, 7] * 2  # 10 fixture rows: 70% test, the rest 2:1


def test_financebench_open_requires_evidence() -> None:
    import datasets

    rows = datasets.Dataset.from_list(
        [{"id": "fb1", "evidence": "Revenue was $5."}, {"id": "fb2", "evidence": " "}]
    )
    with pytest.raises(D.DataError, match=r"question 'fb2' has no evidence text"):
        FB.require_evidence(rows)
