"""Metric sets of the answer tasks whose `process_results` scores each item on its own (0/1 or a
per-item F1): FinQA / ConvFinQA (`numeric_generate_yaml`), TAT-QA and FinanceBench. Every metric
is the mean of its per-item numbers (eval_plugins.numeric.mean), so the statistics resample it as
a mean. The per-item readings live in eval_plugins.numeric, finqa_metrics, finben_em and the
tasks' utils.py; each task's README says what every named metric means.
"""

from __future__ import annotations

from eval_plugins.numeric import mean
from eval_plugins.registry import MEAN, Metric, declare


def _mean(name: str, higher_is_better: bool = True) -> Metric:
    return Metric(name, mean, higher_is_better=higher_is_better, bootstrap=MEAN)


# FinQA, ConvFinQA: numeric_generate_yaml, under its filters tolerant / strict / finben / official.
NUMERIC = declare(
    _mean("score"),  # = tolerant_match: the headline number
    _mean("exe_acc"),  # FinQA's official execution accuracy on the raw output (filter `official`)
    _mean("exact_match"),  # our reading, equal to a gold form at 5 decimals
    _mean("rounded_match"),  # lenient: equal at the precision the gold shows (gold 6 accepts 6.49)
    _mean("tolerant_match"),
    _mean("missing_rate", higher_is_better=False),
    _mean("finben_em"),  # FinBen's rule: raw output == gold string (reported under filter `finben`)
)

# TAT-QA (tasks/tatqa): the official numeracy-focused EM / F1 and lenient variants.
TATQA = declare(
    _mean("score"),  # = f1, the official numeracy-focused F1
    _mean("exact_match"),  # the official EM (scale-aware)
    _mean("f1"),
    _mean("exact_match_intnorm"),  # lenient: the official EM, integers read as floats ("2018" = 2018.0)
    _mean("f1_intnorm"),  # lenient: the official F1, integers read as floats
    _mean("tolerant_match"),  # 1% numeric match on arithmetic/count questions, EM on spans
    _mean("missing_rate", higher_is_better=False),
)

# FinanceBench (tasks/financebench): numeric or containment match, and an optional LLM judge.
FINANCEBENCH = declare(
    _mean("score"),  # numeric (1% relative tolerance) or containment match
    _mean("numeric_match"),
    _mean("text_match"),
    _mean("missing_rate", higher_is_better=False),
    _mean("judge"),  # only reported when FINBENCH_JUDGE_URL and FINBENCH_JUDGE_MODEL are set
)
