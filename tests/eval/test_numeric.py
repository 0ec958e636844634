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
        ("1e-3", 0.001, False),  # scientific notation (issue 13: was read as 1)
        ("1.5e3", 1500.0, False),  # (was read as 1.5)
        ("1.5E+3", 1500.0, False),
        ("-2.5e-2%", -0.025, True),
        ("1e308", 1e308, False),
        ("9" * 300, float("9" * 300), False),
    ],
)
def test_parse_number(text, value, percent) -> None:
    number = N.parse_number(text)
    assert number is not None
    assert number.value == pytest.approx(value)
    assert number.percent is percent


@pytest.mark.parametrize(
    "text", ["", "abc", "1.2.3", "12 apples", None, float("nan"), True, "1e400", "9" * 400, float("inf")]
)
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
        # issue 13: the stated answer, not an incidental number
        ("From 2018 to 2019 revenue grew 12.5%", "12.5%", None),
        ("The change from 2018 to 2019 is 293.6", "293.6", None),
        ("(1,496.5 - 1,202.9) / 1,202.9 = 0.244 = 24.4%", "24.4%", None),
        ("In 2019 it was $5.2 million", "5.2", None),
        ("2019", "2019", "2019"),  # a year is the answer when it is all there is
        ("The ratio is 1.5e3", "1500", None),
        ("1e-3", "0.001", "0.001"),
        ("Answer: 1e400", None, None),  # too large for a float: no number, no crash
        # real SmolLM2 continuations of "Answer:": the first line that states a number answers
        (" 1.5\n\nThe change in Capital redemption reserve in 2019 from 2018 was 1.5%.", "1.5", None),
        (" \nGains on the sale of company-operated restaurants are $1,366.", "1366", None),
        (" 2019 - 2018 = 19\n\nThe change in Recognized net actuarial (gain) loss", "19", None),
        ("In 2019:\nrevenue was 5.2", "5.2", None),  # a line of years alone is context
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


@pytest.mark.parametrize(
    ("output", "golds", "tolerant"),
    [
        ("Yes, 5 is greater than 3", ["yes"], "yes"),  # issue 13: was read as 5
        ("No. Revenue fell from 2018 to 2019 by 3%.", ["no"], "no"),
        ("Yes, 5 is greater than 3", ["5"], "5"),  # a numeric gold still reads the number
        ("It could be yes or no; 7 units", ["yes"], "7"),  # no committed yes/no: the usual reading
        ("I don't know", ["yes"], None),
    ],
)
def test_yes_no_gold_reads_yes_no(output: str, golds: list[str], tolerant: str | None) -> None:
    got = N.NumericFilter(strict=False).one(output, {"id": "q", "golds": golds})
    if tolerant is None:
        assert got.startswith(N.MISSING)
    else:
        assert got == tolerant
    scores = N.process_results({"golds": golds}, [got])
    assert scores["score"] == float(tolerant in golds)


@pytest.mark.parametrize("answer", ["1e308", "9" * 300, "1" * 400, "-1e308", "1e-320", "1e400%"])
def test_overflowing_numbers_never_crash(answer: str) -> None:
    for strict in (False, True):
        got = N.NumericFilter(strict=strict).one(f"Answer: {answer}", {"id": "o", "golds": [answer, "1"]})
        scores = N.process_results({"golds": [answer, "1e308", "1"]}, [got])
        assert set(scores) == set(N.METRICS)


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
        "rounded_match": 1.0,
        "tolerant_match": 1.0,
        "missing_rate": 0.0,
    }
    missing = N.process_results(doc, ["[missing] no number in output"])
    assert missing["missing_rate"] == 1.0 and missing["score"] == 0.0
    assert N.mean([1.0, 0.0, 0.5]) == 0.5


@pytest.mark.parametrize(
    ("pred", "gold", "exact", "rounded", "tolerant"),
    [
        ("6.49", "6", 0.0, 1.0, 0.0),  # the old bug: exact_match said 1 here, tolerant 0
        ("6", "6", 1.0, 1.0, 1.0),
        ("14.14%", "14.1%", 0.0, 1.0, 1.0),  # right at the gold's precision, not at 5 decimals
        ("0.14136", "14.136%", 1.0, 1.0, 1.0),
        ("0.000004", "0.000001", 1.0, 0.0, 1.0),  # equal at 5 decimals: tolerant never below exact
    ],
)
def test_exact_is_never_looser_than_tolerant(pred, gold, exact, rounded, tolerant) -> None:
    scores = N.process_results({"id": "x", "label": gold, "golds": [gold]}, [pred])
    assert (scores["exact_match"], scores["rounded_match"], scores["tolerant_match"]) == (exact, rounded, tolerant)
    assert scores["exact_match"] <= scores["tolerant_match"]


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


_HUGE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**400), max_value=10**400).map(str),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(-(10**6), 10**6), st.integers(-400, 400)),
    st.text(alphabet="0123456789.,e-+%$()", max_size=400),
)


@settings(max_examples=400, deadline=None)
@given(answer=_HUGE, gold=_HUGE, strict=st.booleans(), prose=st.booleans())
def test_fuzz_overflow_never_raises(answer: str, gold: str, strict: bool, prose: bool) -> None:
    """Issue 13: `round(g.value)` raised OverflowError on a gold or answer like 1e308 or 300 digits."""
    output = f"From 2018 to 2019 the value is {answer}." if prose else answer
    got = N.NumericFilter(strict=strict).one(output, {"id": "h", "golds": [gold, "yes"]})
    scores = N.process_results({"golds": [gold, answer]}, [got])
    assert set(scores) == set(N.METRICS)
    N.match(N.decode(got), [gold, N.parse_number(answer) or answer], tolerant=True, scale=True)


@settings(max_examples=200, deadline=None)
@given(mantissa=st.floats(-1e6, 1e6).filter(lambda v: abs(v) >= 1e-3), exponent=st.integers(-30, 30))
def test_fuzz_scientific_notation_reads_its_value(mantissa: float, exponent: int) -> None:
    text = f"{mantissa:.4f}e{exponent}"
    expected = float(text)
    got = N.extract(f"The answer is {text}")
    assert got.value == pytest.approx(expected, rel=1e-12)
