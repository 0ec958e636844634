"""Numeric answers (FinQA, ConvFinQA, FinanceBench): find the answer in model output, match to gold.

Reading an answer (`extract`), two modes, both reported by every numeric task:
- strict: the whole output (after an optional "Answer:" prefix and trailing punctuation) must be
  one number, `yes`/`no`, or a FinQA program;
- tolerant: the content of an explicit "Answer:" line if there is one, else the whole output; in
  it, a FinQA program if it starts with one, else, in the first line that states a number (later
  lines explain), the STATED number (`stated_number`: the result
  of a computation "... = 24.4%", else a number introduced as a statement "the change is 12.5%",
  else the first number that is not a year, so "From 2018 to 2019 revenue grew 12.5%" is 12.5%),
  or yes/no when there is no number. When every gold is yes/no, a committed yes or no (read by
  the label parser: negation, hedges) comes first: "Yes, 5 is greater than 3" is yes, not 5.
Bounded work: at most the first `parsers.MAX_OUTPUT_CHARS` (32,768) characters of an output are
read (a strict reading of a longer one is MISSING), every scan is linear in them, and a program
answer tries at most MAX_PROGRAM_TRIES prefixes within the program parser's own cap.
Numbers may be written in scientific notation (`1e-3`, `1.5E+3`); one too large for a float
("1e400", 400 digits) is no number, never a crash.
Programs run in the safe interpreter (eval_plugins.finqa_program) against the document's table.

Numbers (`Number`) keep how they were written: `$(1,234.5)` is -1234.5, `14.1%` is 14.1 with a
percent flag, and the decimals shown. Matching (`match`):
- exact: equal at the precision the gold shows (gold "14.1%" accepts 14.1, 14.14, 0.141), a
  percent sign on either side making 14.1 and 0.141 the same number;
- tolerant: within a relative tolerance (default 1%), additionally accepting a factor of 100 either
  way when the gold is fractional (a percentage written without its sign: gold exe_ans 0.14136,
  answer 14.1). Whole-number golds get no such reading, so "3" never matches 300.
FinQA golds also mix scales themselves (answer "380" with exe_ans 3.8): tasks pass both forms.
A gold may have several forms (FinQA: the answer string and exe_ans); any one matching counts.
Unreadable output is MISSING with the reason in the filtered response, so `--log_samples` shows
why it was scored wrong. Nothing here raises on any model output.
"""

from __future__ import annotations

import bisect
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from lm_eval.api.filter import Filter

from eval_plugins import finqa_program as P
from eval_plugins.parsers import MAX_OUTPUT_CHARS, LabelParser, clip

log = logging.getLogger(__name__)

MISSING = "[missing]"
DEFAULT_REL_TOL = 0.01
METRICS = ("score", "exact_match", "rounded_match", "tolerant_match", "missing_rate")

# Every part of the pattern is optional, so it matches (often nothing) at every position; inside a
# run of whitespace each of those matches rescanned the rest of the run: quadratic (issue 21). A
# match may start on whitespace only where a run begins (the lookahead), where it takes the whole
# run as before; the positions inside a run, which a match from its start has already covered,
# are skipped at once. The numbers found are unchanged.
_NUM = (
    r"(?!(?<=\s)\s)(?P<neg>[-\u2212\u2013])?\s*(?P<cur>[$\u20ac\u00a3])?\s*(?P<open>\()?\s*(?P<neg2>[-\u2212])?\s*"
    r"(?P<cur2>[$\u20ac\u00a3])?\s*"
    r"(?P<int>\d{1,3}(?:,\d{3})+|\d+)?(?P<frac>\.\d+)?(?![\d.]\d)"
    r"(?:(?<=\d)[eE](?P<exp>[-+]?\d{1,6})(?![\d.]))?"
    r"\s*(?P<close>\))?\s*(?P<pct>%|percent\b|per cent\b|pct\b)?"
)
_NUM_RE = re.compile(_NUM, re.IGNORECASE)
_ANSWER_LINE = re.compile(
    r"(?:^|\n)[ \t*#>-]*(?:the\s+)?(?:final\s+)?answer\s*(?:is)?\s*[:=]\s*(?P<rest>[^\n]*)",
    re.IGNORECASE,
)
_STRICT_PREFIX = re.compile(r"^\s*(?:the\s+)?(?:final\s+)?answer\s*(?:is)?\s*[:=]?\s*", re.IGNORECASE)
_CALL = re.compile(r"[A-Za-z_][A-Za-z_0-9.]*\(")
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_YES_NO_PARSER = LabelParser(["yes", "no"])


