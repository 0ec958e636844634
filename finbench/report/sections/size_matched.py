"""Per recipe: each pair A+B vs its size-matched single A@A+B on A's task (test, paired)."""

from __future__ import annotations

from typing import Any

from finbench.mixtures import design as MD
from finbench.report.parts import Later, Part, Plan, RecipeView, cmp_cells


def section(plan: Plan, view: RecipeView) -> Part:
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
    md += [Later(lambda r=r: f"| {r['task']} | {r['pair_mixture']} | {r['matched_mixture']} | " + cmp_cells(r))
           for r in rows]
    return Part(md=[*md, ""], rows={"size_matched.csv": rows})
