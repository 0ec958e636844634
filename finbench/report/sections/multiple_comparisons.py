"""Whole report: Holm and Benjamini-Hochberg corrections over every paired comparison."""

from __future__ import annotations

import math

from finbench.report import stats as S
from finbench.report.parts import FAMILY, FAMILY_P, Part


def section(report: Part) -> Part:
    """Holm and Benjamini-Hochberg over the whole family (every recipe, mixture and task), written
    into each comparison row (so into the CSVs and the Later Markdown lines)."""
    family = [r for name in FAMILY for r in report.rows.get(name, [])]
    ps = [r[FAMILY_P] for r in family]
    for method in ("holm", "bh"):
        for r, adj in zip(family, S.adjust_pvalues(ps, method), strict=True):
            r[f"p_{method}"] = adj
    n = sum(1 for p in ps if p is not None and not math.isnan(p))
    return Part(md=["## Multiple comparisons", "",
                    f"- family: all {n} paired comparisons of this report, across recipes x mixtures x tasks:"
                    " every cocktail vs its single-task mixture (cocktail_effect.csv), every mixture vs the"
                    " base model on the general tasks (general_regression.csv) and every pair vs its"
                    " size-matched single (size_matched.csv)",
                    f"- corrected: the paired-bootstrap p-value (`{FAMILY_P}`); `p_holm` = Holm (family-wise"
                    " error rate), `p_bh` = Benjamini-Hochberg (false discovery rate), finbench.report.stats.adjust_pvalues",
                    ""])
