"""Every configured task scores its own gold answers as correct through its filters and metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from task_modules import load_rows, score_golds

from eval_plugins import numeric as N
from finbench.data import raw as D

ROOT = Path(__file__).resolve().parents[2]


def test_numeric_targets_score_as_correct(fixture_data) -> None:
    for name in ("finqa", "convfinqa"):
        ds = load_rows(name)
        for split in D.SPLITS:
            for doc in ds[split]:
                for strict in (False, True):
                    filtered = N.NumericFilter(strict=strict).one(doc["target"], doc)
                    scores = N.process_results(doc, [filtered])
                    assert scores["exact_match"] == 1.0, (
                        name,
                        doc["id"],
                        doc["target"],
                        doc["golds"],
                    )


@pytest.mark.parametrize(
    "name",
    [
        "ner",
        "ner_cls",
        "finqa",
        "convfinqa",
        "financebench",
    ],
)
def test_configured_task_scores_gold_answers_as_correct(name: str, fixture_data) -> None:
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(ROOT / "tasks"), include_defaults=False)
    task = manager.load([name])["tasks"][name]
    docs = list(task.test_docs())
    for filt, results in score_golds(task, name).items():
        per_metric: dict[str, list] = {}
        for result in results:
            for metric, value in result.items():
                per_metric.setdefault(metric, []).append(value)
        aggregated = {m: task.aggregation()[m](v) for m, v in per_metric.items()}
        if filt == "finben":  # FinBen's strict string match (eval_plugins.finben_em) only
            assert aggregated == {"finben_em": 1.0}, (name, aggregated)
            continue
        if filt == "official":  # FinQA's exe_acc: the target may be "14.1%" (0.141)
            assert set(aggregated) == {"exe_acc"}, (name, aggregated)
            # exe_ans written as the official code prints it always counts
            assert all(
                task.process_results(d, ["[official] " + d["exe_ans"]])["exe_acc"] == 1.0 for d in docs
            )
            continue
        assert aggregated["score"] == 1.0, (name, filt, aggregated)
        assert aggregated["missing_rate"] == 0.0, (name, filt, aggregated)


@pytest.mark.parametrize("name", ["tatqa", "financebench_open"])
def test_configured_new_task_scores_gold_as_correct(name: str, fixture_data, task_manager) -> None:
    task = task_manager.load([name])["tasks"][name]
    for filt, scores in score_golds(task, name).items():
        assert task.aggregation()["score"]([s["score"] for s in scores]) == 1.0, (name, filt)
        assert task.aggregation()["missing_rate"]([s["missing_rate"] for s in scores]) == 0.0
