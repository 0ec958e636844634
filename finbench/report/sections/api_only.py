"""Whole report: API models' own table when only API runs have finished."""

from __future__ import annotations

from finbench.report.parts import Part, Plan, api_table_lines


def section(plan: Plan) -> Part:
    """Only API runs finished so far: their own table."""
    if not plan.apis or plan.recipes:
        return Part()
    cols = [t for t in plan.tasks + plan.general if any((a, f"test:{t}") in plan.api_table for a in plan.apis)]
    return Part(md=["## API models: test scores (columns: tasks)", "", "| model | " + " | ".join(cols) + " |",
                    "|---" * (len(cols) + 1) + "|", *api_table_lines(plan, cols), ""])
