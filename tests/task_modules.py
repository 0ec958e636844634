"""Test helpers for task folders: a task's `utils.py` as a module, its YAML metadata, and model
answers run through the task's own lm-eval filters and `process_results`."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TASKS = ROOT / "tasks"


def task_utils(name: str, alias: str | None = None) -> ModuleType:
    """tasks/NAME/utils.py, loaded as lm-eval loads it (by path, under its own module name)."""
    spec = importlib.util.spec_from_file_location(alias or f"{name}_utils", TASKS / name / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def task_metadata(name: str) -> dict[str, Any]:
    """The `metadata:` block lm-eval passes the task's `custom_dataset` loader."""
    from finbench.data.tasks import discover

    return dict(discover(TASKS)[name].config["metadata"])


def load_rows(name: str):
    """The task's DatasetDict, built by its own `load` from its YAML metadata."""
    return task_utils(name).load(**task_metadata(name))


def score_responses(task, name: str, answers: list[tuple[dict, str]]) -> dict[str, list[dict]]:
    """{filter: [process_results of each (doc, model output)]}, through every filter of `task`."""
    from lm_eval.api.instance import Instance

    instances = []
    for i, (doc, text) in enumerate(answers):
        inst = Instance(
            request_type="generate_until", doc=doc, arguments=("", {}), idx=0, metadata=(name, i, 1)
        )
        inst.resps = [text]
        instances.append(inst)
    out = {}
    for ensemble in task._filters:
        ensemble.apply(instances)
        out[ensemble.name] = [task.process_results(i.doc, [i.filtered_resps[ensemble.name]]) for i in instances]
    return out


def score_golds(task, name: str) -> dict[str, list[dict]]:
    """`score_responses` where the model answers every test doc with its own gold target."""
    return score_responses(task, name, [(doc, " " + str(task.doc_to_target(doc))) for doc in task.test_docs()])
