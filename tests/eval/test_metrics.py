from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from eval_plugins import metrics as M
from eval_plugins import registry as R
from eval_plugins.parsers import MISSING

GOLD = ["positive", "negative", "neutral", "neutral", "positive", "negative", "neutral"]
PRED = ["positive", "neutral", "neutral", MISSING, "negative", "negative", "neutral"]
ITEMS = [("", g, p) for g, p in zip(GOLD, PRED, strict=True)]


def test_against_sklearn():
    labels = ["negative", "neutral", "positive"]
    assert M.acc(ITEMS) == pytest.approx(accuracy_score(GOLD, PRED))
    assert M.f1_weighted(ITEMS) == pytest.approx(f1_score(GOLD, PRED, labels=labels, average="weighted"))
    assert M.f1_macro(ITEMS) == pytest.approx(f1_score(GOLD, PRED, labels=labels, average="macro"))
    assert M.missing_rate(ITEMS) == pytest.approx(1 / 7)
    assert M.score(ITEMS) == M.f1_weighted(ITEMS)


def test_missing_is_never_a_class():
    # All missing: every gold class has recall 0, so F1 is 0, not undefined and not inflated.
    items = [("", g, MISSING) for g in GOLD]
    assert M.f1_macro(items) == 0.0
    assert M.acc(items) == 0.0
    assert M.missing_rate(items) == 1.0


def test_grouped_score_is_mean_of_weighted_f1_per_group():
    a = [("price_up", "yes", "yes"), ("price_up", "no", "yes"), ("price_up", "no", "no")]
    b = [("past", "yes", "yes"), ("past", "yes", "yes"), ("past", "no", "yes"), ("past", "no", MISSING)]
    expected_a = f1_score(["yes", "no", "no"], ["yes", "yes", "no"], average="weighted")
    expected_b = f1_score(
        ["yes", "yes", "no", "no"], ["yes", "yes", "yes", MISSING], labels=["no", "yes"], average="weighted"
    )
    assert M.score(a + b) == pytest.approx((expected_a + expected_b) / 2)
    assert M.score(a + b) != pytest.approx(M.f1_weighted(a + b))


def test_empty_is_nan():
    assert math.isnan(M.acc([])) and math.isnan(M.score([]))


def test_process_results_rejects_unknown_predictions():
    doc = {"label": "yes", "choices": ["yes", "no"], "group": "q"}
    assert M.process_generate(doc, ["maybe"])["acc"] == ("q", "yes", MISSING)
    assert M.process_generate(doc, ["no"])["score"] == ("q", "yes", "no")
    assert M.process_multiple_choice(doc, [(-3.0, False), (-1.0, True)])["acc"] == ("q", "yes", "no")


def test_mcc_against_sklearn():
    # a missing answer is a wrong answer of its own class, as scikit-learn sees it
    assert M.mcc(ITEMS) == pytest.approx(matthews_corrcoef(GOLD, PRED))
    assert math.isnan(M.mcc([]))


# --- the metric registry: one declaration a metric, read by templates, statistics and report ----

ROOT = Path(__file__).resolve().parents[2]
YAMLS = sorted([*(ROOT / "eval_plugins" / "templates").glob("*_yaml"), *(ROOT / "tasks").glob("*/*yaml")])


def _declared_sets() -> dict[str, R.MetricList]:
    R._load_families()
    return {f"{mod}.{name}": value for mod in R.FAMILIES for name, value in vars(sys.modules[mod]).items()
            if isinstance(value, R.MetricList)}


def test_every_metric_list_names_a_declared_set():
    """No YAML spells a metric out: it names a set, so it cannot disagree with the declarations."""
    from lm_eval.tasks._yaml_loader import load_yaml

    named = set()
    for path in YAMLS:
        raw = load_yaml(path, resolve_func=False, recursive=False)
        if "metric_list" in raw:
            assert isinstance(raw["metric_list"], str), f"{path}: metric_list must name a declared set"
            named.add(Path(raw["metric_list"]).name)
            assert R.metric_set(raw["metric_list"]).declarations
    assert named == set(_declared_sets())  # and every declared set is used


def test_declarations_round_trip_to_their_functions():
    from finbench.report import stats as S

    for ref, metrics in _declared_sets().items():
        for m in metrics.declarations:
            assert m.bootstrap in R.BOOTSTRAP, (ref, m)
            # the name the sweep stores resolves to the very function lm-eval aggregates with
            fn = S.resolve_aggregation(m.aggregation_name)
            assert fn is m.aggregation or m.aggregation == m.aggregation_name, (ref, m)
            assert R.bootstrap_of(m.aggregation_name) == m.bootstrap
        assert list(metrics) == [m.lm_eval_entry() for m in metrics.declarations]


def test_the_task_catalog_reads_the_declared_entries(fixture_data):
    from finbench.data import tasks as T

    info = T.discover()["fpb"]
    assert info.config["metric_list"] == R.unresolved_entries("eval_plugins.metrics.METRICS")
    assert {"metric": "mcc", "aggregation": "eval_plugins.metrics.mcc", "higher_is_better": True} in (
        info.config["metric_list"])
    assert {"metric": "missing_rate", "aggregation": "eval_plugins.metrics.missing_rate",
            "higher_is_better": False} in info.config["metric_list"]


def test_declare_refuses_what_would_make_it_ambiguous():
    with pytest.raises(R.MetricDeclarationError, match="twice"):
        R.declare(R.Metric("acc", M.acc), R.Metric("acc", M.acc))
    with pytest.raises(R.MetricDeclarationError, match="bootstrap"):
        R.declare(R.Metric("acc", M.acc, bootstrap="recompute"))  # declared labels.acc in METRICS
    with pytest.raises(R.MetricDeclarationError, match="not one of"):
        R.Metric("x", M.acc, bootstrap="fast")
    with pytest.raises(R.MetricDeclarationError, match="no metric set"):
        R.metric_set("eval_plugins.metrics.process_generate")
