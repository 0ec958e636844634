"""Every parser's work is bounded by its input, and capped at MAX_OUTPUT_CHARS.

The old numeric reader took more than 100 s on a 200 KB answer (`stated_number`, inside C regex
code) and NER's tolerant line pattern was cubic in a whitespace run (111 s at 4 KB). Each test
here parses a 200 KB adversarial output; the bound (5 s for all parsers on one input) is some
twenty times what the code needs on a loaded machine and far below what the old code took.
The time per KB from 1 KB to 1 MB is `make bench`'s (bench/bench_parsers.py).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from eval_plugins import finben_em as FE
from eval_plugins import ner as NER
from eval_plugins import numeric as N
from eval_plugins.parsers import MAX_OUTPUT_CHARS, MISSING, LabelParser

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_parsers as BP  # noqa: E402

KB200 = 200 * 1024
BOUND_S = 5.0


@pytest.mark.parametrize("input_name", sorted(BP.ADVERSARIAL))
def test_a_200_kb_adversarial_answer_parses_well_under_a_second_each(input_name) -> None:
    text = BP.ADVERSARIAL[input_name](KB200)
    assert len(text) == KB200
    start = time.perf_counter()
    for fn in BP.SCALING.values():
        fn(text)
    assert time.perf_counter() - start < BOUND_S


def test_the_reports_cases_stay_fast() -> None:
    # The issue's own inputs: 'The answer is 1,234.5 million. ' * 700 (21.7 KB, 0.44 s) and 10x it.
    for repeat in (700, 7000):
        text = "The answer is 1,234.5 million. " * repeat
        start = time.perf_counter()
        assert N.encode(N.extract(text)) == "1234.5"
        assert N.stated_number(text) == N.Number(1234.5, 1)
        assert time.perf_counter() - start < BOUND_S


def test_ner_whitespace_run_is_linear_and_scores_the_same() -> None:
    start = time.perf_counter()
    # 20 KB: inside the cap (the old pattern took 111 s on a 4 KB run)
    assert NER.parse_lines("Apple Inc" + " " * 20_000 + ", organization") == [("Apple Inc", "organization")]
    assert time.perf_counter() - start < BOUND_S
    # a run holding a tab is still the tab separator; spaces inside an entity do not matter
    assert NER.parse_lines("Apple   Inc \t  organization") == [("Apple Inc", "organization")]


def test_the_cap_reads_the_first_32_kb_and_a_strict_reading_of_more_abstains() -> None:
    labels = LabelParser(["positive", "negative"])
    tail = "x " * MAX_OUTPUT_CHARS  # what a model that never stops adds
    assert labels.tolerant("positive\n" + tail) == "positive"
    assert labels.tolerant(tail + "\npositive") == MISSING  # beyond the cap: not read
    assert labels.strict("positive" + " " * 100_000) == "positive"  # whitespace is trimmed first
    assert labels.strict("positive " + tail) == MISSING
    assert N.encode(N.extract("The answer is 12.5%.\n" + tail)) == "12.5%"
    with pytest.raises(ValueError, match="longer than 32768"):
        N.extract("1" * (MAX_OUTPUT_CHARS + 1), strict=True)
    assert FE.exact_match("12.5" + " " * KB200, ["12.5"]) == 1.0


def test_program_answers_try_a_bounded_number_of_prefixes() -> None:
    # 'divide(6, 3)' then prose with thousands of ')': each prefix try parses; only the longest
    # MAX_PROGRAM_TRIES within the program parser's cap are tried.
    text = "divide(6, 3)" + " (see note)" * 20_000
    start = time.perf_counter()
    with pytest.raises(ValueError, match="program"):
        N.extract(text)
    assert time.perf_counter() - start < BOUND_S
    assert N.encode(N.extract("divide(6, 3) = 2")) == "2"


def test_scanning_numbers_is_unchanged_by_the_linear_rewrite() -> None:
    # the cases the sentence-opener check and the prefix groups decide
    assert N.stated_number("From 2018 to 2019 revenue grew 12.5%") == N.Number(12.5, 1, True)
    assert N.stated_number("from 40.0% to 50.9%, a change of 10.9%") == N.Number(10.9, 1, True)
    assert N.stated_number("between 5 and 3. The answer is 7") == N.Number(7.0)
    assert [n.value for n in N.numbers("$ (1,234.5) and - 3 and 1e-3")] == [-1234.5, -3.0, 0.001]
    assert N.parse_number("  - $ 5 % ") == N.Number(-5.0, 0, True)
