"""lm-eval metrics for finbench classification tasks.

`process_results` turns one doc and its (filtered) model output into the same item for every
metric: (group, gold, prediction). The corpus-level aggregations below pool those items and
let scikit-learn do the arithmetic. `group` is the question type for tasks that ask several
questions per text (Headline); the task `score` is then the mean over groups of weighted F1, as
BloombergGPT reported it, and plain weighted F1 otherwise.

`METRICS` (at the end) declares what the classification templates report (eval_plugins.registry).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from eval_plugins.parsers import MISSING
from eval_plugins.registry import Metric, declare

Item = tuple[str, str, str]  # (group, gold, prediction)


def _items(doc: dict, prediction: str) -> dict[str, Item]:
    item = (str(doc.get("group") or ""), str(doc["label"]), prediction)
    return {name: item for name in METRICS.names}


def process_generate(doc: dict, results: Sequence[str]) -> dict[str, Item]:
    """Generative variant: the filter already mapped the output to a label or MISSING."""
    prediction = results[0] if results else MISSING
    if not isinstance(prediction, str) or prediction not in doc["choices"]:
        prediction = MISSING
    return _items(doc, prediction)


def process_multiple_choice(doc: dict, results: Sequence[tuple[float, bool]]) -> dict[str, Item]:
    """Log-likelihood variant: the choice with the highest (summed) log-likelihood."""
    lls = [ll for ll, _ in results]
    best = max(range(len(lls)), key=lambda i: lls[i])
    return _items(doc, doc["choices"][best])


def _split(items: Sequence[Item]) -> tuple[list[str], list[str]]:
    return [gold for _, gold, _ in items], [pred for _, _, pred in items]


def _f1(golds: list[str], preds: list[str], average: str) -> float:
    # Classes are the gold labels plus any real label predicted; MISSING is never a class, so a
    # missing answer costs recall of its gold class instead of adding a zero-F1 class.
    labels = sorted(set(golds) | (set(preds) - {MISSING}))
    return float(f1_score(golds, preds, labels=labels, average=average, zero_division=0))


def acc(items: Sequence[Item]) -> float:
    golds, preds = _split(items)
    return float(accuracy_score(golds, preds)) if items else math.nan


def f1_weighted(items: Sequence[Item]) -> float:
    return _f1(*_split(items), average="weighted") if items else math.nan


def f1_macro(items: Sequence[Item]) -> float:
    return _f1(*_split(items), average="macro") if items else math.nan


def missing_rate(items: Sequence[Item]) -> float:
    return sum(pred == MISSING for _, _, pred in items) / len(items) if items else math.nan


def score(items: Sequence[Item]) -> float:
    """The task's headline number: mean over question types of weighted F1."""
    if not items:
        return math.nan
    by_group: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_group[item[0]].append(item)
    return sum(f1_weighted(group) for group in by_group.values()) / len(by_group)


def mcc(items: Sequence[Item]) -> float:
    """Matthews correlation over the labels; a missing answer is a wrong one (a class of its own)."""
    golds, preds = _split(items)
    return float(matthews_corrcoef(golds, preds)) if items else math.nan


# What every classification task reports, under each filter (both templates name this set).
METRICS = declare(
    Metric("score", score, bootstrap="labels.score"),
    Metric("acc", acc, bootstrap="labels.acc"),
    Metric("f1_weighted", f1_weighted, bootstrap="labels.f1_weighted"),
    Metric("f1_macro", f1_macro, bootstrap="labels.f1_macro"),
    Metric("missing_rate", missing_rate, higher_is_better=False, bootstrap="labels.missing_rate"),
    Metric("mcc", mcc),  # corpus metric: recomputed on each bootstrap resample
)
