"""TAT-QA: questions over a hybrid of a table and paragraphs from financial reports.

Rows: one per question. The prompt holds the context's table (one `| a | b |` line per row) and
its paragraphs (in their `order`), then the question. The gold answer is written as the target a
model should produce: spans joined by "; ", an arithmetic/count result as a number, then the scale
("thousand", "million", "billion", or "%" for percent) when the question has one.

Scoring follows the official evaluation (NExTplusplus/TAT-QA `tatqa_metric.py`, class
`TaTQAEmAndF1`, commit 870accc41953dcde885aabeb963d94aabdc0fbc3, with the number helpers of its
`tatqa_utils.py`, integer rule included; Zhu et al., ACL 2021, arXiv:2105.07624, section 5.1):
- gold and prediction become ONE string each (`answer_strings`): answers sorted, each number
  rounded to 2 decimals and multiplied by its scale ("1,496.5" million -> 1496500000.0000), a
  scale word appended to non-numbers; a lone unscaled prediction also offers its plain value;
- `exact_match`: the normalised strings (lower case, punctuation and articles removed, numbers
  canonical) are equal; `f1`: DROP's bag-of-tokens F1 with an optimal 1-1 alignment of bags,
  rounded to 2 decimals, and for arithmetic and count questions F1 = EM (the "numeracy-focused"
  F1 of the paper: a number is right or wrong).
The official script takes the scale as a separate prediction; a model writes it in its text, so a
trailing scale word or "%" is scored both as the scale and as part of the answer (the gold itself
sometimes writes "$85.1 million" with scale ""), and the better reading counts (`readings`).
Our own `tolerant_match` (eval_plugins.numeric, 1% relative) applies to arithmetic and count
questions, comparing the first number of the answer with the gold after both are scaled; for
span questions it equals exact_match. `exact_match_intnorm` / `f1_intnorm` are the official
figures with integers normalised as floats (lenient). `score` = f1.
"""

from __future__ import annotations

import logging
import math
import re
import string
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from lm_eval.api.filter import Filter

from eval_plugins import numeric as N
from finbench.core.validate import short
from finbench.data import raw as D
from finbench.data import readers as R

log = logging.getLogger(__name__)
FOLDER = "tatqa"
RAW_FILES = {
    "train": "tatqa_dataset_train.json",
    "dev": "tatqa_dataset_dev.json",
    "test": "tatqa_dataset_test_gold.json",
}
OPTIONAL = {"train"}  # a copy with only the evaluation files still scores dev and test
SCALES = ("", "thousand", "million", "billion", "percent")
ANSWER_TYPES = ("span", "multi-span", "arithmetic", "count")
MISSING = N.MISSING

# ---------------------------------------------------------------------------------------------
# Reading the data


def _cell(value: Any) -> str:
    return " ".join(str(value if value is not None else "").split())


def render_table(rows: Any, where: str) -> str:
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise D.DataError(f"{where}: 'table.table' must be a list of rows (lists of cells)")
    width = max((len(r) for r in rows), default=0)
    return "\n".join("| " + " | ".join(_cell(c) for c in r + [""] * (width - len(r))) + " |" for r in rows)


def render_paragraphs(paragraphs: Any, where: str) -> str:
    if not isinstance(paragraphs, list):
        raise D.DataError(f"{where}: 'paragraphs' must be a list of {{uid, order, text}} objects")
    for i, p in enumerate(paragraphs):
        if not isinstance(p, dict) or not isinstance(p.get("text"), str):
            raise D.DataError(f"{where}: paragraphs[{i}] must be an object with a string 'text'")
    orders = [_order(p.get("order"), f"{where} paragraphs[{i}]") for i, p in enumerate(paragraphs)]
    ordered = [p for _, p in sorted(zip(orders, paragraphs, strict=True), key=lambda op: op[0])]
    return "\n".join(p["text"].strip() for p in ordered if p["text"].strip())


def _order(value: Any, where: str) -> int:
    """A paragraph's or question's `order`: a whole number (absent or null: 0)."""
    if value is None or value == "":
        return 0
    try:
        if isinstance(value, bool) or not float(value).is_integer():
            raise ValueError
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        raise D.DataError(f"{where}: 'order' must be a whole number, got {short(value)}") from None


