"""Real lm-eval runs of the QA and NER tasks on a tiny random model: every metric in range."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval_plugins import ner as NER
from eval_plugins import numeric as N

ROOT = Path(__file__).resolve().parents[2]


TASKS = ("ner", "ner_cls", "finqa", "convfinqa", "financebench")


_PER_TASK = {
    "ner": ("score", "f1", "precision", "recall", "missing_rate", "finben_entity_f1", "fingpt_entity_f1"),
    "ner_cls": ("score", "acc", "f1_weighted", "f1_macro", "missing_rate"),
    "ner_cls_mc": ("score", "acc", "f1_weighted", "f1_macro", "missing_rate"),
    "finqa": ("score", "exact_match", "rounded_match", "tolerant_match", "missing_rate"),
    "convfinqa": ("score", "exact_match", "rounded_match", "tolerant_match", "missing_rate"),
    "financebench": ("score", "numeric_match", "text_match", "missing_rate"),
}


@pytest.mark.slow
def test_lm_eval_runs_every_new_task(fixture_data, tmp_path) -> None:
    import lm_eval
    from lm_eval.tasks import TaskManager

    from finbench.train.models import tiny_model

    model = tiny_model()
    manager = TaskManager(include_path=str(ROOT / "tasks"), include_defaults=False)
    out = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={model},device=cpu",
        tasks=[*TASKS, "ner_cls_mc"],
        task_manager=manager,
        limit=2,
        log_samples=True,
    )
    for task, metrics in _PER_TASK.items():
        result = out["results"][task]
        for filt in ("none",) if task.endswith("_mc") else ("tolerant", "strict"):
            for metric in metrics:
                value = result[f"{metric},{filt}"]
                assert isinstance(value, float) and 0.0 <= value <= 1.0, (task, metric, filt, value)
        if task.endswith("_mc"):
            continue
        if task in ("finqa", "convfinqa"):  # FinQA's official execution accuracy, own filter
            assert 0.0 <= out["results"][task]["exe_acc,official"] <= 1.0
        samples = [s for s in out["samples"][task] if s["filter"] not in ("finben", "official")]
        assert {s["filter"] for s in samples} == {"tolerant", "strict"}
        # One request per doc; after `take_first` its filtered response is one string.
        assert all(isinstance(s["filtered_resps"][0], str) for s in samples)
    # Unparsable random output is scored as missing with the reason in the filtered response.
    finqa = [s["filtered_resps"][0] for s in out["samples"]["finqa"]]
    assert all(len(r) > len(N.MISSING) for r in finqa if r.startswith(N.MISSING))
    ner_sample = out["samples"]["ner"][0]
    assert len(json.loads(ner_sample["filtered_resps"][0])["tags"]) == len(ner_sample["doc"]["tokens"])
    assert NER.LABELS == ["person", "organization", "location"]


@pytest.mark.slow
def test_lm_eval_runs_tatqa_financebench_open_and_finben_em(fixture_data) -> None:
    import lm_eval
    from lm_eval.tasks import TaskManager

    from finbench.train.models import tiny_model

    manager = TaskManager(include_path=str(ROOT / "tasks"), include_defaults=False)
    out = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={tiny_model()},device=cpu",
        tasks=["tatqa", "financebench_open", "convfinqa"],
        task_manager=manager,
        limit=3,
        log_samples=True,
    )
    res = out["results"]
    for filt in ("tolerant", "strict"):
        for metric in ("score", "exact_match", "f1", "tolerant_match", "missing_rate"):
            assert 0.0 <= res["tatqa"][f"{metric},{filt}"] <= 1.0, (metric, filt)
        for metric in ("score", "numeric_match", "text_match", "missing_rate"):
            assert 0.0 <= res["financebench_open"][f"{metric},{filt}"] <= 1.0, (metric, filt)
    assert 0.0 <= res["convfinqa"]["finben_em,finben"] <= 1.0
    assert len(out["samples"]["tatqa"]) == 3 * 2  # 3 docs x (tolerant, strict)
    sample = out["samples"]["financebench_open"][0]
    assert sample["doc"]["evidence"] and sample["doc"]["evidence"] in str(sample["arguments"])