@dataclass(frozen=True)
class Number:
    value: float
    decimals: int = 0
    percent: bool = False

    def forms(self, scale: bool) -> list[tuple[float, int]]:
        """(value, decimals) readings: with %, also as a fraction; `scale`: also x100 and /100."""
        out = [(self.value, self.decimals)]
        if self.percent:
            out.append((self.value / 100, self.decimals + 2))
        if scale:
            out += [
                (self.value * 100, max(self.decimals - 2, 0)),
                (self.value / 100, self.decimals + 2),
            ]
        return out

    def render(self) -> str:
        text = f"{self.value:.{min(self.decimals, 12)}f}"
        return text + ("%" if self.percent else "")


Answer = Number | str  # a number, or "yes" / "no"


def _from_match(m: re.Match) -> Number | None:
    if m.group("int") is None and m.group("frac") is None:
        return None
    digits = (m.group("int") or "0").replace(",", "") + (m.group("frac") or "")
    exponent = int(m.group("exp") or 0)
    try:
        value = float(f"{digits}e{exponent}")
    except ValueError:  # pragma: no cover - the regex only admits digits
        return None
    if not math.isfinite(value):  # "1e400", a 400-digit number: no usable value
        return None
    negative = bool(m.group("neg") or m.group("neg2")) or bool(m.group("open") and m.group("close"))
    decimals = max((len(m.group("frac")) - 1 if m.group("frac") else 0) - exponent, 0)
    return Number(-value if negative else value, decimals, bool(m.group("pct")))


def _matches(text: str) -> list[tuple[Number, re.Match]]:
    found = []
    for m in _NUM_RE.finditer(text):
        number = _from_match(m)
        if number is not None:
            found.append((number, m))
    return found


def numbers(text: str) -> list[Number]:
    """Every number written in `text`, in order."""
    return [number for number, _ in _matches(text)]


def _is_year(m: re.Match) -> bool:
    """A bare 4-digit integer 1900-2100: a date in the question, rarely the answer."""
    plain = not any(m.group(g) for g in ("neg", "neg2", "cur", "cur2", "open", "frac", "pct", "exp"))
    digits = m.group("int") or ""
    return plain and len(digits) == 4 and digits.isdigit() and 1900 <= int(digits) <= 2100


# What introduces a stated result: "= 24.4%", "is 12.5%", "was $5", "grew by 3%", "of about 7".
_RESULT_CUE = re.compile(r"(?:=|\bequals?|\bequal to)\s*(?:approximately|about|around|roughly|~)?\s*$", re.I)
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
# "October 31", "October 31, 2019"
_DATE_BEFORE = re.compile(rf"\b{_MONTH}\s*(?:\d{{1,2}}(?:st|nd|rd|th)?,?\s*)?$", re.I)
_DATE_AFTER = re.compile(rf"(?:st|nd|rd|th)?\s+{_MONTH}(?:\s|$|,)", re.I)  # "24 February"
_GLUED_BEFORE = re.compile(r"\d[-/\u2013]$")  # "2019-01", "2018-0": a date, range or code
_GLUED_AFTER = re.compile(r"[-/\u2013]\d")
_OPERAND_OPEN = re.compile(r"\b(?:from|between|than|versus|vs\.?)\s*[$\u20ac\u00a3]?\s*$", re.I)
_OPERAND_CLOSE = re.compile(r"\b(?:to|and)\s*[$\u20ac\u00a3]?\s*$", re.I)
_OPENER = re.compile(r"\b(?:from|between)\b", re.I)
_OPENER_AT_END = re.compile(r"(?<!\w)(?:from|between)\Z", re.I)  # glued to what follows: "from5"
_SENTENCE_BREAK = re.compile(r"[.;:\n]")
MAX_PROGRAM_TRIES = 64  # prefixes of a program answer tried, longest first
_NEW_QUESTION = re.compile(r"\s*(?:question|q)\s*[:.]", re.I)
_STATED_CUE = re.compile(
    r"\b(?:is|was|are|were|be|by|of|at|totall?ed|amounts? to)\s*(?:approximately|about|around|roughly|nearly|~)?\s*$",
    re.I,
)