def _finite(answer: Any, where: str) -> Any:
    """An arithmetic or count answer that reads as a number must be finite (JSON `Infinity`,
    `NaN`, 1e400 or "1e400" have no answer a model could write, and broke `format_value`)."""
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return answer  # a few arithmetic answers are strings; kept as written
    except OverflowError:  # an integer of hundreds of digits
        value = math.inf
    if not math.isfinite(value):
        raise D.DataError(f"{where}: answer {short(answer)} is not a finite number")
    return answer


def format_value(value: float) -> str:
    """An arithmetic answer as a model should write it (up to 4 decimals, no exponent)."""
    return f"{value:.4f}".rstrip("0").rstrip(".") if value != round(value) else str(int(round(value)))


def gold_answers(q: dict, where: str) -> list[str]:
    """The gold answer strings exactly as the official `extract_gold_answers` builds them."""
    kind, answer = q["answer_type"], q["answer"]
    if kind in ("span", "multi-span"):
        if not isinstance(answer, list) or not answer or not all(isinstance(a, str) for a in answer):
            raise D.DataError(f"{where}: a {kind} answer must be a non-empty list of strings, got {answer!r}")
        return list(answer)
    if kind in ("count", "arithmetic") and not isinstance(answer, bool):
        _finite(answer, where)
    if kind == "count":
        try:
            return [str(int(answer))]
        except (TypeError, ValueError) as err:
            raise D.DataError(f"{where}: a count answer must be an integer, got {answer!r}") from err
    if isinstance(answer, bool) or not isinstance(answer, int | float | str):
        raise D.DataError(f"{where}: an arithmetic answer must be a number, got {answer!r}")
    return [str(answer)]


def target_text(q: dict, golds: list[str]) -> str:
    """What the model is taught to write: the answers, then the scale."""
    kind, scale = q["answer_type"], q["scale"]
    if kind == "arithmetic":
        try:
            parts = [format_value(float(q["answer"]))]
        except ValueError:  # a few arithmetic answers are strings; keep them as written
            parts = [str(q["answer"])]
    else:
        parts = list(golds)
    text = "; ".join(parts)
    if scale == "percent":
        return text if all(p.rstrip().endswith("%") for p in parts) else text + "%"
    return f"{text} {scale}" if scale else text


def row_from_question(q: Any, context: str, where: str) -> D.Row:
    if not isinstance(q, dict):
        raise D.DataError(f"{where}: expected a question object")
    for key in ("uid", "question", "answer", "answer_type", "scale"):
        if key not in q:
            raise D.DataError(f"{where}: missing key {key!r}")
    where = f"{where} (uid {short(q['uid'])})"
    if q["answer_type"] not in ANSWER_TYPES:
        raise D.DataError(f"{where}: answer_type {q['answer_type']!r} is not one of {list(ANSWER_TYPES)}")
    if q["scale"] not in SCALES:
        raise D.DataError(f"{where}: scale {q['scale']!r} is not one of {list(SCALES)}")
    golds = gold_answers(q, where)
    target = target_text(q, golds)
    return {
        "id": str(q["uid"]),
        "text": context,
        "question": str(q["question"]).strip(),
        "label": target,
        "target": target,
        "gold_answers": golds,
        "answer_type": q["answer_type"],
        "answer_from": str(q.get("answer_from") or ""),
        "scale": q["scale"],
        "derivation": str(q.get("derivation") or ""),
    }


def read_records(records: Any, where: str) -> list[D.Row]:
    if not isinstance(records, list):
        raise D.DataError(f"{where}: expected a JSON list of TAT-QA contexts, got {type(records).__name__}")
    rows = []
    for i, ctx in enumerate(records):
        here = f"{where}[{i}]"
        if not isinstance(ctx, dict):
            raise D.DataError(f"{here}: expected a context object {{table, paragraphs, questions}}")
        table = D.require(ctx, "table", here)
        if not isinstance(table, dict):
            raise D.DataError(f"{here}: 'table' must be an object {{uid, table}}")
        text = render_table(D.require(table, "table", f"{here} table"), f"{here} table")
        paragraphs = render_paragraphs(D.require(ctx, "paragraphs", here), here)
        context = "\n".join(part for part in (text, paragraphs) if part)
        questions = D.require(ctx, "questions", here)
        if not isinstance(questions, list):
            raise D.DataError(f"{here}: 'questions' must be a list")
        orders = [_order(q.get("order"), f"{here} questions[{j}]") if isinstance(q, dict) else 0
                  for j, q in enumerate(questions)]
        ordered = [q for _, q in sorted(zip(orders, questions, strict=True), key=lambda oq: oq[0])]
        rows += [row_from_question(q, context, f"{here} questions[{j}]") for j, q in enumerate(ordered)]
    return rows


