"""`finbench report SWEEP`: Markdown + CSV + PNG from a sweep's store.

What it writes (default runs/sweeps/NAME/report/):

- report.md            everything below, with the sweep's settings and how numbers were made
- per_task.csv         recipe, mixture, split, task, filter, metric: seed mean, seed sd, 95% CI
- cocktail_effect.csv  per recipe and target task: every mixture vs the single-task mixture of
                       that task on the same test items (paired bootstrap CI + p, permutation p)
- pair_transfer.csv    score on task A of the pair {A, B} minus the single {A} (test)
- general_regression.csv  general tasks: each mixture minus the untrained base model
- size_matched.csv     each pair A+B minus its size-matched single A@A+B on A's task (design kind
                       matched_singles): more tasks vs more steps
- references.csv       peers' published numbers (finbench/report/peers.yaml); like-for-like rows carry ours
- PNGs                 pair_transfer_<recipe>.png (9x9 heatmap), cocktail_effect_<recipe>.png,
                       general_regression_<recipe>.png (when the sweep has general tasks)

Rigour: a mixture is SELECTED for a target task on the dev split (highest seed-mean dev score)
and REPORTED on test; the best test number in a column is only marked, never selected. Scores are
averaged over seeds; CIs are percentile bootstraps over test items with seeds averaged inside each
resample (finbench.report.stats). Both the format-tolerant and the strict parser are reported, so a
format penalty is visible; API models (sweep `api_models:`, finbench.eval.api_models) are extra rows
of the per-task and format-penalty tables, left out of selection, cocktail effect and heatmaps.
Every paired comparison (cocktail effect, general regression, size-matched) is one family: its
paired-bootstrap p-values get Holm and Benjamini-Hochberg corrections (p_holm, p_bh) together.
Published numbers on exactly our split (peers.yaml `split_match: true`) are printed beside ours, in
their metric, with their source; the others, obtained with other prompts, shots or splits, are a
separate context-only table.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from finbench import sweep as SW
from finbench.core.files import write_atomic
from finbench.data.finben import SUITE as FINBEN_SUITE
from finbench.eval import api_models as AM
from finbench.mixtures import design as MD
from finbench.report import peers as PEERS
from finbench.report import stats as S

# Published scores (0-1 scale) with their sources, from finbench/report/peers.yaml (finbench.report.peers).
REFERENCES: list[dict[str, Any]] = PEERS.load()


class ReportError(ValueError):
    pass


def _csv(path: Path, rows: list[dict[str, Any]], fields: list[str]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    write_atomic(path, buf.getvalue(), newline="")


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


def is_control(mixture: str) -> bool:
    """A size-matched single (`A@A+B`): a control for its pair, never a candidate or a baseline."""
    return mixture == SW.BASE or MD.parse_matched(mixture) is not None


def single_task_mixture(data: Data, recipe: str, task: str) -> str | None:
    for (r, m), keys in data.cells.items():
        comps = data.runs[keys[0]]["components"]
        if r == recipe and not is_control(m) and len(comps) == 1 and next(iter(comps.values())) == task:
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

    write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=110, bbox_inches="tight",
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


CI_FIELDS = ["recipe", "mixture", "split", "task", "filter", "metric", "mean", "seed_sd", "n_seeds",
             "low", "high", "n_items"]
CMP_FIELDS = ["delta", "delta_low", "delta_high", "p_bootstrap", "p_permutation", "p_holm", "p_bh", "n_items"]
# The family corrected for multiple comparisons: every paired test the report makes, across
# recipes x mixtures x tasks. The corrected p-value is the paired bootstrap's (always defined).
FAMILY = ("cocktail_effect.csv", "general_regression.csv", "size_matched.csv")
FAMILY_P = "p_bootstrap"
CSV_FIELDS = {  # file -> columns; every section's rows go to one of these
    "per_task.csv": CI_FIELDS,
    "cocktail_effect.csv": ["recipe", "task", "mixture", "baseline", "selected_on_dev", *CMP_FIELDS],
    "pair_transfer.csv": ["recipe", "target", "task", "partner", "pair_mixture", "single_mixture", "delta"],
    "general_regression.csv": ["recipe", "mixture", "task", *CMP_FIELDS],
    "size_matched.csv": ["recipe", "task", "pair_mixture", "matched_mixture", *CMP_FIELDS],
    "references.csv": ["task", "model", "value", "metric", "setting", "source", "split_match", "split", "n",
                       "ours", "recipe", "mixture_here", "value_here"],
}
NO_CI = {"mean": math.nan, "low": math.nan, "high": math.nan}


class Later:
    """A Markdown line written once the report is complete: it quotes corrected p-values, which
    exist only when every comparison of the family has been made."""

    def __init__(self, render: Callable[[], str]) -> None:
        self.render = render

    def __str__(self) -> str:
        return self.render()


@dataclass
class Part:
    """One section of the report: its Markdown lines, its CSV rows (by file) and its figures."""

    md: list[str | Later] = field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)

    def __iadd__(self, other: Part) -> Part:
        self.md += other.md
        for name, rows in other.rows.items():
            self.rows.setdefault(name, []).extend(rows)
        self.figures += other.figures
        return self


@dataclass
class Plan:
    """What every section reads: the store, the settings, and what is in it."""

    data: Data
    ctx: Ctx
    out: Path
    tasks: list[str]
    general: list[str]
    apis: list[str]  # API models: rows, not recipes
    recipes: list[str]
    mix_order: list[str]
    splits: set[str]
    api_table: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    api_rows: list[dict[str, Any]] = field(default_factory=list)
    best_test: dict[str, float] = field(default_factory=dict)  # best test mean of a target task
    selected: dict[tuple[str, str], str] = field(default_factory=dict)  # (recipe, task) -> dev-selected


@dataclass
class RecipeView:
    """One recipe's cells: (mixture, "split:task") -> seed mean and CI, and the dev selection."""

    recipe: str
    cells: dict[str, list[str]]  # mixture -> run keys
    table: dict[tuple[str, str], dict[str, Any]]
    selected: dict[str, str]  # target task -> mixture selected on dev


