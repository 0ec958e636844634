"""`finbench report SWEEP`: Markdown + CSV + PNG from a sweep's store.

What it writes (default runs/sweeps/NAME/report/):

- report.md            everything below, with the sweep's settings and how numbers were made
- per_task.csv         recipe, mixture, split, task, filter, metric: seed mean, seed sd, 95% CI
- cocktail_effect.csv  per recipe and target task: every mixture vs the single-task mixture of
                       that task on the same test items (paired bootstrap CI + p, permutation p)
- pair_transfer.csv    score on task A of the pair {A, B} minus the single {A} (test)
- general_regression.csv  general tasks: each mixture minus the untrained base model
- PNGs                 pair_transfer_<recipe>.png (9x9 heatmap), cocktail_effect_<recipe>.png,
                       general_regression_<recipe>.png (when the sweep has general tasks)

Rigour: a mixture is SELECTED for a target task on the dev split (highest seed-mean dev score)
and REPORTED on test; the best test number in a column is only marked, never selected. Scores are
averaged over seeds; CIs are percentile bootstraps over test items with seeds averaged inside each
resample (finbench.stats). Both the format-tolerant and the strict parser are reported, so a
format penalty is visible; API models (sweep `api_models:`, finbench.api_models) are extra rows
of the per-task and format-penalty tables, left out of selection, cocktail effect and heatmaps.
Published reference scores are labelled with source and setting: they
were obtained with other prompts, shots and splits and are context, not a like-for-like baseline.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from finbench import api_models as AM
from finbench import peers as PEERS
from finbench import stats as S
from finbench import sweep as SW

# Published scores (0-1 scale) with their sources, from finbench/peers.yaml (finbench.peers).
REFERENCES: list[dict[str, Any]] = PEERS.load()


class ReportError(ValueError):
    pass


def _write_atomic(path: Path, write: Callable[[Any], None], binary: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})) as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _csv(path: Path, rows: list[dict[str, Any]], fields: list[str]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    _write_atomic(path, lambda fh: fh.write(buf.getvalue()))


# --------------------------------------------------------------------------------------------
# Reading the store


@dataclass
class Data:
    store: SW.Store
    config: dict[str, Any]
    runs: dict[str, dict[str, Any]]  # key -> run (done only)
    cells: dict[tuple[str, str], list[str]]  # (recipe, mixture) -> run keys (by seed)
    scores: dict[tuple[str, str, str, str, str], float]
    aggregations: dict[tuple[str, str], str]
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
        aggs = {(r["task"], r["metric"]): r["aggregation"] for r in store.db.execute("SELECT * FROM aggregations")}
        return cls(store, config, runs, dict(cells), scores, aggs)

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

    def aggregation(self, task: str, metric: str, sample: Any) -> str:
        agg = self.aggregations.get((task, metric))
        if agg:
            return agg
        if isinstance(sample, int | float):
            return "mean"  # lm-eval's default for per-item numbers (acc, exact_match, ...)
        raise ReportError(f"no aggregation recorded for {task}/{metric}; cannot bootstrap it")

    def seed_values(self, keys: list[str], split: str, task: str, metric: str, filt: str) -> list[float]:
        return [v for k in keys if (v := self.scores.get((k, split, task, metric, filt))) is not None]


# --------------------------------------------------------------------------------------------
# Computations


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


def _task_of(components: dict[str, str | None]) -> set[str | None]:
    return set(components.values())


def single_task_mixture(data: Data, recipe: str, task: str) -> str | None:
    for (r, m), keys in data.cells.items():
        comps = data.runs[keys[0]]["components"]
        if r == recipe and m != SW.BASE and len(comps) == 1 and next(iter(comps.values())) == task:
            return m
    return None


def _fmt(x: float, nd: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _fmt_ci(c: dict[str, Any]) -> str:
    s = _fmt(c["mean"])
    if not math.isnan(c["low"]):
        s += f" [{_fmt(c['low'])}, {_fmt(c['high'])}]"
    return s


# --------------------------------------------------------------------------------------------
# Figures


def _savefig(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    _write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=110, bbox_inches="tight",
                                              metadata={"Software": None}), binary=True)
    plt.close(fig)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def heatmap_png(path: Path, title: str, rows: list[str], cols: list[str], M: np.ndarray) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(cols), 1.0 + 0.6 * len(rows)))
    finite = M[np.isfinite(M)]
    lim = float(np.max(np.abs(finite))) if finite.size else 1.0
    im = ax.imshow(np.ma.masked_invalid(M), cmap="RdBu", vmin=-lim or -1, vmax=lim or 1)
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("added task (pair partner)")
    ax.set_ylabel("target task (scored)")
    for i in range(len(rows)):
        for j in range(len(cols)):
            if np.isfinite(M[i, j]):
                ax.text(j, i, f"{M[i, j]:+.2f}", ha="center", va="center", fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8, label="delta vs single task")
    _savefig(fig, path)


def bars_png(path: Path, title: str, labels: list[str], vals: list[float], lows: list[float],
             highs: list[float], ylabel: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(labels), 3.2))
    v = np.array(vals, dtype=float)
    err = np.array([[max(0.0, a - lo) if np.isfinite(lo) else 0.0 for a, lo in zip(v, lows, strict=True)],
                    [max(0.0, hi - a) if np.isfinite(hi) else 0.0 for a, hi in zip(v, highs, strict=True)]])
    ax.bar(range(len(v)), np.nan_to_num(v), yerr=err, capsize=3,
           color=["#2b8cbe" if x >= 0 else "#e34a33" for x in np.nan_to_num(v)])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(v)), labels, rotation=45, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    _savefig(fig, path)


# --------------------------------------------------------------------------------------------
# The report


def build_report(store_path: Path | str, out_dir: Path | str, *, metric: str = "score",
                 filt: str = "tolerant", resamples: int = 1000, seed: int = 0) -> Path:
    data = Data.load(Path(store_path))
    try:
        return _build(data, Path(out_dir), Ctx(data, metric, filt, resamples, seed))
    finally:
        data.store.close()


def _api_rows(data: Data, ctx: Ctx, apis: list[str], tasks: list[str], splits: set[str],
              per_task_rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """API models' scores with CIs, keyed (name, "split:task"), on the same resamples as mixtures."""
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for name in apis:
        ctx.recipe = name  # items are read per recipe column: here the API model's own run
        keys = data.cells[(name, AM.MIXTURE)]
        for task in tasks:
            for split in ("dev", "test"):
                for f in dict.fromkeys([ctx.filter, "strict", "tolerant"]):
                    vals = data.seed_values(keys, split, task, ctx.metric, f)
                    if split not in splits or not vals:
                        continue
                    c = ctx.ci(keys, split, task, f) if split == "test" else {
                        "mean": S.seed_summary(vals)[0], "seed_sd": S.seed_summary(vals)[1],
                        "n_seeds": len(vals), "low": math.nan, "high": math.nan, "n_items": 0}
                    per_task_rows.append({"recipe": name, "mixture": AM.MIXTURE, "split": split, "task": task,
                                          "filter": f, "metric": ctx.metric, **c})
                    if f == ctx.filter:
                        table[(name, f"{split}:{task}")] = c
    return table


