"""The report's sections, one module each, in the order they are written.

A section is a module with one function `section`: per recipe `section(plan, view) -> Part`, for
the whole report `section(plan) -> Part` (docs/add_report_section.md). The header opens the
report; the multiple-comparisons section runs after every recipe's comparisons and before the
whole-report sections (it corrects the p-values those comparisons made).
"""

from __future__ import annotations

from finbench.report.sections import (
    api_only,
    cocktail_effect,
    format_penalty,
    general_regression,
    header,
    multiple_comparisons,
    pair_transfer,
    references,
    size_matched,
    test_table,
)

RECIPE_SECTIONS = (
    test_table.section,
    cocktail_effect.section,
    pair_transfer.section,
    size_matched.section,
    general_regression.section,
)
REPORT_SECTIONS = (api_only.section, format_penalty.section, references.section)  # references last: they quote the best scores
HEADER = header.section
MULTIPLE_COMPARISONS = multiple_comparisons.section
