"""A small, safe interpreter of the FinQA / ConvFinQA program language.

Programs are step lists such as ``subtract(206588, 181001), divide(#0, 181001)`` (FinQA's
`program`), nested forms such as ``divide(subtract(206588, 181001), 181001)`` (`program_re`), or a
bare number (ConvFinQA turns that just read a value: ``"206588"``). The operation set is fixed:

- arithmetic: add, subtract, multiply, divide, exp (power);
- comparison: greater -> "yes" / "no";
- table aggregates over one row, named by its first cell: table_max, table_min, table_sum,
  table_average (second argument is ignored; upstream writes ``none``);
- arguments: numbers (``1,234``, ``5%`` = 0.05, ``$ 3.8``), ``#n`` (the result of step n),
  ``const_100`` / ``const_m1`` (= -1), or a nested operation.

It is a hand-written tokenizer + recursive-descent parser over that grammar plus a dispatch
table: nothing from the input is ever passed to `eval`, `exec`, `getattr` or an import, so a
program can only ever run the operations above. Sizes are bounded (program length, step count,
nesting depth, exponent magnitude) so hostile input cannot exhaust memory or time. Every failure
is a `ProgramError` with a readable reason; callers score those answers as wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

# The official semantics (exe_acc) live in finqa_official; callers keep using finqa_program.official_*.
from eval_plugins.finqa_official import (  # noqa: F401
    NA,
    OFFICIAL_OPS,
    TABLE_OPS,
    official_answer_value,
    official_execute,
    official_match,
    program_tokens,
    str_to_num,
)

Value = float | str  # a number, or "yes"/"no" from `greater`

ARITHMETIC = ("add", "subtract", "multiply", "divide", "exp", "greater")
OPS = frozenset(ARITHMETIC + TABLE_OPS)

MAX_CHARS = 4000
MAX_STEPS = 64
MAX_DEPTH = 16
MAX_MAGNITUDE = 1e100  # larger results are treated as overflow, not numbers

_NUMBER = re.compile(r"^[-+]?\$?\s*[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?\s*%?$")
_REF = re.compile(r"^#(\d{1,3})$")
_CONST = re.compile(r"^const_(m?)(\d{1,10})$")
_OP_NAME = re.compile(r"[a-z_]+", re.IGNORECASE)


class ProgramError(ValueError):
    """The program cannot be parsed or executed; the message says why."""


@dataclass(frozen=True)
class Call:
    op: str
    args: tuple[Arg, Arg]


@dataclass(frozen=True)
class Literal:
    text: str  # a number, a #ref, a const_, or (first argument of table ops) a row name


Arg = Call | Literal


@dataclass(frozen=True)
class Result:
    value: Value
    steps: tuple[Value, ...]  # the value of each top-level step, in order
    ops: tuple[str, ...]  # every operation executed, in order (always a subset of OPS)


# ---------------------------------------------------------------------------------------------
# Parsing


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, msg: str) -> ProgramError:
        return ProgramError(f"{msg} at position {self.pos} of {self.text[:80]!r}")

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def parse_program(self) -> list[Arg]:
        steps: list[Arg] = []
        while True:
            self.skip_ws()
            if self.text.startswith("EOF", self.pos):  # upstream token lists end with EOF
                self.pos += 3
                self.skip_ws()
                break
            steps.append(self.parse_arg(depth=0, row_name=False))
            if len(steps) > MAX_STEPS:
                raise self.error(f"more than {MAX_STEPS} steps")
            self.skip_ws()
            if self.pos < len(self.text) and self.text[self.pos] == ",":
                self.pos += 1
                continue
            break
        self.skip_ws()
        if self.pos != len(self.text):
            raise self.error("unexpected text")
        if not steps:
            raise self.error("empty program")
        return steps

    def parse_arg(self, depth: int, row_name: bool) -> Arg:
        if depth > MAX_DEPTH:
            raise self.error(f"nesting deeper than {MAX_DEPTH}")
        self.skip_ws()
        match = _OP_NAME.match(self.text, self.pos)
        if match:
            after = match.end()
            while after < len(self.text) and self.text[after].isspace():
                after += 1
            if after < len(self.text) and self.text[after] == "(":
                name = match.group(0).lower()
                if name in OPS:
                    self.pos = after + 1
                    return self.parse_call(name, depth)
                if not row_name:
                    raise self.error(f"unknown operation {match.group(0)!r} (allowed: {sorted(OPS)})")
        return Literal(self.read_atom(row_name))

    def parse_call(self, op: str, depth: int) -> Call:
        first = self.parse_arg(depth + 1, row_name=op in TABLE_OPS)
        self.skip_ws()
        if self.pos >= len(self.text) or self.text[self.pos] != ",":
            raise self.error(f"{op} expects two arguments")
        self.pos += 1
        second = self.parse_arg(depth + 1, row_name=op in TABLE_OPS)
        self.skip_ws()
        if self.pos >= len(self.text) or self.text[self.pos] != ")":
            raise self.error(f"{op}: expected ')'")
        self.pos += 1
        return Call(op, (first, second))

    def read_atom(self, row_name: bool) -> str:
        # An atom ends at a top-level ',' or ')'. Row names may hold balanced parentheses
        # ("asset ( liability )"), so track depth; plain numbers never contain '('.
        start, depth = self.pos, 0
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "(":
                if not row_name:
                    raise self.error("unexpected '('")
                depth += 1
            elif ch == ")":
                if depth == 0:
                    break
                depth -= 1
            elif ch == "," and depth == 0:
                break
            self.pos += 1
        atom = self.text[start : self.pos].strip()
        if not atom:
            raise self.error("missing argument")
        return atom


def parse(program: str) -> list[Arg]:
    if not isinstance(program, str):
        raise ProgramError(f"a program must be a string, got {type(program).__name__}")
    if len(program) > MAX_CHARS:
        raise ProgramError(f"program longer than {MAX_CHARS} characters")
    if not program.strip():
        raise ProgramError("empty program")
    return _Parser(program).parse_program()


def looks_like_program(text: str) -> bool:
    """True when `text` starts with a known operation call (cheap pre-check for model output)."""
    match = re.match(r"\s*([a-z_]+)\s*\(", text, re.IGNORECASE)
    return bool(match) and match.group(1).lower() in OPS


# ---------------------------------------------------------------------------------------------
# Numbers and tables


def parse_number(text: str) -> float:
    """A FinQA argument or table cell as a number: `1,234`, `$ 3.8`, `5%`, `-2913 ( 2913 )`."""
    cell = text.strip()
    const = _CONST.match(cell)
    if const:
        value = float(const.group(2))
        return -value if const.group(1) else value
    # Table cells repeat negatives in parentheses ("-2913 ( 2913 )"): the part before wins.
    head = cell.split("(")[0].strip() if not cell.startswith("(") else cell
    if head.startswith("(") and head.endswith(")"):  # accounting negative "(2,913)"
        head = "-" + head[1:-1].strip()
    if not head or not _NUMBER.match(head) or not re.search(r"\d", head):
        raise ProgramError(f"not a number: {text[:60]!r}")
    percent = head.endswith("%")
    digits = head.rstrip("%").replace("$", "").replace(",", "").replace(" ", "")
    sign = -1.0 if digits.count("-") % 2 else 1.0
    value = float(digits.replace("-", "").replace("+", ""))
    return sign * (value / 100.0 if percent else value)


def _norm_row(name: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^0-9a-z%()]+", " ", name.lower())).strip()


def table_row(table: Sequence[Sequence[str]] | None, name: str) -> list[float]:
    if not table:
        raise ProgramError(f"table operation on row {name!r} but the document has no table")
    wanted = _norm_row(name)
    found = None
    for row in table:  # the LAST row with the name wins, as in the official eval_program
        if not isinstance(row, Sequence) or isinstance(row, str) or not row:
            continue
        if _norm_row(str(row[0])) == wanted:
            found = row
    if found is None:
        raise ProgramError(f"no table row named {name!r}")
    cells = [str(c) for c in found[1:]]
    if not cells:
        raise ProgramError(f"table row {name!r} has no value cells")
    return [_checked(parse_number(c), f"table row {name!r}") for c in cells]


# ---------------------------------------------------------------------------------------------
# Execution


def _number(value: Value, op: str) -> float:
    if isinstance(value, str):
        raise ProgramError(f"{op}: argument is {value!r}, not a number")
    return value


def _checked(value: float, op: str) -> float:
    if math.isnan(value) or math.isinf(value) or abs(value) > MAX_MAGNITUDE:
        raise ProgramError(f"{op}: result out of range")
    return value


def _apply(op: str, a: Value, b: Value) -> Value:
    x, y = _number(a, op), _number(b, op)
    if op == "add":
        return _checked(x + y, op)
    if op == "subtract":
        return _checked(x - y, op)
    if op == "multiply":
        return _checked(x * y, op)
    if op == "divide":
        if y == 0:
            raise ProgramError("divide: division by zero")
        return _checked(x / y, op)
    if op == "exp":
        if abs(y) > 1000 or (x == 0 and y < 0):
            raise ProgramError(f"exp: exponent {y} out of range for base {x}")
        try:
            result = math.pow(x, y)
        except (OverflowError, ValueError) as err:  # e.g. negative base, fractional exponent
            raise ProgramError(f"exp({x}, {y}): {err}") from err
        return _checked(result, op)
    if op == "greater":
        return "yes" if x > y else "no"
    raise ProgramError(f"unknown operation {op!r}")  # unreachable: the parser checks names


class _Machine:
    def __init__(self, table: Sequence[Sequence[str]] | None) -> None:
        self.table = table
        self.steps: list[Value] = []
        self.ops: list[str] = []

    def value(self, arg: Arg) -> Value:
        if isinstance(arg, Call):
            return self.call(arg)
        ref = _REF.match(arg.text)
        if ref:
            n = int(ref.group(1))
            if n >= len(self.steps):
                raise ProgramError(f"reference #{n} to a step that has not run (have {len(self.steps)})")
            return self.steps[n]
        return _checked(parse_number(arg.text), "number")

    def call(self, node: Call) -> Value:
        op = node.op
        if op not in OPS:
            raise ProgramError(f"unknown operation {op!r}")
        if op in TABLE_OPS:
            first = node.args[0]
            if not isinstance(first, Literal):
                raise ProgramError(f"{op}: first argument must be a table row name")
            cells = table_row(self.table, first.text)
            self.ops.append(op)
            if op == "table_max":
                return max(cells)
            if op == "table_min":
                return min(cells)
            total = _checked(math.fsum(cells), op)
            return total if op == "table_sum" else total / len(cells)
        a = self.value(node.args[0])
        b = self.value(node.args[1])
        self.ops.append(op)
        return _apply(op, a, b)


def execute(program: str, table: Sequence[Sequence[str]] | None = None) -> Result:
    """Run `program` (against `table`, rows of cells, for table ops). Raises ProgramError."""
    machine = _Machine(table)
    for step in parse(program):
        machine.steps.append(machine.value(step))
    return Result(value=machine.steps[-1], steps=tuple(machine.steps), ops=tuple(machine.ops))


# ---------------------------------------------------------------------------------------------
# FinQA / ConvFinQA documents: checks and prompt context shared by both tasks


def check_table(table: object, where: str) -> list[list[str]]:
    """A table as rows of strings; raises ValueError naming `where` if it is not one."""
    if not isinstance(table, list) or not all(isinstance(row, list) for row in table):
        raise ValueError(
            f"{where}: expected a table as a list of rows (lists of cells), got {str(table)[:80]!r}"
        )
    return [[str(cell) for cell in row] for row in table]


def render_table(table: Sequence[Sequence[str]]) -> str:
    """Rows as `a | b | c` lines; short rows are padded (upstream has ragged headers)."""
    if not table:
        return ""
    width = max(len(row) for row in table)
    lines = []
    for row in table:
        cells = [" ".join(str(c).split()) for c in row] + [""] * (width - len(row))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_text(sentences: Sequence[str]) -> str:
    """Upstream text is a list of sentences, with many "." placeholder lines around tables."""
    kept = [" ".join(str(s).split()) for s in sentences]
    return " ".join(s for s in kept if s and s != ".")


def format_number(value: Value) -> str:
    """A gold number as a model should write it: no float noise, no exponent."""
    if isinstance(value, str):
        return value
    rounded = round(value, 5)
    if rounded == int(rounded) and abs(rounded) < 1e15:
        return str(int(rounded))
    return f"{rounded:.5f}".rstrip("0").rstrip(".")


def render_context(record: dict, where: str) -> tuple[str, list[list[str]]]:
    """A FinQA/ConvFinQA record's prompt context (pre-text, table, post-text) and its table rows.

    Raises ValueError naming `where` and the key for missing or malformed fields.
    """
    missing = [
        k for k in ("pre_text", "post_text", "table") if not isinstance(record, dict) or record.get(k) is None
    ]
    if missing:
        raise ValueError(f"{where}: missing key {missing[0]!r}")
    pre, post = record["pre_text"], record["post_text"]
    if not isinstance(pre, list) or not isinstance(post, list):
        raise ValueError(f"{where}: 'pre_text' and 'post_text' must be lists of sentences")
    table = check_table(record["table"], f"{where}: key 'table'")
    shown = check_table(record.get("table_ori") or table, f"{where}: key 'table_ori'")
    parts = [render_text(pre), render_table(shown), render_text(post)]
    return "\n".join(p for p in parts if p), table
