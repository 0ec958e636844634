"""Reading numeric answers from model output and matching them to gold."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eval_plugins import numeric as N


@pytest.mark.parametrize(
    ("text", "value", "percent"),
    [
        ("1,234.5", 1234.5, False),
        ("$(1,234)", -1234.0, False),
        ("(2,913)", -2913.0, False),
        ("-3.8", -3.8, False),
        ("\u22123.8", -3.8, False),  # unicode minus
        ("14.1%", 14.1, True),
        ("14.1 percent", 14.1, True),
        ("$ -23,158", -23158.0, False),
        (".5", 0.5, False),
        (3.8, 3.8, False),
    ],
)
def test_parse_number(text, value, percent) -> None:
    number = N.parse_number(text)
    assert number is not None
    assert number.value == pytest.approx(value)
    assert number.percent is percent


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "12 apples", None, float("nan"), True])
def test_parse_number_rejects(text) -> None:
    assert N.parse_number(text) is None


@pytest.mark.parametrize(
    ("output", "tolerant", "strict"),
    [
        ("14.1%", "14.1%", "14.1%"),
        ("The answer is 14.1%.", "14.1%", "14.1%"),
        ("Answer: $(1,234.5)", "-1234.5", "-1234.5"),
        ("In 2009 it rose.\nAnswer: 25,587", "25587", None),  # explicit Answer line beats "2009"
        ("about 380 units", "380", None),
        ("subtract(206588, 181001), divide(#0, 181001)", "0.14136", "0.14136"),
        ("Answer: divide(3, 4) = 0.75", "0.75", None),
        ("yes", "yes", "yes"),
        ("No, it did not.", "no", None),
        ("none of the above", None, None),
        ("foo(1, 2)", None, None),
        ("divide(1, 0)", None, None),
        ("", None, None),
    ],
)
def test_extract(output: str, tolerant: str | None, strict: str | None) -> None:
    for mode, expected in ((False, tolerant), (True, strict)):
        if expected is None:
            with pytest.raises(ValueError):
                N.extract(output, strict=mode)
        else:
            got = N.encode(N.extract(output, strict=mode))
            if expected in ("yes", "no"):
                assert got == expected
            else:
                assert N.parse_number(got).value == pytest.approx(N.parse_number(expected).value, rel=1e-4)


def test_extract_program_uses_the_doc_table() -> None:
    table = [["", "2009", "2008"], ["net income", "$ 10", "$ 30"]]
    assert N.extract("table_average(net income, none)", table=table) == N.Number(20.0, 0)


@pytest.mark.parametrize(
    ("pred", "golds", "exact", "tolerant"),
    [
        ("14.1%", ["14.1%", "0.14136"], True, True),
        ("14.1", ["14.1%"], True, True),
        ("0.141", ["14.1%"], True, True),
        ("14.14", ["14.1%"], True, True),  # more precision than the gold shows
        ("14", ["14.1%"], False, True),  # within 1%
        ("14.1", ["0.14136"], False, True),  # percent written without its sign
        ("3.8", ["380", "3.8"], True, True),  # FinQA's answer/exe_ans quirk: either gold form
        ("380", ["3.8"], False, True),
        ("3", ["300"], False, False),  # no x100 reading for whole-number golds
        ("0.2", ["20"], False, False),
        ("0", ["0.3"], False, False),
        ("-25587", ["25587"], False, False),  # sign matters
        ("25,600", ["25587"], False, True),
        ("27000", ["25587"], False, False),
        ("yes", ["yes"], True, True),
        ("no", ["yes"], False, False),
        ("5", ["yes"], False, False),
        ("yes", ["5"], False, False),
    ],
)
def test_match(pred: str, golds: list[str], exact: bool, tolerant: bool) -> None:
    answer = N.decode(N.encode(N.extract(pred)))
    assert N.match(answer, golds, tolerant=False) is exact
    assert N.match(answer, golds, tolerant=True) is tolerant


def test_process_results_missing_and_scores() -> None:
    doc = {"id": "x", "label": "14.1%", "golds": ["14.1%", "0.14136"]}
    assert N.process_results(doc, ["14.1%"]) == {
        "score": 1.0,
        "exact_match": 1.0,
        "tolerant_match": 1.0,
        "missing_rate": 0.0,
    }
    missing = N.process_results(doc, ["[missing] no number in output"])
    assert missing["missing_rate"] == 1.0 and missing["score"] == 0.0
    assert N.mean([1.0, 0.0, 0.5]) == 0.5


def test_filter_logs_reason_in_filtered_response() -> None:
    filt = N.NumericFilter(strict=False)
    docs = [{"id": "a", "table": []}, {"id": "b", "table": []}]
    out = filt.apply([["Answer: 5"], ["foo(1, 2)"]], docs)
    assert out[0] == ["5"]
    assert out[1][0].startswith(N.MISSING) and "unknown operation" in out[1][0]


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300), strict=st.booleans())
def test_fuzz_filter_never_raises(text: str, strict: bool) -> None:
    result = N.NumericFilter(strict=strict).one(text, {"id": "f", "table": [["x", "1", "2"]]})
    scores = N.process_results({"label": "1", "golds": ["1", "yes"]}, [result])
    assert set(scores) == set(N.METRICS)


@settings(max_examples=200, deadline=None)
@given(value=st.floats(-1e9, 1e9, allow_nan=False), decimals=st.integers(0, 4))
def test_fuzz_roundtrip_matches_itself(value: float, decimals: int) -> None:
    text = f"{value:,.{decimals}f}"
    answer = N.extract(f"The result is {text}.")
    assert N.match(answer, [text], tolerant=False)
    assert N.match(answer, [text], tolerant=True)
