"""FinBen (tasks/finben_*): which tasks belong to the suite and its lm-eval groups.

The loader is finbench/data/finben_load.py (kept apart: this module is imported by finbench.data.tasks,
the loader reads the hub, and finbench.data.hub imports finbench.data.tasks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SUITE = "finben"
FAMILIES = ("ta", "rm", "fo", "qa", "ie", "tg")  # leaderboard families (LB src/about.py @856625ff)


def is_finben(config: Mapping[str, Any]) -> bool:
    return (config.get("metadata") or {}).get("suite") == SUITE


def family(config: Mapping[str, Any]) -> str:
    return str((config.get("metadata") or {}).get("family", ""))


def group_configs(configs: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, dict]:
    """`finben` (every FinBen task) and `finben_<family>`, averaged as the Open FinLLM Leaderboard
    averages (The-FinAI/Open-Financial-LLMs-Leaderboard src/leaderboard/read_evals.py @856625ff):
    `finben` is the plain mean of each task's column value (`score`; TSA's RMSE included as it
    is, as there), a family group the mean of `score_category` (MCC taken as (MCC + 1) / 2).
    Our scale is 0-1, the leaderboard's 0-100."""
    members = sorted((name, family(cfg)) for name, cfg in configs if is_finben(cfg))
    if not members:
        return {}

    def group(name: str, tasks: list[str], metric: str) -> dict:
        return {
            "group": name,
            "task": tasks,
            "aggregate_metric_list": [
                {"metric": metric, "aggregation": "mean", "weight_by_size": False, "filter_list": ["none"]}
            ],
            "metadata": {"version": 1.0},
        }

    groups = {SUITE: group(SUITE, [n for n, _ in members], "score")}
    for fam in FAMILIES:
        tasks = [n for n, f in members if f == fam]
        if tasks:
            groups[f"{SUITE}_{fam}"] = group(f"{SUITE}_{fam}", tasks, "score_category")
    return groups
