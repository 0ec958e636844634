"""Numeric answers (FinQA, ConvFinQA, FinanceBench): find the answer in model output, match to gold.

Reading an answer (`extract`), two modes, both reported by every numeric task:
- strict: the whole output (after an optional "Answer:" prefix and trailing punctuation) must be
  one number, `yes`/`no`, or a FinQA program;
- tolerant: the content of an explicit "Answer:" line if there is one, else the whole output; in
  it, a FinQA program if it starts with one, else the first number (or yes/no when no number).
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

import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lm_eval.api.filter import Filter

from eval_plugins import finqa_program as P

log = logging.getLogger(__name__)

MISSING = "[missing]"
DEFAULT_REL_TOL = 0.01
METRICS = ("score", "exact_match", "tolerant_match", "missing_rate")

_NUM = (
    r"(?P<neg>[-\u2212\u2013])?\s*(?P<cur>[$\u20ac\u00a3])?\s*(?P<open>\()?\s*(?P<neg2>[-\u2212])?\s*"
    r"(?P<cur2>[$\u20ac\u00a3])?\s*"
    r"(?P<int>\d{1,3}(?:,\d{3})+|\d+)?(?P<frac>\.\d+)?(?![\d.]\d)"
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
    try:
        value = float(digits)
    except ValueError:  # pragma: no cover - the regex only admits digits
        return None
    negative = bool(m.group("neg") or m.group("neg2")) or bool(m.group("open") and m.group("close"))
    decimals = len(m.group("frac")) - 1 if m.group("frac") else 0
    return Number(-value if negative else value, decimals, bool(m.group("pct")))


def numbers(text: str) -> list[Number]:
    """Every number written in `text`, in order."""
    found = []
    for m in _NUM_RE.finditer(text):
        number = _from_match(m)
        if number is not None:
            found.append(number)
    return found


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


def extract(output: object, strict: bool = False, table=None) -> Answer:
    """The answer in model output, or raises ValueError with the reason."""
    if not isinstance(output, str) or not output.strip():
        raise ValueError("empty output")
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
    lines = list(_ANSWER_LINE.finditer(output))
    body = lines[-1].group("rest") if lines and lines[-1].group("rest").strip() else output
    stripped = body.strip()
    # `name(` with no space is a program attempt: run it, so an unknown operation is reported as
    # such instead of scoring the first number inside it.
    if P.looks_like_program(stripped) or _CALL.match(stripped):
        # A program may be followed by prose ("divide(5, 2) = 2.5"): take the longest prefix that
        # parses, so trailing text does not turn a valid program into an error.
        last_error = P.ProgramError("no complete operation call")
        for end in sorted({m.end() for m in re.finditer(r"\)", stripped)}, reverse=True):
            try:
                return _run_program(stripped[:end], table)
            except P.ProgramError as err:
                last_error = err
        raise ValueError(f"program: {last_error}")
    found = numbers(body)
    if found:
        return found[0]
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
        try:
            return encode(extract(resp, strict=self.strict, table=doc.get("table") or None))
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


def process_results(doc: dict, results: Sequence[str]) -> dict[str, float]:
    """Per-doc scores; gold forms come from `doc["golds"]` (strings), else `doc["label"]`."""
    pred = decode(results[0]) if results else None
    golds = doc.get("golds") or [doc["label"]]
    rel_tol = float(doc.get("rel_tol") or DEFAULT_REL_TOL)
    tolerant = float(match(pred, golds, tolerant=True, rel_tol=rel_tol))
    return {
        "score": tolerant,
        "exact_match": float(match(pred, golds, tolerant=False)),
        "tolerant_match": tolerant,
        "missing_rate": float(pred is None),
    }


def mean(items: Sequence[float]) -> float:
    return math.fsum(items) / len(items) if items else math.nan
