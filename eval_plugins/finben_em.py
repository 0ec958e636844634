"""FinBen's strict exact match for FinQA / ConvFinQA, reported beside our tolerant numeric score.

FinBen (PIXIU/FLARE) scores its QA tasks (`flare_finqa`, `flare_convfinqa`) with
`acc = 1.0 if results[0].strip() == gold else 0.0`: the raw generation, whitespace-stripped, must
equal the gold answer string character for character; no number parsing, no tolerance, no
"Answer:" line search (The-FinAI/PIXIU, src/tasks/flare.py, class `QA.process_results`, commit
040f886132a85feccefc66c348915a442d58b89e; Xie et al. 2023, arXiv:2306.05443; FinBen: Xie et al.
2024, arXiv:2402.12659). Published FinBen FinQA/ConvFinQA "EmAcc" numbers are this metric.

Here the metric is `finben_em` under its own filter `finben`, which hands process_results the
raw generation (marked with RAW so it is never mistaken for a parsed answer). The gold strings
are the row's `golds` (FinQA: the upstream answer string and exe_ans; ConvFinQA: the turn's
exe_ans as formatted by the loader); writing any one of them exactly counts. FinBen's own gold is
its dataset's `answer` field, one string; its formatting of exe_ans is not reproduced here (not
verifiable offline), so compare with FinBen's numbers as "strict string match", not bit for bit.
The tolerant/strict filters keep eval_plugins.numeric's scoring unchanged.

Bounded work (issue 21): one strip and one string comparison per gold, linear in the output, so
unlike the parsers it needs no read cap (`make bench` times it with them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lm_eval.api.filter import Filter

from eval_plugins import numeric as N

RAW = "[raw] "
METRIC = "finben_em"


def exact_match(response: object, golds: Iterable[object]) -> float:
    """1.0 when the stripped response equals a gold string exactly, else 0.0 (FinBen's rule)."""
    if not isinstance(response, str):
        return 0.0
    text = response.strip()
    return float(any(text == str(g).strip() for g in golds if g is not None and str(g).strip()))


class MarkFilter(Filter):
    """Passes each generation through untouched, prefixed with `MARK` so that `process_results`
    knows which filter it came from (lm-eval does not tell it)."""

    MARK = ""

    def apply(self, resps: Iterable[list[str]], docs: Iterable[dict]) -> list[list[str]]:
        return [[self.MARK + (r if isinstance(r, str) else "") for r in doc_resps] for doc_resps in resps]


class RawFilter(MarkFilter):
    """Generations marked as raw, for FinBen's exact match."""

    MARK = RAW


def process_results(doc: dict, results: Sequence[str]) -> dict[str, float]:
    """Under the `finben` filter: {finben_em}; under any other filter: eval_plugins.numeric's scores."""
    first = results[0] if results else None
    if isinstance(first, str) and first.startswith(RAW):
        golds = doc.get("golds") or [doc["label"]]
        return {METRIC: exact_match(first[len(RAW) :], golds)}
    return N.process_results(doc, results)