def read_raw(root: Path) -> D.Splits:
    out: D.Splits = {}
    for split, name in RAW_FILES.items():
        if split in OPTIONAL and not (root / FOLDER / name).is_file():
            log.warning(
                "%s: absent; TAT-QA train split is empty (dev and test are scored)", root / FOLDER / name
            )
            out[split] = []
            continue
        path = D.raw_file(root, FOLDER, name)
        out[split] = read_records(D.read_json(path), str(path))
    return out


def read_hub(path: str, revision: str) -> D.Splits:
    # The hub repo holds the upstream JSON files themselves (no loader script, no parquet): the
    # answers mix lists, numbers and strings, which Arrow cannot type, so read them as JSON.
    from finbench.data import hub as H
    out: D.Splits = {}
    for split, name in RAW_FILES.items():
        local = H.download_file(path, name, revision=revision)
        out[split] = read_records(D.read_json(Path(local)), f"hub {path}@{revision} {name}")
    return out


make_splits = R.upstream_splits


def load(source, **_):
    return R.load(FOLDER, source, read_raw, read_hub, make_splits)


# ---------------------------------------------------------------------------------------------
# The official metric, re-implemented from tatqa_metric.py / tatqa_utils.py

_NOT_IN_NUMBER = set("'\"\\$€£¥%(),[]")
_ONE_NUMBER = re.compile(r"([+-]?\d+(\.\d+)?)|([+-]?\.\d+)")
_WORD_SCALE = re.compile(r"([\d.]+\s?[a-zA-Z]+)")
_NEGATIVE = re.compile(r"(\([\d.\s]+\))")
_PERCENT = re.compile(r"([\d.\s]+%)")
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def scale_to_num(scale: str) -> float:
    scale = scale.lower()
    # Integers, as upstream: an int answer times an int scale stays an int (see `to_number`).
    for word, value in (
        ("hundred", 100),
        ("thousand", 1000),
        ("million", 1000000),
        ("billion", 1000000000),
        ("percent", 0.01),
    ):
        if word in scale:
            return value
    return 1


def _clean_num(text: str) -> str:
    return "".join(ch for ch in str(text) if ch not in _NOT_IN_NUMBER)


def is_number(text: str) -> bool:
    """A number, optionally followed by a scale word ("1,234", "1 million"; not "3 apples")."""
    words = " ".join(_clean_num(w) for w in text.split()).split()
    if not words:
        return False
    try:
        num = float(words[0])
    except ValueError:
        return False
    if math.isnan(num):
        return False
    return not (len(words) >= 2 and scale_to_num(words[1]) == 1)


def to_number(text: str) -> int | float | None:
    """The first number of `text` with its word scale, `(x)` negation and `%` applied.

    As upstream (`extract_one_num_from_str`), a number written without "." is an int: "2018"
    gives 2018, whose text "2018" differs from a gold's "2018.0" in `normalize_answer`.
    """
    m = _ONE_NUMBER.search(_clean_num(text))
    if m is None or not m.group(1):
        return None
    num = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
    word = _WORD_SCALE.search(text)
    scale = scale_to_num(word.group(0).lower()) if word else 1
    negative = -1 if _NEGATIVE.search(text.strip()) else 1
    percent = 0.01 if _PERCENT.search(text.strip()) else 1
    return round(num * scale * negative * percent, 4)


def _normalize_token(token: str, intnorm: bool) -> str:
    token = token.lower()
    if not is_number(token):
        token = "".join(ch for ch in token if ch not in _PUNCTUATION)
    if is_number(token):
        value = to_number(token)
        # intnorm (our lenient `*_intnorm` metrics): "2018" reads as 2018.0, as the gold does.
        token = str(float(value) if intnorm and isinstance(value, int) else value)
    return " ".join(_ARTICLES.sub(" ", token).split())


