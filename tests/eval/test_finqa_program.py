"""The safe FinQA program interpreter: hand-made cases, bad programs, and fuzzing."""

from __future__ import annotations

import builtins
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eval_plugins import finqa_program as P

TABLE = [
    ["", "2009", "2008", "2007"],
    ["net income", "$ 103102", "$ 104222", "$ 104681"],
    ["change in receivables", "21214", "-2913 ( 2913 )", "-28853 ( 28853 )"],
    ["fair value asset ( liability )", "$ 6427", "$ -23158 ( 23158 )", "1,000"],
    ["operating margin", "19.3% ( 19.3 % )", "18.6% ( 18.6 % )", "14.3% ( 14.3 % )"],
    ["broken", "n/a", "12"],
]


@pytest.mark.parametrize(
    ("program", "expected"),
    [
        ("subtract(206588, 181001), divide(#0, 181001)", 25587 / 181001),
        ("divide(subtract(206588, 181001), 181001)", 25587 / 181001),  # program_re form
        ("206588", 206588.0),  # ConvFinQA turns that only read a number
        ("add(1,234, 1)", None),  # ambiguous comma: "1" and "234" -> too many args -> error
        ("multiply(const_m1, 5%)", -0.05),
        ("exp(const_2, 10)", 1024.0),
        ("add(const_100, const_1000), subtract(#0, #0)", 0.0),
        ("divide(100, 100), divide(3.8, #0)", 3.8),  # the FinQA sample record
        ("table_max(net income, none)", 104681.0),
        ("table_min(change in receivables, none)", -28853.0),
        ("table_sum(fair value asset ( liability ), none)", 6427 - 23158 + 1000),
        ("table_average(operating margin, none)", (0.193 + 0.186 + 0.143) / 3),
        ("  ADD( 2 , 3 ) , EOF", 5.0),
        ("subtract($ 1500, -2)", 1502.0),  # args never use thousands separators upstream
    ],
)
def test_programs(program: str, expected: float | None) -> None:
    if expected is None:
        with pytest.raises(P.ProgramError):
            P.execute(program, TABLE)
        return
    result = P.execute(program, TABLE)
    assert math.isclose(result.value, expected, rel_tol=1e-12)
    assert set(result.ops) <= P.OPS


def test_greater_and_steps() -> None:
    result = P.execute("subtract(10, 4), greater(#0, 5)")
    assert result.value == "yes"
    assert result.steps == (6.0, "yes")
    assert result.ops == ("subtract", "greater")
    assert P.execute("greater(1, 5)").value == "no"


@pytest.mark.parametrize(
    ("program", "reason"),
    [
        ("foo(1, 2)", "unknown operation 'foo'"),
        ("__import__(os, 1)", "unknown operation"),
        ("add(1)", "expects two arguments"),
        ("add(1, 2", "expected ')'"),
        ("divide(1, 0)", "division by zero"),
        ("add(#1, 2)", "reference #1"),
        ("add(2, 3), add(#5, 1)", "reference #5"),
        ("exp(10, 5000)", "exponent"),
        ("exp(-8, 0.5)", "exp"),
        ("greater(1, 2), add(#0, 1)", "not a number"),
        ("table_max(no such row, none)", "no table row"),
        ("table_max(broken, none)", "not a number"),
        ("add(one, 2)", "not a number"),
        ("", "empty program"),
        ("add(1, 2) and more", "unexpected text"),
        ("9" * 400, "out of range"),  # float("999...") is inf: never a result
        ("add(" * 40 + "1, 1" + ")" * 40, "nesting"),
    ],
)
def test_bad_programs_raise_program_error(program: str, reason: str) -> None:
    with pytest.raises(P.ProgramError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        P.execute(program, TABLE)


def test_table_op_without_table() -> None:
    with pytest.raises(P.ProgramError, match="no table"):
        P.execute("table_sum(net income, none)", None)


def test_malformed_table_rows_are_skipped_not_crashing() -> None:
    table = [None, "row as a string", [], ["net income", "5", "7"]]
    assert P.execute("table_sum(net income, none)", table).value == 12.0


def test_parse_number_forms() -> None:
    assert P.parse_number("$ -23158 ( 23158 )") == -23158.0
    assert P.parse_number("(2,913)") == -2913.0
    assert P.parse_number("19.3%") == pytest.approx(0.193)
    assert P.parse_number("const_m1") == -1.0
    for bad in ("abc", "", "1.2.3", "--", "%", "$"):
        with pytest.raises(P.ProgramError):
            P.parse_number(bad)


# --- fuzzing ---------------------------------------------------------------------------------

_atoms = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: f"{x:.3f}"),
    st.sampled_from(["#0", "#1", "#3", "const_100", "const_m1", "5%", "none", "net income", "x"]),
)
_ops = st.sampled_from(sorted(P.OPS) + ["eval", "exec", "open", "__import__", "os.system", "lambda"])


def _calls(children):
    return st.builds(lambda op, a, b: f"{op}({a}, {b})", _ops, children, children)


_programs = st.recursive(_atoms, _calls, max_leaves=12).flatmap(
    lambda first: st.lists(st.recursive(_atoms, _calls, max_leaves=6), max_size=4).map(
        lambda rest: ", ".join([first, *rest])
    )
)

_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _forbid(monkeypatch) -> None:
    def boom(*_a, **_k):  # pragma: no cover - only reached on a bug
        raise AssertionError("the interpreter must never call eval/exec/compile")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, boom)


def _run(program: str) -> None:
    try:
        result = P.execute(program, TABLE)
    except P.ProgramError:
        return
    assert set(result.ops) <= P.OPS
    assert isinstance(result.value, str) or math.isfinite(result.value)


@_FUZZ
@given(program=_programs)
def test_fuzz_structured_programs(program: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        _forbid(mp)
        _run(program)


@_FUZZ
@given(text=st.text(max_size=200))
def test_fuzz_arbitrary_strings(text: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        _forbid(mp)
        _run(text)


@_FUZZ
@given(text=st.text(alphabet="adsubtrcmlypvixegn_#0123456789(), .%$-", max_size=120))
def test_fuzz_program_alphabet(text: str) -> None:
    _run(text)
