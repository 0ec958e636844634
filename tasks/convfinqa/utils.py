"""ConvFinQA: upstream conversation records (FinQA record + `annotation` with dialogue_break,
turn_program, exe_ans_list) expanded into one row per turn.

A turn's prompt holds the page (pre-text, table, post-text), then the earlier questions of the
conversation with their GOLD answers (teacher forcing, as in the official turn-level files), then
the current question. Gold = that turn's exe_ans; its turn_program is checked with the safe
interpreter (`program_ok`). Splits: train.json -> train minus a held-out 10% of conversations
(dev); dev.json -> test (it is what published ConvFinQA numbers are computed on).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from eval_plugins import finqa_program as P
from eval_plugins import numeric as N
from finbench import data as D

log = logging.getLogger(__name__)
RAW_FILES = {"train": "train.json", "dev": "dev.json"}


def _context(record: dict, where: str) -> tuple[str, list[list[str]]]:
    """(pre-text, table, post-text rendered as prompt text; the table as rows of strings)."""
    try:
        return P.render_context(record, where)
    except ValueError as err:
        raise D.DataError(str(err)) from err


def turns_from_record(record: Any, where: str) -> list[D.Row]:
    """One row per turn of a conversation record."""
    if not isinstance(record, dict):
        raise D.DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    cid = str(D.require(record, "id", where))
    where = f"{where} (id {cid!r})"
    ann = D.require(record, "annotation", where)
    questions = D.require(ann, "dialogue_break", f"{where} annotation")
    programs = D.require(ann, "turn_program", f"{where} annotation")
    answers = D.require(ann, "exe_ans_list", f"{where} annotation")
    if not (isinstance(questions, list) and isinstance(programs, list) and isinstance(answers, list)):
        raise D.DataError(f"{where}: annotation dialogue_break/turn_program/exe_ans_list must be lists")
    if not (len(questions) == len(programs) == len(answers)) or not questions:
        raise D.DataError(
            f"{where}: annotation lists differ in length or are empty: "
            f"dialogue_break {len(questions)}, "
            f"turn_program {len(programs)}, exe_ans_list {len(answers)}"
        )
    text, table = _context(record, where)
    rows, history = [], []
    for turn, (question, program, exe_ans) in enumerate(zip(questions, programs, answers, strict=True)):
        D.finite_gold(exe_ans, f"{where} exe_ans_list[{turn}]")
        gold = P.format_number(float(exe_ans) if not isinstance(exe_ans, str) else exe_ans)
        ok, reason = _program_ok(str(program), table, gold)
        if not ok:
            log.warning(
                "%s turn %d: gold program does not reproduce the gold answer: %s",
                where,
                turn,
                reason,
            )
        rows.append(
            {
                "id": f"{cid}#{turn}",
                "conversation": cid,
                "turn": turn,
                "text": text,
                "history": "".join(f"Question: {q}\nAnswer: {a}\n" for q, a in history),
                "question": str(question).strip(),
                "label": gold,
                "target": gold,
                "golds": [gold],
                "program": str(program),
                "program_ok": ok,
                "table": table,
            }
        )
        history.append((str(question).strip(), gold))
    return rows


def _program_ok(program: str, table: list[list[str]], gold: str) -> tuple[bool, str]:
    try:
        result = P.execute(program, table)
    except P.ProgramError as err:
        return False, str(err)
    value = result.value if isinstance(result.value, str) else N.Number(result.value, 5)
    if N.match(value, [gold], tolerant=True, rel_tol=1e-3, scale=True):
        return True, ""
    return False, f"program gives {P.format_number(result.value)}, gold {gold}"


def read_records(records: Any, where: str) -> list[D.Row]:
    if not isinstance(records, list):
        raise D.DataError(f"{where}: expected a JSON list of conversations, got {type(records).__name__}")
    return [row for i, rec in enumerate(records) for row in turns_from_record(rec, f"{where}[{i}]")]


def read_raw(root: Path) -> D.Splits:
    out: D.Splits = {}
    paths = {split: D.raw_file(root, "convfinqa", name) for split, name in RAW_FILES.items()}
    for split, path in paths.items():
        out[split] = read_records(D.read_json(path), str(path))
        D.require_rows(out[split], path, "conversations")
    # dev is a held-out share of train's conversations: one conversation cannot be split.
    if len({row["conversation"] for row in out["train"]}) < 2:
        raise D.DataError(
            f"{paths['train']}: only one conversation; at least "
            "2 are needed to hold out a dev split"
        )
    return out


def read_hub(path: str, revision: str) -> D.Splits:
    # Expects conversation records in the upstream schema (not verifiable offline).
    import datasets

    return {
        split: read_records(
            [dict(r) for r in datasets.load_dataset(path, revision=revision, split=hub)],
            f"hub {path} {hub}",
        )
        for split, hub in (("train", "train"), ("dev", "validation"))
    }


def make_splits(upstream: D.Splits, dev_fraction: float = 0.1) -> D.Splits:
    train, dev = D.split_grouped(upstream["train"], "conversation", dev_fraction, seed=42)
    return {"train": train, "dev": dev, "test": list(upstream["dev"])}


def load(source, dev_fraction=0.1, **_):
    return D.build_dataset(
        "convfinqa",
        read_raw=read_raw,
        read_hub=read_hub,
        make_splits=lambda up: make_splits(up, float(dev_fraction)),
        hub=source["hub"],
    )
