"""Statistics over per-item predictions: bootstrap CIs, paired bootstrap and permutation tests.

Every statistic is the task's OWN corpus-level aggregation (the function named in its lm-eval
`metric_list`, e.g. `eval_plugins.metrics.score` = mean over question types of weighted F1),
recomputed on resampled items. Resamples are expressed as item weights (counts), so one weight
matrix serves every seed and both systems of a comparison: items are resampled jointly, which is
what makes the tests paired. Several seeds of one cell are aggregated by averaging the metric over
seeds inside each resample (the items are the same documents in every seed).

How a metric is resampled is part of its declaration (eval_plugins.registry, `bootstrap`): the
mean of per-item numbers and the classification label statistics (acc / weighted and macro F1 /
score / missing rate) have vectorised paths here, checked against the real functions in tests;
a corpus metric declared `recompute` (MCC, RMSE, seqeval F1...) and any undeclared aggregation
call the function on each resample.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eval_plugins import registry as R

ALLOWED_MODULES = ("eval_plugins.", "lm_eval.")
MISSING_LABEL = "[missing]"  # eval_plugins.parsers.MISSING (checked in tests)
LABELS = {path: path.removeprefix("labels.") for path in R.LABEL_PATHS}  # declared path -> statistic


class StatsError(ValueError):
    pass


def resolve_aggregation(name: str) -> Callable[[Sequence[Any]], float]:
    """A dotted function from eval_plugins/lm_eval, or an lm-eval registry name like 'mean'."""
    if "." not in name:
        from lm_eval.api.registry import get_aggregation

        fn = get_aggregation(name)
        if fn is None:
            raise StatsError(f"unknown lm-eval aggregation {name!r}")
        return fn
    if not name.startswith(ALLOWED_MODULES):
        raise StatsError(f"aggregation {name!r}: only functions under {ALLOWED_MODULES} are imported")
    module, _, attr = name.rpartition(".")
    fn = getattr(importlib.import_module(module), attr, None)
    if not callable(fn):
        raise StatsError(f"aggregation {name!r}: {module} has no function {attr!r}")
    return fn


def _as_item(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


class Metric:
    """One run's items and the task aggregation; `values(W)` -> the metric under each weight row."""

    def __init__(self, aggregation: str, items: Sequence[Any]) -> None:
        self.aggregation = aggregation
        self.items = [_as_item(v) for v in items]
        self.n = len(self.items)
        if not self.n:
            raise StatsError("no items")
        declared = R.bootstrap_of(aggregation)
        self.kind = LABELS.get(declared or "") or ("mean" if declared == R.MEAN else "generic")
        if self.kind == "mean" or (
            declared is None and all(isinstance(v, int | float) for v in self.items)
            and aggregation.endswith("mean")
        ):
            self.kind = "mean"
            self.x = np.asarray(self.items, dtype=float)
        elif self.kind in LABELS.values():
            groups = sorted({str(g) for g, _, _ in self.items})
            golds = [str(gold) for _, gold, _ in self.items]
            preds = [str(p) for _, _, p in self.items]
            labels = sorted(set(golds) | (set(preds) - {MISSING_LABEL}))
            idx = {c: i for i, c in enumerate(labels)}
            self.G = np.zeros((self.n, len(labels)))
            self.P = np.zeros((self.n, len(labels)))
            for i, (g, p) in enumerate(zip(golds, preds, strict=True)):
                self.G[i, idx[g]] = 1.0
                if p in idx:
                    self.P[i, idx[p]] = 1.0
            self.correct = np.array([g == p for g, p in zip(golds, preds, strict=True)], dtype=float)
            self.missing = np.array([p == MISSING_LABEL for p in preds], dtype=float)
            self.group_masks = [np.array([str(it[0]) == g for it in self.items], dtype=float) for g in groups]
        else:
            self.fn = resolve_aggregation(aggregation)

    def point(self) -> float:
        return float(self.values(np.ones((1, self.n)))[0])

    def values(self, W: np.ndarray) -> np.ndarray:
        W = np.asarray(W, dtype=float)
        if self.kind == "mean":
            return (W @ self.x) / W.sum(axis=1)
        if self.kind == "acc":
            return (W @ self.correct) / W.sum(axis=1)
        if self.kind == "missing_rate":
            return (W @ self.missing) / W.sum(axis=1)
        if self.kind == "f1_weighted":
            return self._f1(W, "weighted")
        if self.kind == "f1_macro":
            return self._f1(W, "macro")
        if self.kind == "score":
            if len(self.group_masks) == 1:  # one question type: plain weighted F1
                return self._f1(W, "weighted")
            per_group = []
            present = []
            for mask in self.group_masks:
                Wg = W * mask
                per_group.append(self._f1(Wg, "weighted"))
                present.append(Wg.sum(axis=1) > 0)
            F, Pm = np.stack(per_group, 1), np.stack(present, 1)
            return (F * Pm).sum(1) / np.maximum(Pm.sum(1), 1)
        out = np.empty(W.shape[0])
        for b, w in enumerate(W):
            counts = np.rint(w).astype(int)
            if not np.allclose(counts, w):
                raise StatsError(f"{self.aggregation}: the generic path needs integer weights")
            out[b] = self.fn([it for it, c in zip(self.items, counts, strict=True) for _ in range(c)])
        return out

    def _f1(self, W: np.ndarray, average: str) -> np.ndarray:
        # sklearn's f1_score with labels = gold labels + real predicted labels, zero_division=0
        support = W @ self.G
        predicted = W @ self.P
        tp = W @ (self.G * self.P)
        denom = support + predicted
        f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
        if average == "weighted":
            total = support.sum(1)
            return np.divide((f1 * support).sum(1), total, out=np.zeros(len(W)), where=total > 0)
        present = denom > 0
        return np.divide((f1 * present).sum(1), present.sum(1), out=np.zeros(len(W)),
                         where=present.sum(1) > 0)


