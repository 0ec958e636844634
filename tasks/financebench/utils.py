"""FinanceBench: 150 open-source questions over 10-K/10-Q/8-K filings, scored without a judge.

Scoring (`process_results`): when the gold answer is a number (at most a few words around one
number: "$1577.00", "65.4%", "0.66 million"), the first number of the answer must match it
within 1% (eval_plugins.numeric, percent aware). Otherwise: a gold starting with yes/no needs the
same first yes/no; any other gold must be contained in the answer after normalising case,
punctuation and spacing. That is deliberately conservative (long explanatory golds rarely match).
An optional LLM judge (any OpenAI-compatible /chat/completions endpoint) is OFF unless
FINBENCH_JUDGE_URL and FINBENCH_JUDGE_MODEL are set (FINBENCH_JUDGE_API_KEY optional); it adds a
`judge` metric and never replaces `score`. Judge errors are logged and that doc gets no judge
value; they never stop the run.
"""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.request
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path

from lm_eval.api.filter import Filter

from eval_plugins import numeric as N
from eval_plugins.parsers import normalize
from finbench.core import settings
from finbench.data import raw as D
from finbench.data import readers as R

log = logging.getLogger(__name__)
RAW_FILE = "financebench_open_source.jsonl"
REQUIRED = ("financebench_id", "question", "answer")
_PREFIX = re.compile(r"^\s*(?:the\s+)?(?:final\s+)?answer\s*(?:is)?\s*[:=]?\s*", re.IGNORECASE)
_UNITS = re.compile(
    r"\b(?:usd|us|dollars?|million|billion|thousand|mn|bn|m|b|k|percent|x|times)\b|\$",
    re.IGNORECASE,
)


def _row(rec: object, where: str) -> D.Row:
    if not isinstance(rec, dict):
        raise D.DataError(f"{where}: expected a JSON object")
    for key in REQUIRED:
        if not isinstance(rec.get(key), str) or not rec[key].strip():
            raise D.DataError(f"{where}: missing or empty key {key!r} (expected a non-empty string)")
    evidence = rec.get("evidence") or []
    if not isinstance(evidence, list):
        raise D.DataError(f"{where}: 'evidence' must be a list of objects")
    return {
        "id": rec["financebench_id"],
        "text": rec["question"].strip(),
        "question": rec["question"].strip(),
        "company": str(rec.get("company") or "the company"),
        "doc_name": str(rec.get("doc_name") or "its filing"),
        "question_type": str(rec.get("question_type") or ""),
        "label": rec["answer"].strip(),
        "evidence": " ".join(str(e.get("evidence_text", "")) for e in evidence if isinstance(e, dict)),
    }


