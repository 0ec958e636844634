"""A seeded mutation fuzzer for the raw data files the task loaders read (issue 13).

Each mutant is one of the project's fixture raw files (FPB, FiQA-SA, TFNS, topics, Headline, FIN5,
FinQA, ConvFinQA) damaged once: text-level (truncated, lines dropped or repeated, garbage or
invalid UTF-8 inserted, a BOM, empty, header only) or, for JSON, a value replaced by a wrong type,
a huge or non-finite number, or a key removed. The file goes into a copy of the data folder used
as FINBENCH_DATA_DIR and the task is loaded through lm-eval (`tasks.load_task`), as `finbench eval`
does. Outcomes: `ok` (loaded), `clean` (a DataError naming the file), `nofile` (a DataError that
names no file), `traceback` (any other exception: a bug).

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
}
JSON_VALUES: list[Any] = [None, "", [], {}, "abc", 0, -1, 1e308, float("inf"), float("nan"), 10**400, True,
                          [1, 2], {"a": 1}, "Infinity", "x" * 1000]


@dataclass
class DataMutant:
    task: str
    file: str
    op: str
    data: bytes


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
        if file.endswith(".json") and rng.random() < 0.6:
            op, data = _json_mutation(rng, raw)
        else:
            op, data = _text_mutation(rng, raw)
        out.append(DataMutant(task, file, op, data))
    return out


@contextlib.contextmanager
def data_tree() -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="finbench-datafuzz-"))
    saved = {k: os.environ.get(k) for k in ("FINBENCH_DATA_DIR", "FINBENCH_CACHE")}
    os.environ["FINBENCH_DATA_DIR"] = str(tmp / "data")
    os.environ["FINBENCH_CACHE"] = str(tmp / "cache")
    try:
        yield tmp / "data"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(tmp, ignore_errors=True)


def run_mutant(m: DataMutant, root: Path) -> tuple[str, str]:
    from finbench import tasks as T
    from finbench.data import DataError

    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(FIXTURE_DATA, root, ignore=shutil.ignore_patterns("*.parquet", "*.py"))
    target = root / m.file
    target.write_bytes(m.data)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            T.load_task(m.task)
    except DataError as error:
        msg = str(error)
        return ("clean" if Path(m.file).name in msg or str(root) in msg else "nofile"), msg[:300]
    except Exception as error:  # noqa: BLE001  # anything else reaches the user as a traceback
        return "traceback", f"{type(error).__name__}: {error}"[:300] + "\n" + traceback.format_exc(limit=-3)
    return "ok", ""


def fuzz(n: int, seed: int, *, verbose: bool = False, log=print) -> tuple[Counter, list[str]]:
    counts: Counter = Counter()
    bugs: list[str] = []
    logging.disable(logging.WARNING)
    try:
        with data_tree() as root:
            for i, m in enumerate(mutants(n, seed)):
                outcome, note = run_mutant(m, root)
                counts[outcome] += 1
                line = f"[{i}] {outcome}: {m.task} {m.file} {m.op}: {note.splitlines()[0] if note else ''}"
                if outcome in ("traceback", "nofile"):
                    bugs.append(line if outcome == "nofile" else f"{line}\n{note}")
                if verbose or outcome in ("traceback", "nofile"):
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
    shown = " ".join(f"{k}={counts.get(k, 0)}" for k in ("ok", "clean", "nofile", "traceback"))
    print(f"data fuzz (seed {args.seed}): {args.mutants} mutants: {shown} in {time.time() - start:.0f} s")
    return 1 if counts["traceback"] or counts["nofile"] else 0


if __name__ == "__main__":
    sys.exit(main())
