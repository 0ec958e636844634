"""A seeded mutation fuzzer for the raw data files the task loaders read.

Each mutant is one of the project's fixture raw files (FPB, FiQA-SA, TFNS, topics, Headline, FIN5,
FinQA, ConvFinQA) damaged once: text-level (truncated, lines dropped or repeated, garbage or
invalid UTF-8 inserted, a BOM, empty, header only) or, for JSON, a value replaced by a wrong type,
a huge or non-finite number, or a key removed. The file goes into a copy of the data folder used
as FINBENCH_DATA_DIR and the task is loaded through lm-eval (`tasks.load_task`), as `finbench eval`
does. Outcomes: `ok` (loaded), `clean` (a DataError naming the file), `nofile` (a DataError that
names no file), `traceback` (any other exception: a bug), `wrong_ok` (a mutant that must be
refused was loaded: a bug).

Targeted gold mutations (issue 21), each of which must be refused: a FinQA / ConvFinQA `exe_ans`
(and ConvFinQA's `exe_ans_list` entries) set to NaN, Infinity, 1e400 (a JSON literal), "1e400",
null, "abc" or ""; a TAT-QA arithmetic or count answer set to NaN, Infinity, 1e400, "1e400" or
null. Error messages longer than MAX_MESSAGE characters are counted (`long_msg`).

    HF_HUB_OFFLINE=1 python tests/fuzz_data.py --mutants 200 --seed 0
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import random
import re
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from fuzz_configs import _parent, _paths  # one key-path walker for YAML and JSON mutants

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_DATA = ROOT / "tests" / "fixtures" / "data"
FILES = {  # task -> the raw files its loader reads
    "fpb": ["financial_phrasebank/Sentences_50Agree.txt"],
    "fiqa_sa": ["fiqa_sa/task1_headline_ABSA_train.json"],
    "tfns": ["twitter_financial_news_sentiment/sent_valid.csv", "twitter_financial_news_sentiment/sent_train.csv"],
    "twitter_topic": ["twitter_financial_news_topic/topic_valid.csv"],
    "headline": ["headline/gold-dataset-sinha-khandait.csv"],
    "ner": ["finner_sec/FIN5.txt", "finner_sec/FIN3.txt"],
    "finqa": ["finqa/test.json", "finqa/dev.json", "finqa/train.json"],
    "convfinqa": ["convfinqa/dev.json", "convfinqa/train.json"],
    "tatqa": ["tatqa/tatqa_dataset_train.json", "tatqa/tatqa_dataset_dev.json"],
}
MAX_MESSAGE = 300
_LITERAL = "__json_literal__"  # a string replaced by the JSON text after it, unquoted (1e400)
EXE_ANS_BAD: list[Any] = [float("nan"), float("inf"), _LITERAL + "1e400", "1e400", None, "abc", ""]
TATQA_BAD: list[Any] = [float("nan"), float("inf"), -float("inf"), _LITERAL + "1e400", "1e400", None]
JSON_VALUES: list[Any] = [None, "", [], {}, "abc", 0, -1, 1e308, float("inf"), float("nan"), 10**400, True,
                          [1, 2], {"a": 1}, "Infinity", "x" * 1000]


@dataclass
class DataMutant:
    task: str
    file: str
    op: str
    data: bytes
    must_refuse: bool = False


def _dumps(data: Any) -> bytes:
    """JSON as upstream writes it (NaN, Infinity), with `_LITERAL` values written unquoted."""
    text = json.dumps(data)
    return re.sub(rf'"{_LITERAL}([^"]*)"', r"\1", text).encode()


def _gold_sites(task: str, data: Any) -> list[tuple[list, Any, list[Any]]]:
    """(container, key, bad values) of each gold a loader must check, in a parsed data file."""
    sites: list[tuple[list, Any, list[Any]]] = []
    for record in data[:3] if isinstance(data, list) else []:
        if task in ("finqa", "convfinqa") and isinstance(record.get("qa"), dict):
            sites.append((record["qa"], "exe_ans", EXE_ANS_BAD))
        if task == "convfinqa":
            answers = record.get("annotation", {}).get("exe_ans_list") or []
            sites += [(answers, i, EXE_ANS_BAD) for i in range(len(answers))]
        if task == "tatqa":
            sites += [(q, "answer", TATQA_BAD) for q in record.get("questions", [])
                      if q.get("answer_type") in ("arithmetic", "count")]
    return sites


def _gold_mutation(rng: random.Random, task: str, raw: bytes) -> tuple[str, bytes] | None:
    data = json.loads(raw)
    sites = _gold_sites(task, data)
    if not sites:
        return None
    container, key, bad = rng.choice(sites)
    value = rng.choice(bad)
    container[key] = value
    return f"gold {key} = {value!r}".replace(_LITERAL, ""), _dumps(data)


def _text_mutation(rng: random.Random, raw: bytes) -> tuple[str, bytes]:
    lines = raw.splitlines(keepends=True)
    op = rng.choice(("truncate", "drop_lines", "repeat_line", "garbage_line", "bad_utf8", "bom", "empty",
                     "first_line_only", "blank_lines", "tabs_to_commas", "nul_bytes"))
    if op == "truncate":
        return op, raw[:rng.randrange(len(raw) + 1)]
    if op == "drop_lines" and lines:
        keep = [ln for ln in lines if rng.random() > 0.5]
        return op, b"".join(keep)
    if op == "repeat_line" and lines:
        i = rng.randrange(len(lines))
        return op, b"".join(lines[:i + 1] + [lines[i]] * rng.randint(1, 50) + lines[i + 1:])
    if op == "garbage_line" and lines:
        i = rng.randrange(len(lines) + 1)
        junk = rng.choice([b"@@@,,,;;;\n", b"\"unclosed,quote\n", b"only_one_field\n", b"a\tb\tc\td\te\n",
                           b"-DOCSTART- -X- O O\n", b"word B-PER\n", b"1e999 NaN inf\n"])
        return op, b"".join(lines[:i] + [junk] + lines[i:])
    if op == "bad_utf8":
        i = rng.randrange(len(raw) + 1)
        return op, raw[:i] + b"\xff\xfe\xc3(" + raw[i:]
    if op == "bom":
        return op, b"\xef\xbb\xbf" + raw
    if op == "first_line_only" and lines:
        return op, lines[0]
    if op == "blank_lines":
        return op, b"\n\n\n"
    if op == "tabs_to_commas":
        return op, raw.replace(b",", b"\t").replace(b"@", b",")
    if op == "nul_bytes":
        return op, raw.replace(b" ", b"\x00", 3)
    return "empty", b""


def _json_mutation(rng: random.Random, raw: bytes) -> tuple[str, bytes]:
    data = json.loads(raw)
    path = rng.choice(list(_paths(data, list_items=3)))
    parent = _parent(data, path)
    where = ".".join(map(str, path))
    if rng.random() < 0.25:
        del parent[path[-1]]
        return f"delete {where}", json.dumps(data).encode()
    value = rng.choice(JSON_VALUES)
    parent[path[-1]] = value
    return f"{where} = {value!r}"[:80], json.dumps(data).encode()


def mutants(n: int, seed: int) -> list[DataMutant]:
    rng = random.Random(seed)
    tasks = sorted(FILES)
    out = []
    for i in range(n):
        task = tasks[i % len(tasks)]
        file = rng.choice(FILES[task])
        raw = (FIXTURE_DATA / file).read_bytes()
        roll = rng.random()
        gold = _gold_mutation(rng, task, raw) if file.endswith(".json") and roll < 0.3 else None
        if gold:
            out.append(DataMutant(task, file, gold[0], gold[1], must_refuse=True))
            continue
        if file.endswith(".json") and roll < 0.7:
            op, data = _json_mutation(rng, raw)
        else:
            op, data = _text_mutation(rng, raw)
        out.append(DataMutant(task, file, op, data))
    return out


@contextlib.contextmanager
def data_tree() -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="finbench-datafuzz-"))
    env = {"FINBENCH_DATA_DIR": str(tmp / "data"), "FINBENCH_CACHE": str(tmp / "cache")}
    try:
        with mock.patch.dict(os.environ, env):  # restored on exit, unset ones removed
            yield tmp / "data"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_mutant(m: DataMutant, root: Path) -> tuple[str, str]:
    from finbench.data import tasks as T
    from finbench.data.raw import DataError

    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(FIXTURE_DATA, root, ignore=shutil.ignore_patterns("*.parquet", "*.py"))
    target = root / m.file
    target.write_bytes(m.data)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            T.load_task(m.task)
    except DataError as error:
        msg = str(error)
        return ("clean" if Path(m.file).name in msg or str(root) in msg else "nofile"), msg
    except Exception as error:  # noqa: BLE001  # anything else reaches the user as a traceback
        return "traceback", f"{type(error).__name__}: {error}"[:300] + "\n" + traceback.format_exc(limit=-3)
    return ("wrong_ok" if m.must_refuse else "ok"), ""


def fuzz(n: int, seed: int, *, verbose: bool = False, log=print) -> tuple[Counter, list[str]]:
    counts: Counter = Counter()
    bugs: list[str] = []
    logging.disable(logging.WARNING)
    try:
        with data_tree() as root:
            for i, m in enumerate(mutants(n, seed)):
                outcome, note = run_mutant(m, root)
                counts[outcome] += 1
                if outcome in ("clean", "nofile") and len(note) > MAX_MESSAGE:
                    counts["long_msg"] += 1
                    log(f"[{i}] long message ({len(note)} characters): {m.task} {m.file} {m.op}: {note[:200]}")
                note = note if outcome == "traceback" else note[:300]
                line = f"[{i}] {outcome}: {m.task} {m.file} {m.op}: {note.splitlines()[0] if note else ''}"
                if outcome in ("traceback", "nofile", "wrong_ok"):
                    bugs.append(line if outcome == "nofile" else f"{line}\n{note}")
                if verbose or outcome in ("traceback", "nofile", "wrong_ok"):
                    log(line)
    finally:
        logging.disable(logging.NOTSET)
    return counts, bugs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mutants", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    start = time.time()
    counts, bugs = fuzz(args.mutants, args.seed, verbose=args.verbose)
    shown = " ".join(f"{k}={counts.get(k, 0)}" for k in ("ok", "clean", "nofile", "traceback", "wrong_ok", "long_msg"))
    print(f"data fuzz (seed {args.seed}): {args.mutants} mutants: {shown} in {time.time() - start:.0f} s")
    return 1 if counts["traceback"] or counts["nofile"] or counts["wrong_ok"] else 0


if __name__ == "__main__":
    sys.exit(main())