def normalize_answer(text: str, intnorm: bool = False) -> str:
    parts = (_normalize_token(t, intnorm) for t in text.split(" "))
    return " ".join(part for part in parts if part.strip()).strip()


def answer_strings(answers: Sequence[str], scale: str) -> list[str]:
    """The official `get_answer_str`: one string for the sorted answers, numbers scaled."""
    out = []
    for ans in sorted(str(a) for a in answers):
        value = to_number(ans) if is_number(ans) else None
        if value is None:
            out.append(f"{ans} {scale}" if scale else ans)
        elif "%" in ans:  # the answer is a percentage already
            out.append(f"{value:.4f}")
        else:
            out.append(f"{round(value, 2) * scale_to_num(scale):.4f}")
    return [" ".join(out)]


def _f1(pred: set[str], gold: set[str]) -> float:
    common = len(gold & pred)
    precision = common / len(pred) if pred else 1.0
    recall = common / len(gold) if gold else 1.0
    return 0.0 if precision == 0.0 and recall == 0.0 else 2 * precision * recall / (precision + recall)


def _bags(answer: str, intnorm: bool) -> tuple[list[str], list[set[str]]]:
    normalized = normalize_answer(answer, intnorm)
    return [normalized], [set(normalized.split())]


def em_f1(pred: str, gold: str, intnorm: bool = False) -> tuple[float, float]:
    """DROP-style EM and F1 between two answer strings (the official `get_metrics`)."""
    from scipy.optimize import linear_sum_assignment

    (p_norm, p_bags), (g_norm, g_bags) = _bags(pred, intnorm), _bags(gold, intnorm)
    em = float(set(p_norm) == set(g_norm) and len(p_norm) == len(g_norm))
    scores = np.array([[_f1(p, g) for p in p_bags] for g in g_bags])
    rows, cols = linear_sum_assignment(-scores)
    best = np.zeros(max(len(g_bags), len(p_bags)))
    for r, c in zip(rows, cols, strict=True):
        best[r] = max(best[r], scores[r, c])
    return em, round(float(np.mean(best)), 2)


def score(doc: dict, answers: list[str], pred_scale: str, intnorm: bool = False) -> dict[str, float]:
    """The official EM / F1 of one prediction (answers + scale) against the doc's gold.

    `intnorm`: our lenient variant, numbers written as integers compared as floats.
    """
    if not answers:  # upstream: an empty prediction scores 0 / 0
        return {"exact_match": 0.0, "f1": 0.0}
    golds = answer_strings(doc["gold_answers"], doc["scale"])
    preds = answer_strings(answers, pred_scale)
    if len(answers) == 1 and not pred_scale and "%" not in answers[0] and is_number(answers[0]):
        plain = to_number(answers[0])  # add_percent_pred: a bare 0.2342 may mean 23.42 percent
        if plain is not None:
            preds.append(f"{plain:.4f}")
    em, f1 = max(em_f1(p, g, intnorm) for p in preds for g in golds)
    if doc["answer_type"] in ("arithmetic", "count"):
        f1 = em
    return {"exact_match": em, "f1": f1}


# ---------------------------------------------------------------------------------------------
# Reading the model's answer

_PREFIX = re.compile(r"^\s*(?:the\s+)?(?:final\s+)?answer\s*(?:is)?\s*[:=]?\s*", re.IGNORECASE)
_ANSWER_LINE = re.compile(
    r"(?:^|\n)[ \t*#>-]*(?:the\s+)?(?:final\s+)?answer\s*(?:is)?\s*[:=]\s*(?P<rest>[^\n]*)", re.I
)
_SCALE_SUFFIX = re.compile(
    r"(?:\s+(?:in\s+)?(?P<word>thousand|million|billion|percent)s?|\s*(?P<pct>%))\s*$", re.I
)


