"""The report's plan: what the store holds (tasks, recipes, mixtures, splits), each cell's seed
mean and CI, and the mixture that dev selects per target task."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from finbench import sweep as SW
from finbench.eval import api_models as AM
from finbench.report import stats as S
from finbench.report.data import Ctx, Data, is_control
from finbench.report.parts import Plan, RecipeView


def ci_table(plan: Plan, name: str, mixture: str, keys: list[str], row: str
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


def make_plan(data: Data, ctx: Ctx, out: Path) -> Plan:
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
        rows, table = ci_table(plan, name, AM.MIXTURE, data.cells[(name, AM.MIXTURE)], name)
        plan.api_rows += rows
        plan.api_table.update(table)
    return plan


def recipe_view(plan: Plan, recipe: str) -> tuple[RecipeView, list[dict[str, Any]]]:
    """One recipe's table (and its per-task CSV rows), and the mixture dev selects per task."""
    cells = {m: plan.data.cells[(recipe, m)] for m in plan.mix_order if (recipe, m) in plan.data.cells}
    rows: list[dict[str, Any]] = []
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for m, keys in cells.items():
        r, t = ci_table(plan, recipe, m, keys, m)
        rows += r
        table.update(t)
    selected: dict[str, str] = {}
    for task in plan.tasks:
        dev = {m: table[(m, f"dev:{task}")]["mean"] for m in cells if not is_control(m) and (m, f"dev:{task}") in table}
        dev = {m: v for m, v in dev.items() if not math.isnan(v)}
        if dev:
            sign = plan.data.sign(task, plan.ctx.metric)  # the best dev score: lowest for RMSE
            selected[task] = max(dev, key=lambda m: (sign * dev[m], m))
            plan.selected[(recipe, task)] = selected[task]
    return RecipeView(recipe, cells, table, selected), rows
