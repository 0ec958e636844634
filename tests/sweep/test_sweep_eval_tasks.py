"""Which tasks a sweep scores on which split: paper55 adds knowledge tasks, TAT-QA and general ability."""

from __future__ import annotations


def test_paper55_scores_knowledge_tatqa_and_general_on_test() -> None:
    from finbench import sweep as SW
    from finbench.eval.lmeval_hook import GENERAL_TASKS

    sw = SW.load_sweep("paper55")
    assert {"financebench", "financebench_open", "tatqa"} <= set(sw.eval["tasks"])
    assert sw.eval["general"] == GENERAL_TASKS and sw.eval["splits"] == ["dev", "test"]
    # built-in general tasks have no dev split: scored on test only
    assert SW.eval_tasks(sw.eval, "dev") == sw.eval["tasks"]
    assert SW.eval_tasks(sw.eval, "test") == sw.eval["tasks"] + GENERAL_TASKS