def build_report(store_path: Path | str, out_dir: Path | str, *, metric: str = "score",
                 filt: str = "tolerant", resamples: int = 1000, seed: int = 0) -> Path:
    data = Data.load(Path(store_path))
    try:
        return _build(data, Path(out_dir), Ctx(data, metric, filt, resamples, seed))
    finally:
        data.store.close()


def _ci_table(plan: Plan, name: str, mixture: str, keys: list[str], row: str
              ) -> tuple[list[dict[str, Any]], dict[tuple[str, str], dict[str, Any]]]:
    """The per-task CI rows of one cell (recipe or API model x mixture) and its table entries,
    keyed (`row`, "split:task").

    Test scores get a bootstrap CI over items; dev scores only a seed mean (dev selects, it is
    not reported). Every filter is a CSV row; the headline filter also fills the table.
    """
    ctx, data = plan.ctx, plan.data
    ctx.recipe = name  # items are read per recipe column
    rows, table = [], {}
    for task in plan.tasks + plan.general:
        for split in ("dev", "test"):
            if split not in plan.splits:
                continue
            for f in dict.fromkeys([ctx.filter, "strict", "tolerant"]):
                vals = data.seed_values(keys, split, task, ctx.metric, f)
                if not vals:
                    continue
                mean, sd = S.seed_summary(vals)
                c = ctx.ci(keys, split, task, f) if split == "test" else {
                    "mean": mean, "seed_sd": sd, "n_seeds": len(vals), "low": math.nan, "high": math.nan,
                    "n_items": 0}
                rows.append({"recipe": name, "mixture": mixture, "split": split, "task": task,
                             "filter": f, "metric": ctx.metric, **c})
                if f == ctx.filter:
                    table[(row, f"{split}:{task}")] = c
    return rows, table


def _plan(data: Data, ctx: Ctx, out: Path) -> Plan:
    cfg = data.config
    ev = cfg.get("eval", {})
    apis = sorted({r for r, m in data.cells if m == AM.MIXTURE})
    recipes = sorted({r for r, _ in data.cells} - set(apis))
    mix_order = [SW.BASE, *cfg.get("mixtures", [])] + sorted({m for _, m in data.cells})
    plan = Plan(
        data=data, ctx=ctx, out=out,
        tasks=list(ev.get("tasks") or sorted({k[2] for k in data.scores})),
        general=list(ev.get("general") or []),
        apis=apis, recipes=recipes,
        mix_order=list(dict.fromkeys(m for m in mix_order if any((r, m) in data.cells for r in recipes))),
        splits={k[1] for k in data.scores},
    )
    for name in apis:  # scored on the same resamples as the mixtures
        rows, table = _ci_table(plan, name, AM.MIXTURE, data.cells[(name, AM.MIXTURE)], name)
        plan.api_rows += rows
        plan.api_table.update(table)
    return plan


