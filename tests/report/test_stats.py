"""finbench.report.stats against scipy.stats / numpy / the real eval_plugins aggregations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from eval_plugins import metrics as EM
from eval_plugins import numeric as EN
from eval_plugins import registry as R
from eval_plugins.parsers import MISSING
from finbench.report import stats as S

LABELS = ["negative", "neutral", "positive"]


def _cls_items(rng: np.random.Generator, n: int, groups=("",), p_correct=0.6):
    items = []
    for _ in range(n):
        gold = str(rng.choice(LABELS))
        r = rng.random()
        pred = gold if r < p_correct else (MISSING if r > 0.93 else str(rng.choice(LABELS)))
        items.append((str(rng.choice(list(groups))), gold, pred))
    return items


def test_missing_label_matches_parsers() -> None:
    assert S.MISSING_LABEL == MISSING


# every declaration that names a vectorised path (eval_plugins.registry.LABEL_PATHS) is checked
FAST = [m.name for m in EM.METRICS.declarations if m.bootstrap in R.LABEL_PATHS]


def test_every_fast_path_is_declared_once() -> None:
    assert sorted(FAST) == ["acc", "f1_macro", "f1_weighted", "missing_rate", "score"]
    assert sorted(m.bootstrap for m in EM.METRICS.declarations if m.name in FAST) == sorted(R.LABEL_PATHS)


@pytest.mark.parametrize("name", FAST)
def test_fast_paths_equal_real_aggregations_on_resamples(name: str) -> None:
    rng = np.random.default_rng(1)
    items = _cls_items(rng, 60, groups=("price", "direction"))
    m = S.Metric(f"eval_plugins.metrics.{name}", items)
    assert m.kind == name  # the vectorised path, not the generic one
    fn = getattr(EM, name)
    assert m.point() == pytest.approx(fn(items), abs=1e-12)
    for W in S.resample_weights(len(items), 25, rng):
        got = m.values(W)
        for w, g in zip(W, got, strict=True):
            expanded = [it for it, c in zip(items, w.astype(int), strict=True) for _ in range(c)]
            assert g == pytest.approx(fn(expanded), abs=1e-12)


def test_generic_path_calls_the_function() -> None:
    items = [(1.0 if i % 3 else 0.0) for i in range(30)]
    m = S.Metric("eval_plugins.numeric.mean", items)
    assert m.kind == "mean" and m.point() == pytest.approx(EN.mean(items))
    g = S.Metric("lm_eval.api.metrics.median", items)  # a real lm-eval function: generic path
    assert g.kind == "generic" and g.point() == pytest.approx(float(np.median(items)))


def test_aggregation_outside_allowlist_refused() -> None:
    with pytest.raises(S.StatsError, match="only functions under"):
        S.resolve_aggregation("os.system")


def test_bootstrap_ci_matches_scipy_percentile() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(0.6, 0.2, size=300)
    ci = S.bootstrap_ci("eval_plugins.numeric.mean", [list(x)], n_resamples=4000, seed=3)
    ref = sps.bootstrap((x,), np.mean, n_resamples=4000, method="percentile",
                        confidence_level=0.95, rng=np.random.default_rng(4))
    assert ci.estimate == pytest.approx(x.mean())
    assert ci.low == pytest.approx(ref.confidence_interval.low, abs=0.004)
    assert ci.high == pytest.approx(ref.confidence_interval.high, abs=0.004)
    # and the normal-theory width for a mean: 2 * 1.96 * sd / sqrt(n)
    assert ci.high - ci.low == pytest.approx(2 * 1.96 * x.std(ddof=1) / np.sqrt(len(x)), rel=0.08)


def test_bootstrap_ci_f1_matches_scipy_on_index_resamples() -> None:
    rng = np.random.default_rng(11)
    items = _cls_items(rng, 80)
    ci = S.bootstrap_ci("eval_plugins.metrics.f1_weighted", [items], n_resamples=1500, seed=1)
    idx = np.arange(len(items))
    ref = sps.bootstrap((idx,), lambda i: EM.f1_weighted([items[j] for j in i]), vectorized=False,
                        n_resamples=1500, method="percentile", rng=np.random.default_rng(2))
    assert ci.estimate == pytest.approx(EM.f1_weighted(items))
    assert ci.low == pytest.approx(ref.confidence_interval.low, abs=0.03)
    assert ci.high == pytest.approx(ref.confidence_interval.high, abs=0.03)


def test_seeds_are_averaged() -> None:
    a, b = [1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]
    ci = S.bootstrap_ci("eval_plugins.numeric.mean", [a, b], n_resamples=200)
    assert ci.estimate == pytest.approx(0.625) and ci.n_seeds == 2
    assert ci.seed_sd == pytest.approx(np.std([0.75, 0.5], ddof=1))
    assert ci.low <= ci.estimate <= ci.high


def test_exact_permutation_equals_scipy() -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(0.1, 1, 12)
    b = a + rng.normal(0.4, 0.8, 12)
    ours = S.permutation_test("eval_plugins.numeric.mean", [list(b)], [list(a)], n_resamples=10_000)
    ref = sps.permutation_test((b, a), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                               permutation_type="samples", vectorized=True, n_resamples=10_000)
    assert ours.method == "exact permutation"
    assert ours.delta == pytest.approx(ref.statistic)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-12)


def test_randomized_permutation_close_to_scipy() -> None:
    rng = np.random.default_rng(9)
    a = (rng.random(200) < 0.55).astype(float)
    b = (rng.random(200) < 0.65).astype(float)
    ours = S.permutation_test("eval_plugins.numeric.mean", [list(b)], [list(a)], n_resamples=4000, seed=1)
    ref = sps.permutation_test((b, a), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                               permutation_type="samples", vectorized=True, n_resamples=4000,
                               rng=np.random.default_rng(2))
    assert ours.method == "permutation"
    assert ours.p_value == pytest.approx(ref.pvalue, abs=0.03)


def test_paired_bootstrap_detects_a_real_gain_and_not_a_null() -> None:
    rng = np.random.default_rng(3)
    base = _cls_items(rng, 300, p_correct=0.5)
    better = [(g, gold, gold if rng.random() < 0.5 else p) for g, gold, p in base]
    cmp = S.paired_bootstrap("eval_plugins.metrics.score", [better], [base], n_resamples=1000)
    assert cmp.delta == pytest.approx(EM.score(better) - EM.score(base))
    assert cmp.delta > 0 and cmp.low > 0 and cmp.p_value < 0.01
    same = S.paired_bootstrap("eval_plugins.metrics.score", [base], [base], n_resamples=200)
    assert same.delta == 0 and same.p_value == 1.0
    perm = S.permutation_test("eval_plugins.metrics.score", [better], [base], n_resamples=2000)
    assert perm.p_value < 0.01


def test_align_and_errors() -> None:
    keys, rows = S.align([{1: "a", 2: "b", 3: "c"}, {2: "B", 3: "C", 4: "D"}])
    assert keys == [2, 3] and rows == [["b", "c"], ["B", "C"]]
    with pytest.raises(S.StatsError, match="share no items"):
        S.align([{1: 1}, {2: 2}])
    with pytest.raises(S.StatsError, match="same items"):
        S.paired_bootstrap("mean", [[1.0, 2.0]], [[1.0]])


# --- multiple-comparison correction ------------------------------------------------------------
# Reference values: statsmodels 0.15.0, statsmodels.stats.multitest.multipletests(P, method=...)
# with method "holm" and "fdr_bh", computed once (statsmodels is not a dependency) and written here.
_P = [0.01, 0.04, 0.03, 0.005, 0.5, 0.2, 0.0001, 0.049, 0.9, 0.03]
_HOLM = [0.08, 0.21, 0.21, 0.045, 1.0, 0.6, 0.001, 0.21, 1.0, 0.21]
_BH = [1 / 30, 2 / 30, 0.06, 0.025, 5 / 9, 0.25, 0.001, 0.07, 0.9, 0.06]


@pytest.mark.parametrize(("method", "expected"), [("holm", _HOLM), ("bh", _BH)])
def test_adjust_pvalues_matches_statsmodels(method: str, expected: list[float]) -> None:
    assert S.adjust_pvalues(_P, method) == pytest.approx(expected, abs=1e-12)


def test_adjust_pvalues_skips_missing_and_checks_input() -> None:
    # NaN / None are not comparisons: the family is the 3 real p-values (Holm: 3x, 2x, 1x).
    out = S.adjust_pvalues([0.01, None, float("nan"), 0.02, 0.04], "holm")
    assert out[0] == pytest.approx(0.03) and out[3] == pytest.approx(0.04) and out[4] == pytest.approx(0.04)
    assert np.isnan(out[1]) and np.isnan(out[2])
    assert S.adjust_pvalues([], "bh") == []
    # Holm is never below the raw p-value and never below BH.
    holm, bh = S.adjust_pvalues(_P, "holm"), S.adjust_pvalues(_P, "bh")
    assert all(h >= b - 1e-12 and h >= p for h, b, p in zip(holm, bh, _P, strict=True))
    with pytest.raises(S.StatsError, match="unknown p-value adjustment 'bonf'"):
        S.adjust_pvalues(_P, "bonf")
    with pytest.raises(S.StatsError, match=r"must lie in \[0, 1\]"):
        S.adjust_pvalues([0.5, 1.5], "holm")
