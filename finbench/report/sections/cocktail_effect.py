"""Per recipe: every mixture vs the single-task mixture of each target task (paired, test)."""

from __future__ import annotations

import math
from typing import Any

from finbench.report.data import is_control, single_task_mixture, task_of
from finbench.report.figures import bars_png
from finbench.report.parts import NO_CI, Later, Part, Plan, RecipeView, cmp_cells, fmt_ci


def _effect_rows(plan: Plan, view: RecipeView, task: str, single: str) -> tuple[list[dict[str, Any]], list[str | Later],
                                                                              list[tuple[float, float, float]]]:
    """Cocktails that contain `task`, each vs its single-task mixture (CSV rows), and the Markdown
    line and bar of the dev-selected one (or of the single task itself when dev selected it)."""
    rows, md, bars = [], [], []
    selected = view.selected.get(task)
    if selected == single:  # no cocktail beat the single task on dev
        c1 = view.table.get((single, f"test:{task}"), NO_CI)
        md.append(f"| {task} | {single} {fmt_ci(c1)} | {single} (the single task itself) | +0.000 | – | – | – | – |")
        bars.append((0.0, math.nan, math.nan))
    for m, keys in view.cells.items():
        # cocktails that contain the target; and the dev-selected mixture even when it does not
        # (transfer from other tasks won on dev): its row must not go missing
        if m == single or is_control(m) or (
            task not in task_of(plan.data.runs[keys[0]]["components"]) and selected != m
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
            head = f"| {task} | {single} {fmt_ci(base_c)} | {m} {fmt_ci(sel_c)} | "
            md.append(Later(lambda head=head, row=row: head + cmp_cells(row)))
            bars.append((c["delta"], c["delta_low"], c["delta_high"]))
    return rows, md, bars


def section(plan: Plan, view: RecipeView) -> Part:
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
