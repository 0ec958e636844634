"""Per recipe: test scores, rows mixtures, columns tasks (best marked in bold, dev selection with †)."""

from __future__ import annotations

import math

from finbench import sweep as SW
from finbench.report.parts import Part, Plan, RecipeView, api_table_lines, fmt_ci


def section(plan: Plan, view: RecipeView) -> Part:
    cells, table = view.cells, view.table
    cols = [t for t in plan.tasks + plan.general if any((m, f"test:{t}") in table for m in cells)]
    best = {}
    for t in cols:
        means = {m: table[(m, f"test:{t}")]["mean"] for m in cells if (m, f"test:{t}") in table}
        sign = plan.data.sign(t, plan.ctx.metric)  # best = lowest for a lower-is-better metric
        best[t] = sign * max(sign * v for v in means.values())
        cand = [sign * v for m, v in means.items() if m != SW.BASE]
        if t in plan.tasks and cand:
            plan.best_test[t] = sign * max(sign * plan.best_test.get(t, sign * -math.inf), max(cand))
    md = [f"## {view.recipe}: test scores (rows: mixtures; columns: tasks)", "",
          "| mixture | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for m in cells:
        cells_txt = []
        for t in cols:
            c = table.get((m, f"test:{t}"))
            s = "" if c is None else f"**{fmt_ci(c)}**" if c["mean"] == best[t] else fmt_ci(c)
            cells_txt.append(s + (" †" if c is not None and view.selected.get(t) == m else ""))
        md.append(f"| {m} | " + " | ".join(cells_txt) + " |")
    return Part(md=[*md, *api_table_lines(plan, cols), ""])