def _sentence_opened(text: str) -> Callable[[int], bool]:
    """pos -> whether "from" or "between" opens the sentence that runs up to `pos` (no ".;:" or
    newline since; one newline right before `pos` is allowed). Built in one pass over the text,
    then O(log n) per number: searching the text before each number was quadratic (issue 21)."""
    opener_ends = [m.end() for m in _OPENER.finditer(text)]
    breaks = [m.start() for m in _SENTENCE_BREAK.finditer(text)]

    def opened(pos: int) -> bool:
        end = pos - 1 if pos and text[pos - 1] == "\n" else pos
        if _OPENER_AT_END.search(text[max(0, end - 8) : end]):
            return True
        i = bisect.bisect_right(opener_ends, end) - 1
        if i < 0:
            return False
        j = bisect.bisect_left(breaks, end)
        return not j or breaks[j - 1] < opener_ends[i]

    return opened


def _candidates(text: str, years: bool = True) -> list[tuple[Number, re.Match]]:
    """Numbers of `text` that may be its answer: not part of a date ("October 31, 2019",
    "2019-01-23"), a range or code glued by "-" or "/" to another number ("2018-0", "2017/18"),
    nor an operand ("from 40.0% to 50.9%", "between 5 and 3", "greater than 3"); years only when
    `years`."""
    found = _matches(text)
    out = []
    operand_pair = False
    in_open_sentence = _sentence_opened(text)
    for number, m in found:
        before = text[max(0, m.start() - 40) : m.start()]
        after = text[m.end() : m.end() + 12]
        if _DATE_BEFORE.search(before) or _DATE_AFTER.match(after):
            continue
        glued_sign = bool(m.group("neg")) and before[-1:].isdigit()  # the "-" of "2018-0"
        if glued_sign or _GLUED_BEFORE.search(before) or _GLUED_AFTER.match(text, m.end()):
            continue
        if _OPERAND_OPEN.search(before):
            operand_pair = True
            continue
        # "to"/"and" closes "from X to Y", "between X and Y" (X may be a skipped date)
        opened = operand_pair or in_open_sentence(m.start())
        operand_pair = False
        if opened and _OPERAND_CLOSE.search(before):
            continue
        if years or not _is_year(m):
            out.append((number, m))
    return out


def stated_number(text: str) -> Number | None:
    """The number `text` states as its answer, else None.

    Among the numbers that may be an answer (`_candidates`), in order: the last result of a
    computation ("... = 24.4%"); the first number introduced as a statement ("the change is
    12.5%"); the first one that is not a year ("From 2018 to 2019 revenue grew 12.5%" -> 12.5%);
    the first year (when a year is all there is: "2019").
    """
    text = clip(text)
    found = _candidates(text)
    candidates = [(n, m) for n, m in found if not _is_year(m)] or found
    if not candidates:
        return None

    def before(m: re.Match) -> str:
        return text[max(0, m.start() - 40) : m.start()]

    results = [n for n, m in candidates if _RESULT_CUE.search(before(m))]
    if results:
        return results[-1]
    stated = [n for n, m in candidates if _STATED_CUE.search(before(m))]
    if stated:
        return stated[0]
    return candidates[0][0]


