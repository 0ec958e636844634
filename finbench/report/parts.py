"""The pieces every report section shares: `Part` (what a section returns), `Plan` and
`RecipeView` (what it reads), the CSV files and their columns, and the number formats."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finbench.core.files import write_atomic
from finbench.eval import api_models as AM
from finbench.report.data import Ctx, Data


def write_csv(path: Path, rows: list[dict[str, Any]], fields: list[str]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    write_atomic(path, buf.getvalue(), newline="")


def fmt(x: float, nd: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def fmt_ci(c: dict[str, Any]) -> str:
    s = fmt(c["mean"])
    if not math.isnan(c["low"]):
        s += f" [{fmt(c['low'])}, {fmt(c['high'])}]"
    return s


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


def api_table_lines(plan: Plan, cols: list[str]) -> list[str]:
    """Rows for the per-task table: never marked best or selected (not candidates of the sweep)."""
    lines = []
    for name in plan.apis:
        cells = [fmt_ci(plan.api_table[(name, f"test:{t}")]) if (name, f"test:{t}") in plan.api_table else ""
                 for t in cols]
        lines.append(f"| {AM.label(name)} | " + " | ".join(cells) + " |")
    return lines


def cmp_cells(c: dict[str, Any]) -> str:
    """delta [CI] | p bootstrap | p permutation | p Holm | p BH | (a comparison row, p corrected)."""
    return (f"{c['delta']:+.3f} [{c['delta_low']:+.3f}, {c['delta_high']:+.3f}] | {fmt(c['p_bootstrap'])} | "
            f"{fmt(c['p_permutation'])} | {fmt(c.get('p_holm', math.nan))} | {fmt(c.get('p_bh', math.nan))} |")
