"""One declaration per metric, read by the lm-eval templates, the statistics and the report.

A metric is a `Metric(name, aggregation, higher_is_better, bootstrap)` in a metric set that a
family module declares beside its functions, e.g. in `eval_plugins/metrics.py`:

    METRICS = declare(
        Metric("score", score, bootstrap="labels.score"),
        ...
        Metric("mcc", mcc),  # Matthews correlation; recomputed on each bootstrap resample
    )

`declare` returns the set as lm-eval's `metric_list` (entries with the aggregation function and
higher_is_better), so a template names the set instead of repeating it:

    metric_list: !function eval_plugins.metrics.METRICS

(lm-eval's `!function` tag imports any module attribute, here a list.) The YAML cannot disagree
with the declaration because it holds none of it, and it needs no registration step before tasks
are built, so `lm_eval --include_path tasks/` works without finbench's start-up hook.

Why not lm-eval's own registry (`register_metric` / `register_aggregation`, then `metric: mcc`
alone in YAML): its names are global, and ours are not unique across families (`score` is
weighted F1 here, RMSE with lower-is-better in FinBen TSA, seqeval F1 for NER), several collide
with lm-eval's built-ins (`acc`, `f1`, `mcc`, `exact_match`: registering them again fails), and a
task would depend on registration having run before it is built.

The statistics (finbench.report.stats) resample items by `bootstrap`; the sweep records each
task's (metric -> aggregation, higher_is_better) from the same sets (`unresolved_entries`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Aggregation = Callable[[Sequence[Any]], float] | str  # a function, or an lm-eval aggregation name

# How finbench.report.stats resamples a metric (tests/report/test_stats.py checks each fast path
# against the real function):
MEAN = "mean"  # per-item numbers: the mean of the resampled items (vectorised)
RECOMPUTE = "recompute"  # a corpus metric (macro-F1, MCC, RMSE...): the aggregation run on each resample
LABEL_PATHS = ("labels.acc", "labels.f1_weighted", "labels.f1_macro", "labels.missing_rate", "labels.score")
BOOTSTRAP = (MEAN, RECOMPUTE, *LABEL_PATHS)  # labels.*: vectorised forms of eval_plugins.metrics

# The modules that declare metric sets (imported on demand by the lookups below).
FAMILIES = ("eval_plugins.metrics", "eval_plugins.ner", "eval_plugins.qa_metrics", "eval_plugins.finben_metrics")


class MetricDeclarationError(ValueError):
    pass


@dataclass(frozen=True)
class Metric:
    """One metric: the key lm-eval reports, its corpus-level aggregation of the items that the
    task's `process_results` emitted, its direction, and how the statistics resample it."""

    name: str
    aggregation: Aggregation
    higher_is_better: bool = True
    bootstrap: str = RECOMPUTE

    def __post_init__(self) -> None:
        if self.bootstrap not in BOOTSTRAP:
            raise MetricDeclarationError(f"metric {self.name!r}: bootstrap {self.bootstrap!r} is not one of {BOOTSTRAP}")
        if not (callable(self.aggregation) or isinstance(self.aggregation, str)):
            raise MetricDeclarationError(f"metric {self.name!r}: aggregation must be a function or an lm-eval name")

    @property
    def kind(self) -> str:
        """"per-item mean" (the mean of one number per item) or "corpus" (computed on all items)."""
        return "per-item mean" if self.bootstrap == MEAN else "corpus"

    @property
    def aggregation_name(self) -> str:
        """The dotted function (`eval_plugins.metrics.mcc`) or lm-eval name (`mean`) the sweep stores."""
        agg = self.aggregation
        return agg if isinstance(agg, str) else f"{agg.__module__}.{agg.__name__}"

    def lm_eval_entry(self) -> dict[str, Any]:
        return {"metric": self.name, "aggregation": self.aggregation, "higher_is_better": self.higher_is_better}


class MetricList(list):
    """A metric set as lm-eval reads `metric_list` (a plain list of dicts), with its declarations."""

    declarations: tuple[Metric, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.declarations)


_BOOTSTRAP_BY_AGGREGATION: dict[str, str] = {}


def declare(*metrics: Metric) -> MetricList:
    """A metric set: lm-eval's `metric_list` for a template, and the declarations behind it."""
    names = [m.name for m in metrics]
    if len(set(names)) != len(names):
        raise MetricDeclarationError(f"metric set declares a name twice: {names}")
    for m in metrics:
        known = _BOOTSTRAP_BY_AGGREGATION.setdefault(m.aggregation_name, m.bootstrap)
        if known != m.bootstrap:
            raise MetricDeclarationError(
                f"metric {m.name!r}: aggregation {m.aggregation_name} is declared with bootstrap {known!r}"
                f" elsewhere, {m.bootstrap!r} here")
    out = MetricList(m.lm_eval_entry() for m in metrics)
    out.declarations = tuple(metrics)
    return out


def _load_families() -> None:
    for module in FAMILIES:
        importlib.import_module(module)


def bootstrap_of(aggregation: str) -> str | None:
    """How the statistics resample items of `aggregation` (a stored aggregation name), if declared."""
    _load_families()
    return _BOOTSTRAP_BY_AGGREGATION.get(aggregation)


def metric_set(reference: str) -> MetricList:
    """The set a template names: `eval_plugins.metrics.METRICS`, or the form lm-eval's loader
    leaves when it does not resolve `!function` tags (`<yaml folder>/eval_plugins.metrics.METRICS`)."""
    module, _, attr = Path(reference).name.rpartition(".")
    if not module.startswith("eval_plugins."):
        raise MetricDeclarationError(f"metric_list {reference!r}: expected a set declared under eval_plugins.")
    found = getattr(importlib.import_module(module), attr, None)
    if not isinstance(found, MetricList):
        raise MetricDeclarationError(f"metric_list {reference!r}: {module} declares no metric set {attr!r}")
    return found


def unresolved_entries(reference: str) -> list[dict[str, Any]]:
    """`metric_list` entries as an unresolved task YAML would spell them: aggregations by name."""
    return [{"metric": m.name, "aggregation": m.aggregation_name, "higher_is_better": m.higher_is_better}
            for m in metric_set(reference).declarations]