def _header(plan: Plan) -> Part:
    cfg, ctx = plan.data.config, plan.ctx
    md: list[str] = [f"# Sweep report: {cfg.get('name', '?')}", ""]
    if cfg.get("description"):
        md += [cfg["description"], ""]
    md += [
        f"- runs finished: {len(plan.data.runs)}; recipes: {', '.join(plan.recipes)}; seeds: {cfg.get('seeds')}",
        "- data seed: " + ("`run`: each seed also draws its own mixture rows" if cfg.get("data_seed") == "run"
                           else "`fixed`: seeds change training order only; every seed trains on the same rows"),
        f"- metric: `{ctx.metric}` with the `{ctx.filter}` parser (strict parser: format-penalty table);"
        f" 95% percentile bootstrap CIs over test items ({ctx.resamples} resamples), seeds averaged"
        " inside each resample",
        "- selection: for each target task the mixture with the best seed-mean **dev** score is"
        " selected (†) and reported on **test**; **bold** marks the best test mean in a column"
        " (information only, not a selection)",
        "",
    ]
    if plan.apis:
        md[-1:] = [f"- API models ({', '.join(plan.apis)}): scored once through their API"
                   " (greedy, same prompts, splits and parsers), listed under each table for comparison;"
                   " never marked best or selected", ""]
    if "dev" not in plan.splits:
        md += ["> No dev scores in the store: no mixture is selected (test is never used to select).", ""]
    return Part(md=md, rows={"per_task.csv": plan.api_rows})


def _api_table_lines(plan: Plan, cols: list[str]) -> list[str]:
    """Rows for the per-task table: never marked best or selected (not candidates of the sweep)."""
    lines = []
    for name in plan.apis:
        cells = [_fmt_ci(plan.api_table[(name, f"test:{t}")]) if (name, f"test:{t}") in plan.api_table else ""
                 for t in cols]
        lines.append(f"| {AM.label(name)} | " + " | ".join(cells) + " |")
    return lines


def _recipe_view(plan: Plan, recipe: str) -> tuple[RecipeView, list[dict[str, Any]]]:
    """One recipe's table (and its per-task CSV rows), and the mixture dev selects per task."""
    cells = {m: plan.data.cells[(recipe, m)] for m in plan.mix_order if (recipe, m) in plan.data.cells}
    rows: list[dict[str, Any]] = []
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for m, keys in cells.items():
        r, t = _ci_table(plan, recipe, m, keys, m)
        rows += r
        table.update(t)
    selected: dict[str, str] = {}
    for task in plan.tasks:
        dev = {m: table[(m, f"dev:{task}")]["mean"] for m in cells if not is_control(m) and (m, f"dev:{task}") in table}
        dev = {m: v for m, v in dev.items() if not math.isnan(v)}
        if dev:
            selected[task] = max(dev, key=lambda m: (dev[m], m))
            plan.selected[(recipe, task)] = selected[task]
    return RecipeView(recipe, cells, table, selected), rows


