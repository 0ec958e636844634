"""The task catalog: each task's kind, output type, few-shot split and sources, and the groups lm-eval sees."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


TASKS = ("ner", "ner_cls", "finqa", "convfinqa", "financebench")


KINDS = {
    "ner": "extraction",
    "ner_cls": "extraction",
    "finqa": "numeric",
    "convfinqa": "numeric",
    "financebench": "knowledge",
}


def test_new_tasks_are_discovered_and_grouped() -> None:
    from finbench.data.tasks import discover
    from finbench.eval.lmeval_hook import group_configs

    tasks = discover(ROOT / "tasks")
    assert tasks["tatqa"].kind == "numeric" and tasks["tatqa"].output_type == "generate_until"
    assert tasks["financebench_open"].kind == "knowledge"
    assert tasks["tatqa"].source["hub"] == {
        "path": "next-tat/TAT-QA",
        "revision": "b47dc5894185d2504b3aad7af4af13edd972eb54",
    }
    groups = group_configs(ROOT / "tasks")
    assert {"finqa", "convfinqa", "tatqa"} <= set(groups["finbench_numeric"]["task"])
    assert {"financebench", "financebench_open"} <= set(groups["finbench_knowledge"]["task"])
    assert "tatqa" in groups["finbench"]["task"]


@pytest.mark.parametrize("name", TASKS)
def test_task_yaml_kind_and_splits(name: str) -> None:
    from finbench.data.tasks import discover

    info = discover(ROOT / "tasks")[name]
    assert info.kind == KINDS[name]
    assert info.output_type == "generate_until"
    assert info.config["fewshot_split"] == "train"
    assert info.source["raw"]["folder"] and info.source["hub"]["path"]