def parse_number(text: object) -> Number | None:
    """`text` as exactly one number (formatting allowed), else None."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        if not math.isfinite(text):
            return None
        return Number(float(text), _decimals_of(float(text)))
    if not isinstance(text, str):
        return None
    cleaned = text.strip().rstrip(".").strip()
    m = _NUM_RE.fullmatch(cleaned)
    return _from_match(m) if m else None


def _decimals_of(value: float) -> int:
    text = repr(round(value, 10))
    return len(text.split(".")[1].rstrip("0")) if "." in text and "e" not in text else 0


def _run_program(text: str, table) -> Answer:
    result = P.execute(text, table)
    if isinstance(result.value, str):
        return result.value
    return Number(result.value, _decimals_of(result.value))


def _yes_no(text: str) -> str | None:
    m = _YES_NO.search(text)
    return m.group(1).lower() if m else None


def golds_are_yes_no(golds: Iterable[object]) -> bool:
    """True when every gold form is "yes" or "no" (a yes/no question: read the answer as such)."""
    golds = list(golds)
    return bool(golds) and all(isinstance(g, str) and g.strip().lower() in ("yes", "no") for g in golds)


def extract(output: object, strict: bool = False, table=None, yes_no: bool = False) -> Answer:
    """The answer in model output, or raises ValueError with the reason.

    `yes_no`: the question is a yes/no one, so a committed yes or no ("Yes, 5 is greater than 3")
    is the answer and numbers in the reasoning are not; without one, the usual number reading.
    """
    if not isinstance(output, str) or not output.strip():
        raise ValueError("empty output")
    if strict:
        output = output.strip()
        if len(output) > MAX_OUTPUT_CHARS:  # no single number or program is that long
            raise ValueError(f"strict: output longer than {MAX_OUTPUT_CHARS} characters")
    output = clip(output)  # bounded work on any output (eval_plugins.parsers.MAX_OUTPUT_CHARS)
    if yes_no and not strict:
        committed = _YES_NO_PARSER.tolerant(output)
        if committed != MISSING:
            return committed
    if strict:
        body = _STRICT_PREFIX.sub("", output.strip(), count=1).strip().rstrip(".").strip()
        if body.lower() in ("yes", "no"):
            return body.lower()
        if P.looks_like_program(body) or _CALL.match(body):
            return _run_program(body, table)
        number = parse_number(body)
        if number is None:
            raise ValueError("strict: output is not a single number, yes/no or program")
        return number
    # A model that has answered often goes on with a made-up next question ("What is ...?",
    # "Question: ...") and its answer: read only what comes before that, unless nothing there
    # answers (the model restated the question first).
    head = _before_new_question(output)
    for text in dict.fromkeys((head, output)):
        try:
            return _read_tolerant(text, table)
        except ValueError as err:
            last = err
    raise last


def _before_new_question(output: str) -> str:
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if i and (_NEW_QUESTION.match(line) or line.rstrip().endswith("?")):
            return "\n".join(lines[:i])
    return output


def _read_tolerant(output: str, table) -> Answer:
    if not output.strip():
        raise ValueError("empty output")
    first = next((line for line in output.splitlines() if line.strip()), "")
    bare = parse_number(first)
    if bare is not None:  # "2.2%\n\nThe answer is: 2.2": the answer written first, alone
        return bare
    lines = list(_ANSWER_LINE.finditer(output))
    body = lines[-1].group("rest") if lines and lines[-1].group("rest").strip() else output
    stripped = body.strip()
    # `name(` with no space is a program attempt: run it, so an unknown operation is reported as
    # such instead of scoring the first number inside it.
    if P.looks_like_program(stripped) or _CALL.match(stripped):
        # A program may be followed by prose ("divide(5, 2) = 2.5"): take the longest prefix that
        # parses, so trailing text does not turn a valid program into an error.
        # Bounded: only prefixes the program parser accepts (P.MAX_CHARS), the longest
        # MAX_PROGRAM_TRIES of them (each try parses its prefix: all of them would be quadratic).
        last_error = P.ProgramError("no complete operation call")
        ends = sorted({m.end() for m in re.finditer(r"\)", stripped[: P.MAX_CHARS])}, reverse=True)
        if len(stripped) > P.MAX_CHARS:
            last_error = P.ProgramError(f"program longer than {P.MAX_CHARS} characters")
        for end in ends[:MAX_PROGRAM_TRIES]:
            try:
                return _run_program(stripped[:end], table)
            except P.ProgramError as err:
                last_error = err
        raise ValueError(f"program: {last_error}")
    # The first line that states a number is the answer; what follows is explanation ("2.2%\n\n
    # The percentage change from 2018 to 2019 is 2.2%. This is calculated by ...").
    for line in body.splitlines():
        if _candidates(line, years=False):
            return stated_number(line)
    number = stated_number(body)
    if number is not None:
        return number
    yes_no = _yes_no(body)
    if yes_no:
        return yes_no
    raise ValueError("no number in output")


def encode(answer: Answer) -> str:
    """Canonical text of an answer, for the filtered response (and --log_samples)."""
    return answer if isinstance(answer, str) else answer.render()


def decode(text: object) -> Answer | None:
    if not isinstance(text, str) or text.startswith(MISSING):
        return None
    if text in ("yes", "no"):
        return text
    return parse_number(text)


def _close(a: float, b: float, rel_tol: float) -> bool:
    return math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-9)


def match(
    pred: Answer | None,
    golds: Iterable[object],
    tolerant: bool,
    rel_tol: float = DEFAULT_REL_TOL,
    scale: bool | None = None,
) -> bool:
    """True if `pred` matches any gold form (numbers, number strings, or yes/no).

    `scale` (tolerant only): offer the x100 readings always (True: used to check upstream golds
    against their programs, "380" vs 3.8), never (False), or for fractional golds (None).
    """
    if pred is None:
        return False
    for gold in golds:
        if isinstance(gold, str) and gold.strip().lower() in ("yes", "no"):
            if isinstance(pred, str) and pred == gold.strip().lower():
                return True
            continue
        g = gold if isinstance(gold, Number) else parse_number(gold)
        if g is None or isinstance(pred, str):
            continue
        # The x100 reading is only offered for a fractional gold (0.14136 read as 14.1): for a
        # whole-number gold it would let "3" match 300.
        by_scale = tolerant and (g.value != round(g.value) if scale is None else scale)
        for pv, _ in pred.forms(scale=False):
            for gv, gd in g.forms(scale=by_scale):
                if tolerant:
                    if _close(pv, gv, rel_tol):
                        return True
                elif abs(pv - gv) <= 0.5 * 10.0 ** (-min(gd, 12)) * (1 + 1e-9) + 1e-12:
                    return True
    return False


# ---------------------------------------------------------------------------------------------
# lm-eval plumbing


class NumericFilter(Filter):
    """Maps each generation to the canonical answer text, or "[missing] <reason>"."""

    def __init__(self, strict: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.strict = bool(strict)

    def one(self, resp: object, doc: dict) -> str:
        yes_no = golds_are_yes_no(doc.get("golds") or [doc.get("label")])
        try:
            return encode(extract(resp, strict=self.strict, table=doc.get("table") or None, yes_no=yes_no))
        except (ValueError, P.ProgramError) as err:
            log.debug(
                "doc %s: %s answer unreadable: %s",
                doc.get("id"),
                "strict" if self.strict else "tolerant",
                err,
            )
            return f"{MISSING} {err}"

    def apply(self, resps: Iterable[list[str]], docs: Iterable[dict]) -> list[list[str]]:
        return [[self.one(r, doc) for r in doc_resps] for doc_resps, doc in zip(resps, docs, strict=True)]


def equal_5dp(pred: Answer | None, golds: Iterable[object]) -> bool:
    """FinQA's exactness: a value (or, written with %, its /100 form) equal to a gold form after
    round(., 5) on both sides; yes/no equal. Never looser than `match(tolerant=True)`'s 1%."""
    if pred is None:
        return False
    for gold in golds:
        if isinstance(gold, str) and gold.strip().lower() in ("yes", "no"):
            if pred == gold.strip().lower():
                return True
            continue
        g = gold if isinstance(gold, Number) else parse_number(gold)
        if g is None or isinstance(pred, str):
            continue
        gold_values = {round(v, 5) for v, _ in g.forms(scale=False)}
        if any(round(v, 5) in gold_values for v, _ in pred.forms(scale=False)):
            return True
    return False


def process_results(doc: dict, results: Sequence[str]) -> dict[str, float]:
    """Per-doc scores; gold forms come from `doc["golds"]` (strings), else `doc["label"]`.

    exact_match: equal at 5 decimals (`equal_5dp`); rounded_match (lenient): equal at the
    precision the gold shows (gold 6 accepts 6.49); tolerant_match: within `rel_tol`, or exact.
    """
    pred = decode(results[0]) if results else None
    golds = doc.get("golds") or [doc["label"]]
    rel_tol = float(doc.get("rel_tol") or DEFAULT_REL_TOL)
    exact = equal_5dp(pred, golds)
    tolerant = float(exact or match(pred, golds, tolerant=True, rel_tol=rel_tol))
    return {
        "score": tolerant,
        "exact_match": float(exact),
        "rounded_match": float(match(pred, golds, tolerant=False)),
        "tolerant_match": tolerant,
        "missing_rate": float(pred is None),
    }


def mean(items: Sequence[float]) -> float:
    return math.fsum(items) / len(items) if items else math.nan