def _test_table(plan: Plan, view: RecipeView) -> Part:
    cells, table = view.cells, view.table
    cols = [t for t in plan.tasks + plan.general if any((m, f"test:{t}") in table for m in cells)]
    best = {}
    for t in cols:
        means = {m: table[(m, f"test:{t}")]["mean"] for m in cells if (m, f"test:{t}") in table}
        best[t] = max(means.values())
        cand = [v for m, v in means.items() if m != SW.BASE]
        if t in plan.tasks and cand:
            plan.best_test[t] = max(plan.best_test.get(t, -math.inf), max(cand))
    md = [f"## {view.recipe}: test scores (rows: mixtures; columns: tasks)", "",
          "| mixture | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for m in cells:
        cells_txt = []
        for t in cols:
            c = table.get((m, f"test:{t}"))
            s = "" if c is None else f"**{_fmt_ci(c)}**" if c["mean"] == best[t] else _fmt_ci(c)
            cells_txt.append(s + (" †" if c is not None and view.selected.get(t) == m else ""))
        md.append(f"| {m} | " + " | ".join(cells_txt) + " |")
    return Part(md=[*md, *_api_table_lines(plan, cols), ""])


def _cmp_cells(c: dict[str, Any]) -> str:
    """delta [CI] | p bootstrap | p permutation | p Holm | p BH | (a comparison row, p corrected)."""
    return (f"{c['delta']:+.3f} [{c['delta_low']:+.3f}, {c['delta_high']:+.3f}] | {_fmt(c['p_bootstrap'])} | "
            f"{_fmt(c['p_permutation'])} | {_fmt(c.get('p_holm', math.nan))} | {_fmt(c.get('p_bh', math.nan))} |")


def _effect_rows(plan: Plan, view: RecipeView, task: str, single: str) -> tuple[list[dict[str, Any]], list[str | Later],
                                                                              list[tuple[float, float, float]]]:
    """Cocktails that contain `task`, each vs its single-task mixture (CSV rows), and the Markdown
    line and bar of the dev-selected one (or of the single task itself when dev selected it)."""
    rows, md, bars = [], [], []
    selected = view.selected.get(task)
    if selected == single:  # no cocktail beat the single task on dev
        c1 = view.table.get((single, f"test:{task}"), NO_CI)
        md.append(f"| {task} | {single} {_fmt_ci(c1)} | {single} (the single task itself) | +0.000 | – | – | – | – |")
        bars.append((0.0, math.nan, math.nan))
    for m, keys in view.cells.items():
        # cocktails that contain the target; and the dev-selected mixture even when it does not
        # (transfer from other tasks won on dev): its row must not go missing
        if m == single or is_control(m) or (
            task not in _task_of(plan.data.runs[keys[0]]["components"]) and selected != m
        ):
            continue
        c = plan.ctx.compare(keys, view.cells[single], task)
        if c is None:
            continue
        row = {"recipe": view.recipe, "task": task, "mixture": m, "baseline": single,
               "selected_on_dev": selected == m, **c}
        rows.append(row)
        if selected == m:
            base_c, sel_c = view.table.get((single, f"test:{task}"), NO_CI), view.table.get((m, f"test:{task}"), NO_CI)
            head = f"| {task} | {single} {_fmt_ci(base_c)} | {m} {_fmt_ci(sel_c)} | "
            md.append(Later(lambda head=head, row=row: head + _cmp_cells(row)))
            bars.append((c["delta"], c["delta_low"], c["delta_high"]))
    return rows, md, bars


def _cocktail_effect(plan: Plan, view: RecipeView) -> Part:
    """Every mixture vs the single-task mixture of each target task (paired, test)."""
    part = Part(rows={"cocktail_effect.csv": []})
    eff_md: list[str | Later] = []
    labels: list[str] = []
    bars: list[tuple[float, float, float]] = []
    for task in plan.tasks:
        single = single_task_mixture(plan.data, view.recipe, task)
        if single is None:
            continue
        rows, md, b = _effect_rows(plan, view, task, single)
        part.rows["cocktail_effect.csv"] += rows
        eff_md += md
        labels += [task] * len(b)
        bars += b
    part.md = [f"### {view.recipe}: cocktail effect (dev-selected mixture vs single-task, test, paired)", ""]
    if not eff_md:
        part.md += ["No target task has both a single-task mixture and a dev-selected cocktail.", ""]
        return part
    png = plan.out / f"cocktail_effect_{view.recipe}.png"
    bars_png(png, f"{view.recipe}: dev-selected mixture minus single-task (test, {plan.ctx.metric})",
             labels, [b[0] for b in bars], [b[1] for b in bars], [b[2] for b in bars], f"delta {plan.ctx.metric}")
    part.figures.append(png)
    part.md += ["| target task | single-task (test) | selected on dev (test) | delta [95% CI] | p (bootstrap) | "
                "p (permutation) | p Holm | p BH |", "|---|---|---|---|---|---|---|---|", *eff_md, "", f"![cocktail effect]({png.name})", ""]
    return part


def _pair_transfer(plan: Plan, view: RecipeView) -> Part:
    """Score on task A of the pair {A, B} minus the single {A} (test), as a heatmap."""
    runs, cells, table = plan.data.runs, view.cells, view.table
    ingredients: list[str] = []
    comp_task: dict[str, str | None] = {}
    for m, keys in cells.items():
        comps = runs[keys[0]]["components"]
        if not is_control(m) and len(comps) <= 2:
            ingredients += [c for c in comps if c not in ingredients]
        comp_task.update(comps)
    by_set = {frozenset(runs[k[0]]["components"]): m for m, k in cells.items() if not is_control(m)}
    M = np.full((len(ingredients), len(ingredients)), np.nan)
    rows = []
    for i, a in enumerate(ingredients):
        ta, single = comp_task.get(a), by_set.get(frozenset([a]))
        if ta not in plan.tasks or single is None or (single, f"test:{ta}") not in table:
            continue
        for j, b in enumerate(ingredients):
            pair = by_set.get(frozenset([a, b]))
            if i == j or pair is None or (pair, f"test:{ta}") not in table:
                continue
            M[i, j] = table[(pair, f"test:{ta}")]["mean"] - table[(single, f"test:{ta}")]["mean"]
            rows.append({"recipe": view.recipe, "target": a, "task": ta, "partner": b, "pair_mixture": pair,
                         "single_mixture": single, "delta": M[i, j]})
    part = Part(md=[f"### {view.recipe}: pair transfer (score on the row task of the pair minus its single-task "
                    "run, test)", ""], rows={"pair_transfer.csv": rows})
    if not np.isfinite(M).any():
        part.md += ["No pair mixtures with matching single-task runs in this sweep.", ""]
        return part
    png = plan.out / f"pair_transfer_{view.recipe}.png"
    heatmap_png(png, f"{view.recipe}: pair transfer ({plan.ctx.metric}, test)", ingredients, ingredients, M)
    part.figures.append(png)
    part.md += [f"![pair transfer]({png.name})", ""]
    return part


def _regression_cell(c: dict[str, Any] | None) -> str:
    if c is None:
        return ""
    return (f"{c['delta']:+.3f} [{c['delta_low']:+.3f}, {c['delta_high']:+.3f}] "
            f"(p Holm {_fmt(c.get('p_holm', math.nan))}, BH {_fmt(c.get('p_bh', math.nan))})")


def _general_regression(plan: Plan, view: RecipeView) -> Part:
    """General-ability tasks: each mixture minus the untrained base model (test, paired)."""
    general, cells = plan.general, view.cells
    if not general:
        return Part()
    if SW.BASE not in cells:
        return Part(md=["General tasks were scored but the store has no base-model run (set base_eval: true).", ""])
    part = Part(md=[f"### {view.recipe}: general-task regression (mixture minus base model, test)", "",
                    "| mixture | " + " | ".join(general) + " |", "|---" * (len(general) + 1) + "|"],
                rows={"general_regression.csv": []})
    glabels, gvals = [], []
    for m, keys in cells.items():
        if m == SW.BASE:
            continue
        row: list[dict[str, Any] | None] = []
        for g in general:
            c = plan.ctx.compare(keys, cells[SW.BASE], g)
            row.append(None if c is None else {"recipe": view.recipe, "mixture": m, "task": g, **c})
            if c is None:
                continue
            part.rows["general_regression.csv"].append(row[-1])
            glabels.append(f"{m}:{g}")
            gvals.append(c)
        part.md.append(Later(lambda m=m, row=row: f"| {m} | " + " | ".join(_regression_cell(c) for c in row) + " |"))
    part.md.append("")
    if gvals:
        png = plan.out / f"general_regression_{view.recipe}.png"
        bars_png(png, f"{view.recipe}: general tasks, mixture minus base", glabels, [c["delta"] for c in gvals],
                 [c["delta_low"] for c in gvals], [c["delta_high"] for c in gvals], f"delta {plan.ctx.metric}")
        part.figures.append(png)
        part.md += [f"![general regression]({png.name})", ""]
    return part


def _size_matched(plan: Plan, view: RecipeView) -> Part:
    """Each pair A+B vs its size-matched single A@A+B (A alone, as many rows as the pair), scored on
    A's task: what the added task B brings beyond the extra training steps (test, paired)."""
    rows: list[dict[str, Any]] = []
    for m, keys in view.cells.items():
        matched = MD.parse_matched(m)
        if matched is None or matched[1] not in view.cells:
            continue
        ingredient, pair = matched
        task = plan.data.runs[keys[0]]["components"].get(ingredient)
        c = plan.ctx.compare(view.cells[pair], keys, task) if task in plan.tasks else None
        if c is not None:
            rows.append({"recipe": view.recipe, "task": task, "pair_mixture": pair, "matched_mixture": m, **c})
    if not rows:
        return Part()
    md: list[str | Later] = [
        f"### {view.recipe}: pair vs size-matched single (more tasks vs more steps, test, paired)", "",
        "The matched single trains on one task of the pair alone, upsampled to the pair's row count: a"
        " positive delta is what the second task adds beyond the extra steps.", "",
        "| task | pair | size-matched single | delta [95% CI] | p (bootstrap) | p (permutation) | p Holm | p BH |",
        "|---|---|---|---|---|---|---|---|"]
    md += [Later(lambda r=r: f"| {r['task']} | {r['pair_mixture']} | {r['matched_mixture']} | " + _cmp_cells(r))
           for r in rows]
    return Part(md=[*md, ""], rows={"size_matched.csv": rows})


def _recipe_sections(plan: Plan, recipe: str) -> Part:
    view, rows = _recipe_view(plan, recipe)
    part = Part(rows={"per_task.csv": rows})
    for section in (_test_table, _cocktail_effect, _pair_transfer, _size_matched, _general_regression):
        part += section(plan, view)
    return part


def _api_only(plan: Plan) -> Part:
    """Only API runs finished so far: their own table."""
    if not plan.apis or plan.recipes:
        return Part()
    cols = [t for t in plan.tasks + plan.general if any((a, f"test:{t}") in plan.api_table for a in plan.apis)]
    return Part(md=["## API models: test scores (columns: tasks)", "", "| model | " + " | ".join(cols) + " |",
                    "|---" * (len(cols) + 1) + "|", *_api_table_lines(plan, cols), ""])


def _format_penalty(plan: Plan) -> Part:
    """Tolerant minus strict parser, seed-mean over every finished run of a recipe (test)."""
    data, metric = plan.data, plan.ctx.metric
    md = ["## Format penalty (test, mean over all runs of a recipe): tolerant vs strict parser", "",
          "| recipe | task | tolerant | strict | gap |", "|---|---|---|---|---|"]
    labelled = [(r, [k for (name, _), ks in data.cells.items() if name == r for k in ks]) for r in plan.recipes]
    labelled += [(AM.label(name), data.cells[(name, AM.MIXTURE)]) for name in plan.apis]
    for label, keys in labelled:
        for task in plan.tasks:
            tol = data.seed_values(keys, "test", task, metric, "tolerant")
            st = data.seed_values(keys, "test", task, metric, "strict")
            if tol and st:
                a, b = float(np.mean(tol)), float(np.mean(st))
                md.append(f"| {label} | {task} | {a:.3f} | {b:.3f} | {a - b:+.3f} |")
    md += ["", "The gap is what a strict format check would cost each model: an answer that names the right"
           " label inside a sentence (\"The sentiment of this headline is positive.\") counts for the tolerant"
           " parser and as missing for the strict one.", ""]
    return Part(md=md)


def _multiple_comparisons(report: Part) -> Part:
    """Holm and Benjamini-Hochberg over the whole family (every recipe, mixture and task), written
    into each comparison row (so into the CSVs and the Later Markdown lines)."""
    family = [r for name in FAMILY for r in report.rows.get(name, [])]
    ps = [r[FAMILY_P] for r in family]
    for method in ("holm", "bh"):
        for r, adj in zip(family, S.adjust_pvalues(ps, method), strict=True):
            r[f"p_{method}"] = adj
    n = sum(1 for p in ps if p is not None and not math.isnan(p))
    return Part(md=["## Multiple comparisons", "",
                    f"- family: all {n} paired comparisons of this report, across recipes x mixtures x tasks:"
                    " every cocktail vs its single-task mixture (cocktail_effect.csv), every mixture vs the"
                    " base model on the general tasks (general_regression.csv) and every pair vs its"
                    " size-matched single (size_matched.csv)",
                    f"- corrected: the paired-bootstrap p-value (`{FAMILY_P}`); `p_holm` = Holm (family-wise"
                    " error rate), `p_bh` = Benjamini-Hochberg (false discovery rate), finbench.report.stats.adjust_pvalues",
                    ""])


def _ours(plan: Plan, ref: dict[str, Any]) -> list[dict[str, Any]]:
    """Our like-for-like number for a peer row: per recipe, the dev-selected mixture's test seed
    mean in the peer's metric (`ours`: metric,filter). Empty when the store lacks it. A test-only
    variant (e.g. fiqa_sa_fingpt) has no dev: its row names the task whose dev selects (`selected_on`)."""
    metric, _, filt = str(ref["ours"]).partition(",")
    out = []
    for recipe in plan.recipes:
        m = plan.selected.get((recipe, ref.get("selected_on") or ref["task"]))
        vals = plan.data.seed_values(plan.data.cells[(recipe, m)], "test", ref["task"], metric,
                                     filt or plan.ctx.filter) if m else []
        if vals:
            out.append({**ref, "recipe": recipe, "mixture_here": m, "value_here": float(np.mean(vals))})
    return out


def _suite(task: str) -> str:
    return FINBEN_SUITE if task.startswith(f"{FINBEN_SUITE}_") else "finbench"


def _references(plan: Plan) -> Part:
    """Peers' published numbers: like-for-like rows (same split) beside ours, then context rows."""
    limit = plan.data.config.get("eval", {}).get("limit")
    md = ["## Published numbers on our splits (like-for-like)", "",
          "Rows whose split equals ours (finbench/report/peers.yaml `split_match: true`); ours is each recipe's"
          " dev-selected mixture on test, in the peer's metric (seed mean)."
          + (f" **This sweep scored with `limit: {limit}`: not the full split.**" if limit else ""), "",
          "| task | split (n) | model | published | metric | ours: metric,filter | ours (recipe / mixture) | source |",
          "|---|---|---|---|---|---|---|---|"]
    rows = []
    # Peers of the suites this sweep evaluates (finbench, finben_*): FinBen's leaderboard alone
    # has 200+ rows, noise in a report that scored none of them.
    suites = {_suite(t) for t in plan.tasks}
    refs = [r for r in REFERENCES if _suite(r["task"]) in suites]
    for ref in (r for r in refs if r["split_match"]):
        ours = _ours(plan, ref)
        rows += ours or [dict(ref)]
        here = "; ".join(f"{_fmt(o['value_here'])} ({o['recipe']} / {o['mixture_here']})" for o in ours)
        md.append(f"| {ref['task']} | {ref['split']} ({ref['n']}) | {ref['model']} | {ref['value']:.3f} | "
                  f"{ref['metric']} | `{ref['ours']}` | {here or 'not scored'} | {ref['source']} |")
    md += ["", "## Published reference scores (context only: other splits, prompts or shots)", "",
           "| task | model | score | metric | setting | source | best here (test) |", "|---|---|---|---|---|---|---|"]
    for ref in (r for r in refs if not r["split_match"]):
        here = plan.best_test.get(ref["task"])
        rows.append(dict(ref))
        md.append(f"| {ref['task']} | {ref['model']} | {ref['value']:.2f} | {ref['metric']} | {ref['setting']} | "
                  f"{ref['source']} | {_fmt(here) if here is not None else 'not scored'} |")
    if skipped := len(REFERENCES) - len(refs):
        md += ["", f"{skipped} published rows of suites this sweep does not evaluate are left out"
               " (finbench/report/peers.yaml)."]
    return Part(md=[*md, ""], rows={"references.csv": rows})


def _build(data: Data, out: Path, ctx: Ctx) -> Path:
    """The report as a list of sections, in order (references last: they quote the best scores)."""
    plan = _plan(data, ctx, out)
    report = Part()
    report += _header(plan)
    for recipe in plan.recipes:
        report += _recipe_sections(plan, recipe)
    report += _multiple_comparisons(report)  # after every comparison, before anything is written
    for section in (_api_only, _format_penalty, _references):
        report += section(plan)
    for name, fields in CSV_FIELDS.items():
        _csv(out / name, report.rows.get(name, []), fields)
    path = out / "report.md"
    write_atomic(path, "\n".join(map(str, report.md)) + "\n", newline="")
    return path


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
