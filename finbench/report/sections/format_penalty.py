"""Whole report: tolerant minus strict parser per recipe and task (the cost of a strict format check)."""

from __future__ import annotations

import numpy as np

from finbench.eval import api_models as AM
from finbench.report.parts import Part, Plan


def section(plan: Plan) -> Part:
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
