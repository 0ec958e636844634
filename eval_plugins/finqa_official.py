"""The official FinQA program semantics, re-implemented for the official-named metrics (`exe_acc`).

Source: czyssrs/FinQA code/evaluate/evaluate.py @ 0f16e2867befa6840783e58be38c9efb9229d742
(`program_tokenization`, `eval_program`, `str_to_num`, `process_row`). `finqa_program` is our
lenient reader (nested programs, any case, "(" in row names, accounting negatives, row names
matched loosely), used by `tolerant_match` / `score`. Like the lenient one, this never evaluates
text: it only does string splitting and the six arithmetic operations.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence

TABLE_OPS = ("table_max", "table_min", "table_sum", "table_average")

OFFICIAL_OPS = frozenset(("add", "subtract", "multiply", "divide", "exp", "greater") + TABLE_OPS)
_PY_OPS = {
    "add": operator.add,
    "subtract": operator.sub,
    "multiply": operator.mul,
    "divide": operator.truediv,
    "exp": operator.pow,
    "greater": lambda a, b: "yes" if a > b else "no",
}
_TABLE_AGG = {
    "table_max": max,
    "table_min": min,
    "table_sum": sum,
    "table_average": lambda row: sum(row) / len(row),
}
# What the official `try: ... except:` turns into "invalid" (flag 1). Values follow Python's own
# arithmetic, as upstream: a negative base with a fractional exponent is complex, a yes/no
# result in arithmetic is a TypeError, and so on.
_OFFICIAL_ERRORS = (ArithmeticError, TypeError, ValueError, KeyError, IndexError, AttributeError)
NA = "n/a"


def str_to_num(text: str) -> float | str:
    """The official number reader: "1,234" -> 1234.0, "5%" -> 0.05, "const_m1" -> -1.0, else "n/a".

    Python's `float` decides (so "1e3", " 5 ", "1_000", "inf" are numbers). A "const" text that is
    not a number raises ValueError, as upstream (callers score it invalid).
    """
    text = text.replace(",", "")
    try:
        return float(text)
    except ValueError:
        pass
    if "%" in text:
        try:
            return float(text.replace("%", "")) / 100.0
        except ValueError:
            return NA
    if "const" in text:
        text = text.replace("const_", "")
        return float("-1" if text == "m1" else text)
    return NA


def program_tokens(program: str) -> list[str]:
    """The official `program_tokenization`: split on ", ", then around "(" and ")", then EOF."""
    tokens: list[str] = []
    for part in program.split(", "):
        current = ""
        for ch in part:
            if ch == ")" and current:
                tokens.append(current)
                current = ""
            current += ch
            if ch in "()":
                tokens.append(current)
                current = ""
        if current:
            tokens.append(current)
    return [*tokens, "EOF"]


def _official_row(cells: Sequence[str]) -> list[float] | None:
    """The official `process_row`: "$" removed, text from the first "(" dropped, str_to_num."""
    out = []
    for cell in cells:
        value = str_to_num(cell.replace("$", "").strip().split("(")[0].strip())
        if value == NA:
            return None
        out.append(value)
    return out


def _official_operand(arg: str, results: dict[int, object]) -> object:
    if "#" in arg:
        return results[int(arg.replace("#", ""))]
    value = str_to_num(arg)
    if value == NA:
        raise ValueError(f"not a number: {arg!r}")
    return value


def _official_steps(steps: list[str], table: Sequence[Sequence[str]] | None) -> object:
    results: dict[int, object] = {}
    value: object = NA
    row: list[float] | None = None  # upstream reuses the previous table step's row for "#n"
    for index, raw in enumerate(steps):
        pieces = raw.strip().split("(")
        if len(pieces) > 2:
            raise ValueError("nested parenthesis")
        op = pieces[0].strip("|").strip()
        args = pieces[1].strip("|").strip().split("|")
        first, second = args[0].strip(), args[1].strip()
        if op in _PY_OPS:
            value = _PY_OPS[op](_official_operand(first, results), _official_operand(second, results))
        elif op in _TABLE_AGG:
            rows = {r[0]: r[1:] for r in table}  # the last row with a name wins
            if "#" in first:
                results[int(first.replace("#", ""))]  # must exist; its row is reused
                if row is None:
                    raise ValueError("table step on a reference before any table step")
            else:
                row = _official_row(rows[first]) if first in rows else None
                if row is None:
                    raise ValueError(f"row {first!r} absent or not numeric")
            value = _TABLE_AGG[op](row)
        results[index] = value
    return value


def official_execute(program: str, table: Sequence[Sequence[str]] | None) -> tuple[int, object]:
    """The official `eval_program(program_tokenization(program), table)`: (invalid flag, result).

    Result: a number rounded to 5 decimals, "yes"/"no", or "n/a" (flag 0 for the empty program);
    None when the flag is 1. Upper-case operations, a trailing space, "add(5,3)", "$5", unknown
    rows, division by zero: flag 1.
    """
    tokens = program_tokens(program)[:-1]
    for index, token in enumerate(tokens):
        if (index % 4 == 0 and token.strip("(") not in OFFICIAL_OPS) or (index % 4 == 3 and token != ")"):
            return 1, None
    try:
        value = _official_steps("|".join(tokens).split(")")[:-1], table)
        if value not in ("yes", "no", NA):
            value = round(value, 5)
    except _OFFICIAL_ERRORS:
        return 1, None
    return 0, value


def official_answer_value(text: str) -> float | str:
    """A bare-number answer read with the official parser: str_to_num of the text without "$"."""
    try:
        return str_to_num(text.replace("$", "").strip())
    except ValueError:  # "const..." that is no number
        return NA


_PROGRAM_START = re.compile(r"^[A-Za-z_]+\(")


def official_match(text: str, exe_ans: object, table: Sequence[Sequence[str]] | None) -> bool:
    """FinQA execution accuracy of one answer: a program (it opens with `name(`) must execute,
    officially, to exactly exe_ans; a bare number must equal exe_ans after round(., 5).
    The text is taken as it is (a program with a trailing space is invalid, as upstream)."""
    if _PROGRAM_START.match(text):
        flag, value = official_execute(text, table)
        return flag == 0 and value != NA and value == exe_ans
    value = official_answer_value(text)
    return value != NA and isinstance(value, float) and round(value, 5) == exe_ans
