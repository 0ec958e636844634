"""FinQA / ConvFinQA: the official execution accuracy (`exe_acc`) beside our numeric reading.

`exe_acc` is FinQA's own criterion (czyssrs/FinQA code/evaluate/evaluate.py @
0f16e2867befa6840783e58be38c9efb9229d742), applied to the raw generation under its own filter
`official`, with no reading of ours in between: the generation, whitespace-stripped, is a
program when it opens with `name(` (run by `finqa_program.official_execute`: exact row names,
the last row of a repeated name, "," "$" "(" "%" cell rules, `str_to_num` literals, lower-case
operations only, 5-decimal rounding, exact equality with exe_ans), otherwise a bare number read
by the official `str_to_num` after removing "$" and matched by `round(., 5) == exe_ans`. Text
around the number, a unit word or "(x)" negatives score 0, as they do officially.

The other filters (`tolerant`, `strict`, `finben`) keep eval_plugins.numeric's lenient reading
and eval_plugins.finben_em's FinBen match (see the tasks' READMEs for every named metric).
"""

from __future__ import annotations

from collections.abc import Sequence

from eval_plugins import finben_em as FE
from eval_plugins import finqa_program as P

OFFICIAL = "[official] "
METRIC = "exe_acc"


def gold_exe_ans(doc: dict) -> float | str | None:
    """The doc's exe_ans: a float, or "yes"/"no" (stored as text: Arrow columns have one type)."""
    text = doc.get("exe_ans")
    if not isinstance(text, str) or not text.strip():
        return None
    text = text.strip()
    if text.lower() in ("yes", "no"):
        return text.lower()
    try:
        return float(text)
    except ValueError:
        return None


def exe_acc(doc: dict, generation: object) -> float:
    """1.0 when the raw generation is officially correct for the doc's exe_ans, else 0.0."""
    gold = gold_exe_ans(doc)
    if gold is None or not isinstance(generation, str):
        return 0.0
    # The generation follows "Answer:" and ends at a stop sequence: only the whitespace around it
    # is removed (the one reading step; the oracle rows are scored without it).
    return float(P.official_match(generation.strip(), gold, doc.get("table") or None))


class OfficialFilter(FE.MarkFilter):
    """Generations marked for the official FinQA scorer."""

    MARK = OFFICIAL


def process_results(doc: dict, results: Sequence[str]) -> dict[str, float]:
    """Under the `official` filter: {exe_acc}; otherwise eval_plugins.finben_em's results."""
    first = results[0] if results else None
    if isinstance(first, str) and first.startswith(OFFICIAL):
        return {METRIC: exe_acc(doc, first[len(OFFICIAL) :])}
    return FE.process_results(doc, results)
