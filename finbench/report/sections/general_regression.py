"""Per recipe: general-ability tasks, each mixture minus the untrained base model (test, paired)."""

from __future__ import annotations

import math
from typing import Any

from finbench import sweep as SW
from finbench.report.figures import bars_png
from finbench.report.parts import Later, Part, Plan, RecipeView, fmt


def _regression_cell(c: dict[str, Any] | None) -> str:
    if c is None:
        return ""
    return (f"{c['delta']:+.3f} [{c['delta_low']:+.3f}, {c['delta_high']:+.3f}] "
            f"(p Holm {fmt(c.get('p_holm', math.nan))}, BH {fmt(c.get('p_bh', math.nan))})")


def section(plan: Plan, view: RecipeView) -> Part:
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
