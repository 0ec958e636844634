"""FinQA: the upstream JSON records ({pre_text, post_text, table, qa{question, answer, program,
exe_ans}}) as prompt rows; the published train/dev/test splits are kept as they are.

Each row carries the rendered context (`text`), the `question`, the gold forms (`golds`: the
answer string and exe_ans, which upstream sometimes disagree in scale, e.g. "380" vs 3.8), the
gold `program`, the `table` (for model answers given as programs), `program_ok` (does the gold
program, run by the safe interpreter, reproduce a gold form?) and the training `target`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from eval_plugins import finqa_program as P
from eval_plugins import numeric as N
from finbench.data import raw as D
from finbench.data import readers as R

log = logging.getLogger(__name__)
RAW_FILES = {"train": "train.json", "dev": "dev.json", "test": "test.json"}


def context(record: dict, where: str) -> tuple[str, list[list[str]]]:
    """(pre-text, table, post-text rendered as prompt text; the table as rows of strings)."""
    try:
        return P.render_context(record, where)
    except ValueError as err:
        raise D.DataError(str(err)) from err


def gold_target(answer: str, exe_ans: Any) -> str:
    """The training target: the answer string, unless it disagrees with exe_ans (then exe_ans)."""
    exe = N.parse_number(exe_ans) if not isinstance(exe_ans, str) else N.decode(exe_ans)
    if isinstance(exe_ans, str) and exe_ans.strip().lower() in ("yes", "no"):
        return exe_ans.strip().lower()
    if answer and (exe is None or N.match(exe, [answer], tolerant=False)):
        return answer
    return P.format_number(exe.value) if isinstance(exe, N.Number) else answer


def program_ok(program: str, table: list[list[str]], golds: list[str]) -> tuple[bool, str]:
    """Does the gold program reproduce a gold answer? (True/False, reason)."""
    try:
        result = P.execute(program, table)
    except P.ProgramError as err:
        return False, str(err)
    value = result.value if isinstance(result.value, str) else N.Number(result.value, 5)
    if N.match(value, golds, tolerant=True, rel_tol=1e-3, scale=True):
        return True, ""
    return False, f"program gives {P.format_number(result.value)}, gold {golds}"


def exe_text_exact(exe_ans: Any) -> str:
    """exe_ans as text that reads back to the same float (the official metric compares exactly)."""
    return exe_ans.strip().lower() if isinstance(exe_ans, str) else repr(float(exe_ans))


def row_from_record(record: Any, where: str) -> D.Row:
    if not isinstance(record, dict):
        raise D.DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    rid = str(D.require(record, "id", where))
    where = f"{where} (id {rid!r})"
    qa = D.require(record, "qa", where)
    if not isinstance(qa, dict):
        raise D.DataError(f"{where}: 'qa' must be an object")
    question = str(D.require(qa, "question", f"{where} qa")).strip()
    program = str(D.require(qa, "program", f"{where} qa"))
    exe_ans = D.finite_gold(D.require(qa, "exe_ans", f"{where} qa"), f"{where} qa")
    answer = str(qa.get("answer") or "").strip()
    text, table = context(record, where)
    exe_text = exe_ans.strip().lower() if isinstance(exe_ans, str) else P.format_number(exe_ans)
    golds = list(dict.fromkeys(g for g in (answer, exe_text) if g))
    ok, reason = program_ok(program, table, golds)
    if not ok:
        log.warning("%s: gold program does not reproduce the gold answer: %s", where, reason)
    target = gold_target(answer, exe_ans)
    return {
        "id": rid,
        "text": text,
        "question": question,
        "label": target,
        "target": target,
        "golds": golds,
        "program": program,
        "program_ok": ok,
        "table": table,
        "exe_ans": exe_text_exact(exe_ans),
    }


def read_raw(root: Path) -> D.Splits:
    out: D.Splits = {}
    paths = {split: D.raw_file(root, "finqa", name) for split, name in RAW_FILES.items()}
    for split, path in paths.items():  # every missing file is named before any is parsed
        records = D.read_json(path)
        if not isinstance(records, list):
            raise D.DataError(f"{path}: expected a JSON list of FinQA records, got {type(records).__name__}")
        out[split] = [row_from_record(r, f"{path}[{i}]") for i, r in enumerate(records)]
        D.require_rows(out[split], path, "FinQA records")
    return out


# The hub copy (rootsautomation/FinQA, README `configs:` data/{train,validation,test}-*) flattens
# `qa` into the record: these are the fields we need from it.
HUB_FIELDS = ("id", "pre_text", "post_text", "table", "question", "answer", "program", "exe_ans")


def _hub_exe_ans(value: Any) -> Any:
    # The copy stores exe_ans as a string ("3.8", "yes"); the upstream JSON has a number.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def read_hub(path: str, revision: str) -> D.Splits:
    # ibm-research/finqa main is script-based (datasets 4 refuses it) with no known parquet branch.
    from finbench.data import hub
    out: D.Splits = {}
    for split, hub_split in (("train", "train"), ("dev", "validation"), ("test", "test")):
        ds = hub.load_dataset(path, revision=revision, split=hub_split)
        hub.require_columns(ds, HUB_FIELDS, f"hub {path}@{revision} {hub_split}")
        rows = []
        for i, rec in enumerate(ds):
            rec = dict(rec)
            rec["qa"] = {
                "question": rec["question"],
                "answer": rec["answer"],
                "program": rec["program"],
                "exe_ans": _hub_exe_ans(rec["exe_ans"]),
            }
            rows.append(row_from_record(rec, f"hub {path}@{revision} {hub_split}[{i}]"))
        out[split] = rows
    return out


make_splits = R.upstream_splits


def load(source, **_):
    return R.load("finqa", source, read_raw, read_hub, make_splits)
