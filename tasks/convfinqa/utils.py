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
from functools import partial
from pathlib import Path
from typing import Any

from eval_plugins import finqa_program as P
from eval_plugins import numeric as N
from finbench.core.validate import short
from finbench.data import raw as D
from finbench.data import readers as R

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
    where = f"{where} (id {short(cid)})"
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
    for qkey in ("qa", "qa_0", "qa_1"):  # the record's own question(s): their gold checked as FinQA's
        qa = record.get(qkey)
        if isinstance(qa, dict) and "exe_ans" in qa:
            D.finite_gold(qa["exe_ans"], f"{where} {qkey}")
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
                # exact, for the official exe_acc (eval_plugins.finqa_metrics)
                "exe_ans": exe_ans.strip().lower() if isinstance(exe_ans, str) else repr(float(exe_ans)),
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


def conversations_from_turns(entries: Any, where: str) -> list[dict]:
    """Turn-level entries (one per turn, each repeating its conversation) -> conversation records.

    AdaptLLM/ConvFinQA serves the official turn-level files: id `<conversation>_<turn>`, the page
    (pre_text, table, post_text) and the whole conversation's `annotation.dialogue_break`, plus the
    turn's `turn_ind`, `cur_program` and `exe_ans`. Read as conversations they would repeat each
    conversation once per turn; grouped, each turn is one row, as from the raw files.
    """
    groups: dict[str, dict[int, dict]] = {}
    for i, entry in enumerate(entries):
        here = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise D.DataError(f"{here}: expected a JSON object, got {type(entry).__name__}")
        tid = str(D.require(entry, "id", here))
        cid, sep, suffix = tid.rpartition("_")
        ann = D.require(entry, "annotation", f"{here} (id {tid!r})")
        turn = ann.get("turn_ind") if isinstance(ann, dict) else None
        if not sep or not isinstance(turn, int) and not suffix.isdigit():
            raise D.DataError(f"{here}: id {tid!r} is not '<conversation>_<turn>' and has no annotation.turn_ind")
        turn = turn if isinstance(turn, int) else int(suffix)
        if turn in groups.setdefault(cid, {}):
            raise D.DataError(f"{here}: conversation {cid!r} turn {turn} appears twice")
        groups[cid][turn] = entry
    records = []
    for cid, turns in groups.items():
        first = turns[min(turns)]
        ann = first["annotation"]
        questions = D.require(ann, "dialogue_break", f"{where} conversation {cid!r} annotation")
        if sorted(turns) != list(range(len(questions))):
            raise D.DataError(
                f"{where}: conversation {cid!r} has turns {sorted(turns)} but {len(questions)} questions"
            )
        programs = [D.require(turns[t]["annotation"], "cur_program", f"{where} {cid}_{t}") for t in sorted(turns)]
        answers = [D.require(turns[t]["annotation"], "exe_ans", f"{where} {cid}_{t}") for t in sorted(turns)]
        record = {k: first.get(k) for k in ("pre_text", "post_text", "table", "table_ori", "filename")}
        record["id"] = cid
        record["annotation"] = {"dialogue_break": questions, "turn_program": programs, "exe_ans_list": answers}
        records.append(record)
    return records


def read_hub(path: str, revision: str) -> D.Splits:
    # README `configs:` train -> train_turn.json (11,104 turns), validation -> dev_turn.json (1,490).
    from finbench.data import hub
    out: D.Splits = {}
    for split, hub_split in (("train", "train"), ("dev", "validation")):
        ds = hub.load_dataset(path, revision=revision, split=hub_split)
        hub.require_columns(ds, ("id", "pre_text", "post_text", "table", "annotation"), f"hub {path}@{revision} {hub_split}")
        where = f"hub {path}@{revision} {hub_split}"
        out[split] = read_records(conversations_from_turns([dict(r) for r in ds], where), where)
    return out


def make_splits(upstream: D.Splits, dev_fraction: float = 0.1) -> D.Splits:
    train, dev = D.split_grouped(upstream["train"], "conversation", dev_fraction, seed=42)
    return {"train": train, "dev": dev, "test": list(upstream["dev"])}


def load(source, dev_fraction=0.1, **_):
    splits = partial(make_splits, dev_fraction=float(dev_fraction))
    return R.load("convfinqa", source, read_raw, read_hub, splits)