def _api_table_lines(table: dict[tuple[str, str], dict[str, Any]], apis: list[str], cols: list[str]) -> list[str]:
    """Rows for the per-task table: never marked best or selected (not candidates of the sweep)."""
    lines = []
    for name in apis:
        cells = [_fmt_ci(table[(name, f"test:{t}")]) if (name, f"test:{t}") in table else "" for t in cols]
        lines.append(f"| {AM.label(name)} | " + " | ".join(cells) + " |")
    return lines


def _build(data: Data, out: Path, ctx: Ctx) -> Path:
    cfg = data.config
    ev = cfg.get("eval", {})
    splits_present = {k[1] for k in data.scores}
    tasks = list(ev.get("tasks") or sorted({k[2] for k in data.scores}))
    general = list(ev.get("general") or [])
    apis = sorted({r for r, m in data.cells if m == AM.MIXTURE})  # API models: rows, not recipes
    recipes = sorted({r for r, _ in data.cells} - set(apis))
    mix_order = [m for m in [SW.BASE, *cfg.get("mixtures", [])]] + sorted({m for _, m in data.cells})
    mix_order = list(dict.fromkeys(m for m in mix_order if any((r, m) in data.cells for r in recipes)))
    md: list[str] = [f"# Sweep report: {cfg.get('name', '?')}", ""]
    if cfg.get("description"):
        md += [cfg["description"], ""]
    md += [
        f"- runs finished: {len(data.runs)}; recipes: {', '.join(recipes)}; seeds: {cfg.get('seeds')}",
        f"- metric: `{ctx.metric}` with the `{ctx.filter}` parser (strict parser: format-penalty table);"
        f" 95% percentile bootstrap CIs over test items ({ctx.resamples} resamples), seeds averaged"
        " inside each resample",
        "- selection: for each target task the mixture with the best seed-mean **dev** score is"
        " selected (†) and reported on **test**; **bold** marks the best test mean in a column"
        " (information only, not a selection)",
        "",
    ]
    if apis:
        md[-1:] = [f"- API models ({', '.join(apis)}): scored once through their API"
                   " (greedy, same prompts, splits and parsers), listed under each table for comparison;"
                   " never marked best or selected", ""]
    if "dev" not in splits_present:
        md += ["> No dev scores in the store: no mixture is selected (test is never used to select).", ""]

    per_task_rows: list[dict[str, Any]] = []
    effect_rows: list[dict[str, Any]] = []
    pair_rows: list[dict[str, Any]] = []
    regress_rows: list[dict[str, Any]] = []
    best_test: dict[str, float] = {}
    api_table = _api_rows(data, ctx, apis, tasks + general, splits_present, per_task_rows)

    for recipe in recipes:
        ctx.recipe = recipe
        cells = {m: data.cells[(recipe, m)] for m in mix_order if (recipe, m) in data.cells}
        # per-task table
        table: dict[tuple[str, str], dict[str, Any]] = {}
        for m, keys in cells.items():
            for task in tasks + general:
                for split in ("dev", "test"):
                    if split not in splits_present:
                        continue
                    for f in dict.fromkeys([ctx.filter, "strict", "tolerant"]):
                        vals = data.seed_values(keys, split, task, ctx.metric, f)
                        if not vals:
                            continue
                        c = ctx.ci(keys, split, task, f) if split == "test" else {
                            "mean": S.seed_summary(vals)[0], "seed_sd": S.seed_summary(vals)[1],
                            "n_seeds": len(vals), "low": math.nan, "high": math.nan, "n_items": 0}
                        per_task_rows.append({"recipe": recipe, "mixture": m, "split": split, "task": task,
                                              "filter": f, "metric": ctx.metric, **c})
                        if f == ctx.filter:
                            table[(m, f"{split}:{task}")] = c
        selected: dict[str, str] = {}
        for task in tasks:
            dev = {m: table[(m, f"dev:{task}")]["mean"] for m in cells if m != SW.BASE and (m, f"dev:{task}") in table}
            dev = {m: v for m, v in dev.items() if not math.isnan(v)}
            if dev:
                selected[task] = max(dev, key=lambda m: (dev[m], m))
        cols = [t for t in tasks + general if any((m, f"test:{t}") in table for m in cells)]
        best = {}
        for t in cols:
            means = {m: table[(m, f"test:{t}")]["mean"] for m in cells if (m, f"test:{t}") in table}
            best[t] = max(means.values())
            if t in tasks:
                cand = [v for m, v in means.items() if m != SW.BASE]
                if cand:
                    best_test[t] = max(best_test.get(t, -math.inf), max(cand))
        md += [f"## {recipe}: test scores (rows: mixtures; columns: tasks)", ""]
        md += ["| mixture | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for m in cells:
            cells_txt = []
            for t in cols:
                c = table.get((m, f"test:{t}"))
                if c is None:
                    cells_txt.append("")
                    continue
                s = _fmt_ci(c)
                if c["mean"] == best[t]:
                    s = f"**{s}**"
                if selected.get(t) == m:
                    s += " †"
                cells_txt.append(s)
            md.append(f"| {m} | " + " | ".join(cells_txt) + " |")
        md += _api_table_lines(api_table, apis, cols)
        md.append("")

        # cocktail effect: every mixture vs the single-task mixture of each target task
        eff_md = []
        labels, vals, lows, highs = [], [], [], []
        for task in tasks:
            single = single_task_mixture(data, recipe, task)
            if single is None:
                continue
            if selected.get(task) == single:  # no cocktail beat the single task on dev
                c1 = table.get((single, f"test:{task}"), {"mean": math.nan, "low": math.nan, "high": math.nan})
                eff_md.append(f"| {task} | {single} {_fmt_ci(c1)} | {single} (the single task itself) | "
                              "+0.000 | – | – |")
                labels.append(task)
                vals.append(0.0)
                lows.append(math.nan)
                highs.append(math.nan)
            for m, keys in cells.items():
                # cocktails that contain the target; and the dev-selected mixture even when it
                # does not (transfer from other tasks won on dev): its row must not go missing
                if m == single or m == SW.BASE or (
                    task not in _task_of(data.runs[keys[0]]["components"]) and selected.get(task) != m
                ):
                    continue
                c = ctx.compare(keys, cells[single], task)
                if c is None:
                    continue
                row = {"recipe": recipe, "task": task, "mixture": m, "baseline": single,
                       "selected_on_dev": selected.get(task) == m, **c}
                effect_rows.append(row)
                if selected.get(task) == m:
                    base_c = table.get((single, f"test:{task}"), {"mean": math.nan, "low": math.nan, "high": math.nan})
                    sel_c = table.get((m, f"test:{task}"), {"mean": math.nan, "low": math.nan, "high": math.nan})
                    eff_md.append(
                        f"| {task} | {single} {_fmt_ci(base_c)} | {m} {_fmt_ci(sel_c)} | "
                        f"{c['delta']:+.3f} [{c['delta_low']:+.3f}, {c['delta_high']:+.3f}] | "
                        f"{_fmt(c['p_bootstrap'])} | {_fmt(c['p_permutation'])} |"
                    )
                    labels.append(task)
                    vals.append(c["delta"])
                    lows.append(c["delta_low"])
                    highs.append(c["delta_high"])
        md += [f"### {recipe}: cocktail effect (dev-selected mixture vs single-task, test, paired)", ""]
        if eff_md:
            md += ["| target task | single-task (test) | selected on dev (test) | delta [95% CI] | p (bootstrap) | p (permutation) |",
                   "|---|---|---|---|---|---|", *eff_md, ""]
            png = out / f"cocktail_effect_{recipe}.png"
            bars_png(png, f"{recipe}: dev-selected mixture minus single-task (test, {ctx.metric})",
                     labels, vals, lows, highs, f"delta {ctx.metric}")
            md += [f"![cocktail effect]({png.name})", ""]
        else:
            md += ["No target task has both a single-task mixture and a dev-selected cocktail.", ""]

        # pair transfer heatmap
        ingredients: list[str] = []
        for m, keys in cells.items():
            if m != SW.BASE and len(data.runs[keys[0]]["components"]) <= 2:
                ingredients += [c for c in data.runs[keys[0]]["components"] if c not in ingredients]
        comp_task: dict[str, str | None] = {}
        for keys in cells.values():
            comp_task.update(data.runs[keys[0]]["components"])
        by_set = {frozenset(data.runs[k[0]]["components"]): m for m, k in cells.items() if m != SW.BASE}
        M = np.full((len(ingredients), len(ingredients)), np.nan)
        for i, a in enumerate(ingredients):
            ta = comp_task.get(a)
            single = by_set.get(frozenset([a]))
            if ta not in tasks or single is None or (single, f"test:{ta}") not in table:
                continue
            base_v = table[(single, f"test:{ta}")]["mean"]
            for j, b in enumerate(ingredients):
                pair = by_set.get(frozenset([a, b]))
                if i == j or pair is None or (pair, f"test:{ta}") not in table:
                    continue
                M[i, j] = table[(pair, f"test:{ta}")]["mean"] - base_v
                pair_rows.append({"recipe": recipe, "target": a, "task": ta, "partner": b, "pair_mixture": pair,
                                  "single_mixture": single, "delta": M[i, j]})
        md += [f"### {recipe}: pair transfer (score on the row task of the pair minus its single-task run, test)", ""]
        if np.isfinite(M).any():
            png = out / f"pair_transfer_{recipe}.png"
            heatmap_png(png, f"{recipe}: pair transfer ({ctx.metric}, test)", ingredients, ingredients, M)
            md += [f"![pair transfer]({png.name})", ""]
        else:
            md += ["No pair mixtures with matching single-task runs in this sweep.", ""]

        # general regression vs the untrained base model
        if general and SW.BASE in cells:
            md += [f"### {recipe}: general-task regression (mixture minus base model, test)", "",
                   "| mixture | " + " | ".join(general) + " |", "|---" * (len(general) + 1) + "|"]
            glabels, gvals = [], []
            for m, keys in cells.items():
                if m == SW.BASE:
                    continue
                row = []
                for g in general:
                    c = ctx.compare(keys, cells[SW.BASE], g)
                    if c is None:
                        row.append("")
                        continue
                    regress_rows.append({"recipe": recipe, "mixture": m, "task": g, **c})
                    row.append(f"{c['delta']:+.3f} [{c['delta_low']:+.3f}, {c['delta_high']:+.3f}]")
                    glabels.append(f"{m}:{g}")
                    gvals.append(c)
                md.append(f"| {m} | " + " | ".join(row) + " |")
            md.append("")
            if gvals:
                png = out / f"general_regression_{recipe}.png"
                bars_png(png, f"{recipe}: general tasks, mixture minus base", glabels,
                         [c["delta"] for c in gvals], [c["delta_low"] for c in gvals],
                         [c["delta_high"] for c in gvals], f"delta {ctx.metric}")
                md += [f"![general regression]({png.name})", ""]
        elif general:
            md += ["General tasks were scored but the store has no base-model run (set base_eval: true).", ""]

    if apis and not recipes:  # only API runs finished so far
        cols = [t for t in tasks + general if any((a, f"test:{t}") in api_table for a in apis)]
        md += ["## API models: test scores (columns: tasks)", "", "| model | " + " | ".join(cols) + " |",
               "|---" * (len(cols) + 1) + "|", *_api_table_lines(api_table, apis, cols), ""]

    # format penalty: tolerant minus strict, seed-mean over every finished run (test)
    md += ["## Format penalty (test, mean over all runs of a recipe): tolerant vs strict parser", "",
           "| recipe | task | tolerant | strict | gap |", "|---|---|---|---|---|"]
    penalty_rows = [(recipe, [k for (r, _), ks in data.cells.items() if r == recipe for k in ks]) for recipe in recipes]
    penalty_rows += [(AM.label(name), data.cells[(name, AM.MIXTURE)]) for name in apis]
    for label, keys in penalty_rows:
        for task in tasks:
            tol = data.seed_values(keys, "test", task, ctx.metric, "tolerant")
            st = data.seed_values(keys, "test", task, ctx.metric, "strict")
            if tol and st:
                a, b = float(np.mean(tol)), float(np.mean(st))
                md.append(f"| {label} | {task} | {a:.3f} | {b:.3f} | {a - b:+.3f} |")
    md += ["", "The gap is what a strict format check would cost each model: an answer that names the right"
           " label inside a sentence (\"The sentiment of this headline is positive.\") counts for the tolerant"
           " parser and as missing for the strict one.", ""]

    md += ["## Published reference scores (context, not like-for-like)", "",
           "| task | model | score | metric | setting | source | best here (test) |", "|---|---|---|---|---|---|---|"]
    for ref in REFERENCES:
        here = best_test.get(ref["task"])
        md.append(f"| {ref['task']} | {ref['model']} | {ref['value']:.2f} | {ref['metric']} | {ref['setting']} | "
                  f"{ref['source']} | {_fmt(here) if here is not None else 'not scored'} |")
    md.append("")

    ci_fields = ["recipe", "mixture", "split", "task", "filter", "metric", "mean", "seed_sd", "n_seeds",
                 "low", "high", "n_items"]
    _csv(out / "per_task.csv", per_task_rows, ci_fields)
    cmp_fields = ["delta", "delta_low", "delta_high", "p_bootstrap", "p_permutation", "n_items"]
    _csv(out / "cocktail_effect.csv", effect_rows, ["recipe", "task", "mixture", "baseline", "selected_on_dev", *cmp_fields])
    _csv(out / "pair_transfer.csv", pair_rows, ["recipe", "target", "task", "partner", "pair_mixture", "single_mixture", "delta"])
    _csv(out / "general_regression.csv", regress_rows, ["recipe", "mixture", "task", *cmp_fields])
    _csv(out / "references.csv", REFERENCES, ["task", "model", "value", "metric", "setting", "source"])
    report = out / "report.md"
    _write_atomic(report, lambda fh: fh.write("\n".join(md) + "\n"))
    return report


def _cmd_report(args: argparse.Namespace) -> int:
    if args.sweep.endswith((".sqlite", ".db")):
        store = Path(args.sweep)
        out = Path(args.out) if args.out else store.parent / "report"
    else:
        sweep = SW.load_sweep(args.sweep)
        store = sweep.store
        out = Path(args.out) if args.out else store.parent / "report"
    path = build_report(store, out, metric=args.metric, filt=args.filter, resamples=args.resamples, seed=args.seed)
    print(f"report: {path}")
    for p in sorted(out.glob("*")):
        if p.suffix in (".csv", ".png"):
            print(f"  {p}")
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="Markdown + CSV + PNG report of a sweep's store")
    p.add_argument("sweep", help="sweep name / file, or the path of a sweep store (.sqlite)")
    p.add_argument("--out", default=None, help="output folder (default: next to the store, report/)")
    p.add_argument("--metric", default="score")
    p.add_argument("--filter", default="tolerant", help="parser filter for the headline tables")
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="finbench")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["report", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except ValueError as err:
        print(f"finbench: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
