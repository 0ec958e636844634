"""Per recipe: score on task A of the pair {A, B} minus the single {A} (test), as a heatmap."""

from __future__ import annotations

import numpy as np

from finbench.report.data import is_control
from finbench.report.figures import heatmap_png
from finbench.report.parts import Part, Plan, RecipeView


def section(plan: Plan, view: RecipeView) -> Part:
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