def align(runs: Sequence[dict[Any, Any]]) -> tuple[list[Any], list[list[Any]]]:
    """Runs as {doc key: item}; the common doc keys (sorted) and each run's items in that order."""
    if not runs:
        raise StatsError("no runs to align")
    keys = set(runs[0])
    for r in runs[1:]:
        keys &= set(r)
    if not keys:
        raise StatsError("the runs share no items (different splits, limits or documents?)")
    order = sorted(keys)
    return order, [[r[k] for k in order] for r in runs]


def _seed_mean(metrics: Sequence[Metric], W: np.ndarray) -> np.ndarray:
    return np.mean([m.values(W) for m in metrics], axis=0)


def resample_weights(n: int, n_resamples: int, rng: np.random.Generator, batch: int | None = None):
    """Yield (b, n) count matrices of bootstrap resamples (rows sum to n), in batches."""
    batch = batch or max(1, min(n_resamples, 2_000_000 // max(n, 1)))
    done = 0
    while done < n_resamples:
        b = min(batch, n_resamples - done)
        idx = rng.integers(0, n, size=(b, n))
        W = np.zeros((b, n))
        np.add.at(W, (np.repeat(np.arange(b), n), idx.ravel()), 1.0)
        yield W
        done += b


@dataclass(frozen=True)
class CI:
    estimate: float
    low: float
    high: float
    n_items: int
    n_seeds: int
    seed_sd: float  # spread of the per-seed point estimates (0 for one seed)


def bootstrap_ci(
    aggregation: str,
    seeds_items: Sequence[Sequence[Any]],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    weights: Sequence[np.ndarray] | None = None,
) -> CI:
    """Percentile bootstrap CI of the seed-averaged metric; seeds' items aligned by position.

    `weights`: precomputed resample batches (from `resample_weights`) to share across cells.
    """
    metrics = [Metric(aggregation, items) for items in seeds_items]
    n = metrics[0].n
    if any(m.n != n for m in metrics):
        raise StatsError("every seed must have the same items (align them first)")
    batches = weights if weights is not None else resample_weights(n, n_resamples, np.random.default_rng(seed))
    dist = np.concatenate([_seed_mean(metrics, W) for W in batches])
    alpha = (1 - confidence) / 2
    points = [m.point() for m in metrics]
    return CI(
        estimate=float(np.mean(points)),
        low=float(np.quantile(dist, alpha)),
        high=float(np.quantile(dist, 1 - alpha)),
        n_items=n,
        n_seeds=len(metrics),
        seed_sd=float(np.std(points, ddof=1)) if len(points) > 1 else 0.0,
    )


@dataclass(frozen=True)
class Comparison:
    delta: float  # A - B (seed-averaged)
    low: float
    high: float
    p_value: float
    method: str
    n_items: int


def _p_two_sided(null: np.ndarray, observed: float, adjustment: int) -> float:
    # scipy.stats.permutation_test's definition, so exact cases agree with it exactly
    gamma = abs(np.finfo(float).eps * 100 * observed)
    n = len(null)
    less = ((null <= observed + gamma).sum() + adjustment) / (n + adjustment)
    greater = ((null >= observed - gamma).sum() + adjustment) / (n + adjustment)
    return float(min(1.0, 2 * min(less, greater)))


def paired_bootstrap(
    aggregation: str,
    a_seeds: Sequence[Sequence[Any]],
    b_seeds: Sequence[Sequence[Any]],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    weights: Sequence[np.ndarray] | None = None,
) -> Comparison:
    """Delta A - B with a percentile CI; items resampled jointly (paired).

    p-value: twice the smaller bootstrap tail of the delta around 0, (count + 1) / (B + 1), the
    usual paired-bootstrap test for NLP metrics (Koehn 2004; Berg-Kirkpatrick et al. 2012).
    """
    A = [Metric(aggregation, x) for x in a_seeds]
    B = [Metric(aggregation, x) for x in b_seeds]
    n = A[0].n
    if any(m.n != n for m in [*A, *B]):
        raise StatsError("both systems need the same items in every seed (align them first)")
    batches = weights if weights is not None else resample_weights(n, n_resamples, np.random.default_rng(seed))
    dist = np.concatenate([_seed_mean(A, W) - _seed_mean(B, W) for W in batches])
    alpha = (1 - confidence) / 2
    delta = float(np.mean([m.point() for m in A]) - np.mean([m.point() for m in B]))
    # +1 in numerator and denominator (as a randomised permutation p-value): never exactly 0
    b = len(dist)
    p = float(min(1.0, 2 * (min((dist <= 0).sum(), (dist >= 0).sum()) + 1) / (b + 1)))
    return Comparison(delta, float(np.quantile(dist, alpha)), float(np.quantile(dist, 1 - alpha)),
                      p, "paired bootstrap", n)


def permutation_test(
    aggregation: str,
    a_seeds: Sequence[Sequence[Any]],
    b_seeds: Sequence[Sequence[Any]],
    *,
    n_resamples: int = 9999,
    seed: int = 0,
) -> Comparison:
    """Paired permutation test of A - B: each item's two outputs swap systems with prob. 1/2.

    Exact (all 2**n swaps) when that is at most n_resamples, as scipy does; seeds are paired by
    position (A's seed i with B's seed i). The CI fields repeat the delta (no interval).
    """
    if len(a_seeds) != len(b_seeds):
        raise StatsError("a permutation test pairs seeds: give both systems the same number")
    n = len(a_seeds[0])
    pairs = [Metric(aggregation, [*a, *b]) for a, b in zip(a_seeds, b_seeds, strict=True)]
    if any(m.n != 2 * n for m in pairs):
        raise StatsError("both systems need the same items in every seed (align them first)")

    def stat(M: np.ndarray) -> np.ndarray:  # M: (k, n) 1 = keep, 0 = swap
        WA = np.concatenate([M, 1 - M], axis=1)
        WB = np.concatenate([1 - M, M], axis=1)
        return _seed_mean(pairs, WA) - _seed_mean(pairs, WB)

    observed = float(stat(np.ones((1, n)))[0])
    exact = 2**n <= n_resamples
    if exact:
        codes = np.arange(2**n)
        null = np.concatenate([
            stat(((chunk[:, None] >> np.arange(n)) & 1).astype(float))
            for chunk in np.array_split(codes, max(1, 2**n // 4096))
        ])
    else:
        rng = np.random.default_rng(seed)
        null = np.concatenate([
            stat(rng.integers(0, 2, size=(min(4096, n_resamples - i), n)).astype(float))
            for i in range(0, n_resamples, 4096)
        ])
    p = _p_two_sided(null, observed, adjustment=0 if exact else 1)
    return Comparison(observed, observed, observed, p, "exact permutation" if exact else "permutation", n)


def seed_summary(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds (sd 0 for one seed, nan for none)."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return math.nan, math.nan
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0


# --- multiple-comparison correction ------------------------------------------------------------
# The report makes many paired comparisons at once (55 mixtures x tasks x models): adjust their
# p-values together so a "significant" cell is significant after looking at all of them.


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm (1979) step-down: sorted p_(i) * (m - i + 1), running maximum, capped at 1 (FWER)."""
    m = len(p)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini & Hochberg (1995) step-up q-values (FDR), as scipy computes them."""
    from scipy.stats import false_discovery_control

    return np.asarray(false_discovery_control(p, method="bh"), dtype=float)


ADJUSTMENTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"holm": _holm, "bh": _bh}


def adjust_pvalues(pvalues: Sequence[float | None], method: str = "holm") -> list[float]:
    """Adjusted p-values for one family of comparisons, in the input order.

    method: "holm" (controls the family-wise error rate) or "bh" (Benjamini-Hochberg, controls
    the false discovery rate). None/NaN entries (comparisons that could not be made) stay NaN and
    do not count towards the family size, as R's p.adjust treats NA.
    """
    if method not in ADJUSTMENTS:
        raise StatsError(f"unknown p-value adjustment {method!r}; expected one of {sorted(ADJUSTMENTS)}")
    values = np.array([math.nan if v is None else float(v) for v in pvalues], dtype=float)
    present = ~np.isnan(values)
    bad = values[present & ((values < 0) | (values > 1))]
    if bad.size:
        raise StatsError(f"p-values must lie in [0, 1]; got {bad.tolist()}")
    out = np.full(len(values), math.nan)
    if present.any():
        out[present] = ADJUSTMENTS[method](values[present])
    return out.tolist()