def read_answer(output: object, strict: bool) -> str:
    """The answer text in model output (one line); raises ValueError with the reason.

    tolerant: the last "Answer: ..." line if any, else the first non-empty line; strict: the
    whole output must be one line. A leading "Answer:" is dropped.
    """
    if not isinstance(output, str) or not output.strip():
        raise ValueError("empty output")
    if strict:
        body = _PREFIX.sub("", output.strip(), count=1)
        if "\n" in body.strip():
            raise ValueError("strict: more than one line")
    else:
        lines = [m.group("rest") for m in _ANSWER_LINE.finditer(output) if m.group("rest").strip()]
        first = next(line for line in output.splitlines() if line.strip())
        body = lines[-1] if lines else _PREFIX.sub("", first.strip(), count=1)
    body = body.strip()
    if not body:
        raise ValueError("no answer text")
    return body


def _spans(text: str) -> list[str]:
    return [s.strip() for s in text.split(";") if s.strip()]


def readings(text: str) -> list[tuple[list[str], str]]:
    """(spans, scale) readings of an answer text, all scored, the best counting.

    Spans are split at ";" (or the text is one span: some gold spans contain ";"). A trailing
    scale word or "%" is read as the scale of every span, or kept in the last span (the gold
    itself sometimes writes "$85.1 million" with scale ""). A final full stop is kept or dropped
    (some gold spans are sentences ending with one).
    """
    out: list[tuple[list[str], str]] = []
    for base in dict.fromkeys((text, text.rstrip(".").strip())):
        if not base:
            continue
        out += [(_spans(base), ""), ([base], "")]
        m = _SCALE_SUFFIX.search(base)
        rest = base[: m.start()] if m else ""
        if m and _spans(rest):
            out.append((_spans(rest), "percent" if m.group("pct") else m.group("word").lower()))
    unique = {_reading_key(r): r for r in out if r[0]}
    return list(unique.values())


def _reading_key(reading: tuple[list[str], str]) -> str:
    return "\x1f".join([*reading[0], "|", reading[1]])


class AnswerFilter(Filter):
    """Each generation -> its answer text (one line), or "[missing] <reason>"."""

    def __init__(self, strict: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.strict = bool(strict)

    def one(self, resp: object) -> str:
        try:
            return read_answer(resp, self.strict)
        except ValueError as err:
            return f"{MISSING} {err}"

    def apply(self, resps: Iterable[list[str]], docs: Iterable[dict]) -> list[list[str]]:
        return [[self.one(r) for r in doc_resps] for doc_resps, _ in zip(resps, docs, strict=True)]


def _scaled_gold(doc: dict) -> N.Number | None:
    try:
        value = float(doc["gold_answers"][0]) * scale_to_num(doc["scale"])
    except (ValueError, IndexError):
        return None
    return N.Number(value, 6)


def tolerant(doc: dict, answers: list[str], pred_scale: str, em: float) -> float:
    """eval_plugins.numeric's 1% match on the scaled first number (arithmetic/count), else EM."""
    gold = _scaled_gold(doc) if doc["answer_type"] in ("arithmetic", "count") else None
    if gold is None:
        return em
    found = N.numbers(answers[0])
    if not found:
        return 0.0
    first = found[0]
    factor = 0.01 if first.percent else scale_to_num(pred_scale)
    return float(N.match(N.Number(first.value * factor, 6), [gold], tolerant=True))


def _best(doc: dict, options: list[tuple[list[str], str]], intnorm: bool) -> dict[str, float]:
    scores = (score(doc, spans, scale, intnorm) for spans, scale in options)
    return max(scores, key=lambda s: (s["exact_match"], s["f1"]))


def process_results(doc: dict, results: Sequence[str]) -> dict[str, float]:
    out = dict.fromkeys(
        ("score", "exact_match", "f1", "exact_match_intnorm", "f1_intnorm", "tolerant_match"), 0.0
    )
    out["missing_rate"] = 1.0
    text = results[0] if results else None
    if not isinstance(text, str) or not text.strip() or text.startswith(MISSING):
        return out
    options = readings(text)
    official = _best(doc, options, intnorm=False)
    out.update(official)
    out["score"] = official["f1"]
    lenient = _best(doc, options, intnorm=True)
    out["exact_match_intnorm"], out["f1_intnorm"] = lenient["exact_match"], lenient["f1"]
    out["tolerant_match"] = max(
        tolerant(doc, spans, scale, official["exact_match"]) for spans, scale in options
    )
    out["missing_rate"] = 0.0
    return out
