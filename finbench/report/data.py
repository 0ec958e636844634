"""What a report reads from a sweep's store (`Data`) and the statistics it computes on it (`Ctx`:
seed means, bootstrap CIs and paired tests through finbench.report.stats)."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from finbench import sweep as SW
from finbench.mixtures import design as MD
from finbench.report import stats as S


class ReportError(ValueError):
    pass


@dataclass
class Data:
    store: SW.Store
    config: dict[str, Any]
    runs: dict[str, dict[str, Any]]  # key -> run (done only)
    cells: dict[tuple[str, str], list[str]]  # (recipe, mixture) -> run keys (by seed)
    scores: dict[tuple[str, str, str, str, str], float]
    aggregations: dict[tuple[str, str], str]
    # (task, metric) -> higher_is_better as the metric's declaration says (recorded by the sweep)
    directions: dict[tuple[str, str], bool | None] = field(default_factory=dict)
    _items: dict[tuple[str, str, str, str, str], dict[str, dict[int, Any]]] = field(default_factory=dict)

    @classmethod
    def load(cls, store_path: Path) -> Data:
        if not store_path.is_file():
            raise ReportError(f"{store_path}: no sweep store (run `finbench sweep run` first)")
        store = SW.Store(store_path)
        meta = store.meta()
        config = json.loads(meta.get("sweep_config", "{}"))
        runs = {}
        cells: dict[tuple[str, str], list[str]] = defaultdict(list)
        for r in store.runs("done"):
            d = dict(r)
            d["components"] = json.loads(d["components"])
            runs[d["key"]] = d
            cells[(d["recipe"], d["mixture"])].append(d["key"])
        if not runs:
            raise ReportError(f"{store_path}: no finished runs yet")
        for keys in cells.values():
            keys.sort(key=lambda k: runs[k]["seed"])
        scores = {
            (r["run_key"], r["split"], r["task"], r["metric"], r["filter"]): r["value"]
            for r in store.db.execute("SELECT * FROM scores")
        }
        recorded = list(store.db.execute("SELECT * FROM aggregations"))
        aggs = {(r["task"], r["metric"]): r["aggregation"] for r in recorded}
        directions = {(r["task"], r["metric"]): r["higher_is_better"] for r in recorded}
        return cls(store, config, runs, dict(cells), scores, aggs, directions)

    def items(self, split: str, task: str, filt: str, metric: str, recipe: str) -> dict[str, dict[int, Any]]:
        """run key -> {doc_id: per-item value of `metric`}, for one recipe's runs (memory bound)."""
        ck = (split, task, filt, metric, recipe)
        if ck not in self._items:
            if any(k[4] != recipe for k in self._items):
                self._items.clear()  # recipes are reported one after another
            out: dict[str, dict[int, Any]] = defaultdict(dict)
            for r in self.store.db.execute(
                "SELECT i.run_key, i.doc_id, i.metrics FROM items i JOIN runs r ON r.key = i.run_key "
                "WHERE i.task=? AND i.split=? AND i.filter=? AND r.recipe=? AND r.status='done'",
                (task, split, filt, recipe),
            ):
                m = json.loads(r["metrics"])
                out[r["run_key"]][r["doc_id"]] = m.get(metric, m.get(SW.ANY_METRIC))
            # a run whose items lack this metric cannot be bootstrapped for it
            self._items[ck] = {k: v for k, v in out.items() if all(x is not None for x in v.values())}
        return self._items[ck]

    def sign(self, task: str, metric: str) -> float:
        """+1 when a higher value is better (the default), -1 for a lower-is-better metric (RMSE)."""
        return -1.0 if self.directions.get((task, metric)) in (0, False) else 1.0

    def aggregation(self, task: str, metric: str, sample: Any) -> str:
        agg = self.aggregations.get((task, metric))
        if agg:
            return agg
        if isinstance(sample, int | float):
            return "mean"  # lm-eval's default for per-item numbers (acc, exact_match, ...)
        raise ReportError(f"no aggregation recorded for {task}/{metric}; cannot bootstrap it")

    def seed_values(self, keys: list[str], split: str, task: str, metric: str, filt: str) -> list[float]:
        return [v for k in keys if (v := self.scores.get((k, split, task, metric, filt))) is not None]


@dataclass
class Ctx:
    data: Data
    metric: str
    filter: str
    resamples: int
    seed: int
    recipe: str = ""
    _weights: dict[tuple[str, int], list[np.ndarray]] = field(default_factory=dict)

    def weights(self, task: str, n: int) -> list[np.ndarray]:
        # one set of resamples per (task, n items): every cell of a column is resampled alike
        k = (task, n)
        if k not in self._weights:
            rng = np.random.default_rng([self.seed, n, sum(map(ord, task))])
            self._weights[k] = list(S.resample_weights(n, self.resamples, rng))
        return self._weights[k]

    def seeds_items(self, keys: list[str], split: str, task: str, filt: str | None = None):
        filt = filt or self.filter
        items = self.data.items(split, task, filt, self.metric, self.recipe)
        have = [items[k] for k in keys if k in items]
        if not have:
            return None, None
        order, rows = S.align(have)
        agg = self.data.aggregation(task, self.metric, rows[0][0])
        return agg, rows

    def ci(self, keys: list[str], split: str, task: str, filt: str | None = None) -> dict[str, Any]:
        filt = filt or self.filter
        vals = self.data.seed_values(keys, split, task, self.metric, filt)
        mean, sd = S.seed_summary(vals)
        out = {"mean": mean, "seed_sd": sd, "n_seeds": len(vals), "low": math.nan, "high": math.nan, "n_items": 0}
        agg, rows = self.seeds_items(keys, split, task, filt)
        if rows:
            ci = S.bootstrap_ci(agg, rows, weights=self.weights(task, len(rows[0])))
            out.update(low=ci.low, high=ci.high, n_items=ci.n_items)
        return out

    def compare(self, a: list[str], b: list[str], task: str) -> dict[str, Any] | None:
        items = self.data.items("test", task, self.filter, self.metric, self.recipe)
        A, B = [items[k] for k in a if k in items], [items[k] for k in b if k in items]
        if not A or not B:
            return None
        _, rows = S.align([*A, *B])
        agg = self.data.aggregation(task, self.metric, rows[0][0])
        ra, rb = rows[: len(A)], rows[len(A):]
        boot = S.paired_bootstrap(agg, ra, rb, weights=self.weights(task, len(rows[0])))
        out = {"delta": boot.delta, "delta_low": boot.low, "delta_high": boot.high,
               "p_bootstrap": boot.p_value, "p_permutation": math.nan, "n_items": boot.n_items}
        if len(ra) == len(rb):
            out["p_permutation"] = S.permutation_test(agg, ra, rb, n_resamples=self.resamples, seed=self.seed).p_value
        return out


def task_of(components: dict[str, str | None]) -> set[str | None]:
    return set(components.values())


def is_control(mixture: str) -> bool:
    """A size-matched single (`A@A+B`): a control for its pair, never a candidate or a baseline."""
    return mixture == SW.BASE or MD.parse_matched(mixture) is not None


def single_task_mixture(data: Data, recipe: str, task: str) -> str | None:
    for (r, m), keys in data.cells.items():
        comps = data.runs[keys[0]]["components"]
        if r == recipe and not is_control(m) and len(comps) == 1 and next(iter(comps.values())) == task:
            return m
    return None
