"""The report's opening lines: the sweep, the metric, how CIs are made and how selection works."""

from __future__ import annotations

from finbench.report.parts import Part, Plan


def section(plan: Plan) -> Part:
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