def read_raw(root: Path) -> D.Splits:
    path = D.raw_file(root, "financebench", RAW_FILE)
    rows = []
    for n, line in enumerate(D.read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise D.DataError(f"{path}:{n}: not a JSON line: {err}") from err
        rows.append(_row(rec, f"{path}:{n}"))
    return {"train": rows}


def read_hub(path: str, revision: str) -> D.Splits:
    # main: financebench_merged.jsonl (no script, one split: train, 150 rows).
    from finbench.data import hub
    ds = hub.load_dataset(path, revision=revision, split="train")
    hub.require_columns(ds, REQUIRED, f"hub {path}@{revision} train")
    return {"train": [_row(dict(r), f"hub {path} train[{i}]") for i, r in enumerate(ds)]}


def require_evidence(dataset):
    """Open-book variant: every question must come with evidence text to put in the prompt."""
    for row in dataset:
        if not str(row.get("evidence") or "").strip():
            raise D.DataError(
                f"financebench_open: question {row.get('id')!r} has no evidence text "
                "(key 'evidence[].evidence_text' of the source row); the open-book prompt needs it"
            )
    return dataset


def make_splits(upstream: D.Splits, test_fraction: float = 0.7) -> D.Splits:
    rest, test = D.seeded_split(upstream["train"], test_fraction, seed=42)
    train, dev = D.seeded_split(rest, 1 / 3, seed=42)
    return {"train": train, "dev": dev, "test": test}


def load(source, test_fraction=0.7, **_):
    splits = partial(make_splits, test_fraction=float(test_fraction))
    return R.load("financebench", source, read_raw, read_hub, splits)


# --- scoring ---------------------------------------------------------------------------------


def gold_number(answer: str) -> N.Number | None:
    """The gold as a number when it is essentially one number (units and currency aside)."""
    found = N.numbers(answer)
    rest = _UNITS.sub(" ", N._NUM_RE.sub(" ", answer, count=1)) if found else answer
    return found[0] if len(found) == 1 and len(normalize(rest).split()) <= 2 else None


class AnswerFilter(Filter):
    """tolerant: the whole answer; strict: the answer only if it is one line ("[missing]" else)."""

    def __init__(self, strict: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.strict = bool(strict)

    def one(self, resp: object) -> str:
        if not isinstance(resp, str) or not resp.strip():
            return N.MISSING + " empty output"
        text = _PREFIX.sub("", resp.strip(), count=1).strip()
        if self.strict and "\n" in text:
            return N.MISSING + " strict: more than one line"
        return text or N.MISSING + " empty output"

    def apply(self, resps: Iterable[list[str]], docs: Iterable[dict]) -> list[list[str]]:
        return [[self.one(r) for r in doc_resps] for doc_resps, _ in zip(resps, docs, strict=True)]


def _text_match(gold: str, pred: str) -> bool:
    g, p = normalize(gold), normalize(pred)
    first = g.split()[:1]
    if first and first[0] in ("yes", "no"):
        m = re.search(r"\b(yes|no)\b", p)
        return bool(m) and m.group(1) == first[0]
    return bool(g) and g in p


def judge(question: str, gold: str, pred: str) -> float | None:
    """1.0 / 0.0 from an OpenAI-compatible judge, or None when off or on error (logged)."""
    s = settings.current()  # FINBENCH_JUDGE_URL / FINBENCH_JUDGE_MODEL, resolved where the run began
    url, model = s.judge_url, s.judge_model
    if not url or not model:
        return None
    prompt = (
        "You grade answers to financial questions. Reply with exactly one word, CORRECT or WRONG.\n"
        f"Question: {question}\nReference answer: {gold}\nCandidate answer: {pred}\n"
        "Is the candidate answer consistent with the reference (numbers may be rounded)?"
    )
    body = json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": 4,
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    key = os.environ.get("FINBENCH_JUDGE_API_KEY")  # a secret: never part of the settings value
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url.rstrip("/") + "/chat/completions", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - user-set URL
            reply = json.loads(response.read())["choices"][0]["message"]["content"]
    except Exception as err:  # network, HTTP, JSON shape: log and go on without a judge value
        log.warning("judge call failed (%s); no judge value for this answer", err)
        return None
    verdict = normalize(str(reply)).split()[:1]
    return 1.0 if verdict == ["correct"] else 0.0


def process_results(doc: dict, results: Sequence[str]) -> dict[str, float]:
    pred = results[0] if results else N.MISSING
    missing = not isinstance(pred, str) or pred.startswith(N.MISSING)
    gold = doc["label"]
    number = gold_number(gold)
    numeric = text = 0.0
    if not missing:
        if number is not None:
            found = N.numbers(pred)
            numeric = float(bool(found) and N.match(found[0], [number], tolerant=True))
        else:
            text = float(_text_match(gold, pred))
    out = {
        "score": max(numeric, text),
        "numeric_match": numeric,
        "text_match": text,
        "missing_rate": float(missing),
    }
    verdict = None if missing else judge(doc["question"], gold, pred)
    if verdict is not None:
        out["judge"] = verdict
    return out
