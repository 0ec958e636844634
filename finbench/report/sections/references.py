"""Whole report: peers' published numbers, like-for-like rows beside ours, then context rows."""

from __future__ import annotations

from typing import Any

import numpy as np

from finbench.data.finben import SUITE as FINBEN_SUITE
from finbench.report import peers as PEERS
from finbench.report.parts import Part, Plan, fmt

# Published scores (0-1 scale) with their sources, from finbench/report/peers.yaml (finbench.report.peers).
REFERENCES: list[dict[str, Any]] = PEERS.load()


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


def section(plan: Plan) -> Part:
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
        here = "; ".join(f"{fmt(o['value_here'])} ({o['recipe']} / {o['mixture_here']})" for o in ours)
        md.append(f"| {ref['task']} | {ref['split']} ({ref['n']}) | {ref['model']} | {ref['value']:.3f} | "
                  f"{ref['metric']} | `{ref['ours']}` | {here or 'not scored'} | {ref['source']} |")
    md += ["", "## Published reference scores (context only: other splits, prompts or shots)", "",
           "| task | model | score | metric | setting | source | best here (test) |", "|---|---|---|---|---|---|---|"]
    for ref in (r for r in refs if not r["split_match"]):
        here = plan.best_test.get(ref["task"])
        rows.append(dict(ref))
        md.append(f"| {ref['task']} | {ref['model']} | {ref['value']:.2f} | {ref['metric']} | {ref['setting']} | "
                  f"{ref['source']} | {fmt(here) if here is not None else 'not scored'} |")
    if skipped := len(REFERENCES) - len(refs):
        md += ["", f"{skipped} published rows of suites this sweep does not evaluate are left out"
               " (finbench/report/peers.yaml)."]
    return Part(md=[*md, ""], rows={"references.csv": rows})
