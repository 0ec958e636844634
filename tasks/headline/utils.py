"""Headline: each gold-news headline asks one yes/no question per question type.

Splits are made over headlines (test 20%, dev 10% of the rest, seed 42) before the questions are
expanded, so no headline is in two splits. The metric groups items by question type (`group`):
`score` is the mean over types of weighted F1, as BloombergGPT reported it.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from finbench.data import raw as D

FOLDER, FILE = "headline", "gold-dataset-sinha-khandait.csv"


def _headlines(path: Path, records, columns: list[str]) -> list[D.Row]:
    rows = []
    for n, rec in enumerate(records):
        flags = {}
        for col in columns:
            value = str(rec.get(col, "")).strip()
            if value not in ("0", "1"):
                raise D.DataError(f"{path}: row {n + 2}: column {col!r} is {value!r}, expected 0 or 1")
            flags[col] = value == "1"
        text = str(rec.get("News", "")).strip().strip('"').strip()
        rows.append({"hid": f"headline-{n:05d}", "text": text, "flags": flags})
    return rows


def _columns(questions: dict) -> list[str]:
    return sorted({col for _, cols in questions.values() for col in cols})


def read_raw(root: Path, questions: dict) -> D.Splits:
    path = D.raw_file(root, FOLDER, FILE)
    columns = _columns(questions)
    # Tab-separated despite the .csv name.
    records = D.read_csv(path, delimiter="\t", required=("News", *columns))
    headlines = _headlines(path, records, columns)
    D.require_rows(headlines, path, "headline rows")
    return {"train": headlines}


def read_hub(path: str, revision: str, questions: dict) -> D.Splits:
    # SaguaroCapital/sentiment-analysis-in-commodity-market-gold: the raw columns (News, the 0/1
    # flag columns as int64), data/train-* 8,456 + data/test-* 2,114 = 10,570 headlines. Both
    # splits are pooled and re-split by headline, as the raw file is.
    from finbench.data import hub
    columns = _columns(questions)
    records = []
    for split in ("train", "test"):
        ds = hub.load_dataset(path, revision=revision, split=split)
        hub.require_columns(ds, ("News", *columns), f"hub {path}@{revision} {split}")
        records.extend(ds)
    return {"train": _headlines(Path(path), records, columns)}


def expand(headlines: list[D.Row], questions: dict) -> list[D.Row]:
    rows = []
    for h in headlines:
        for qtype, (question, cols) in questions.items():
            yes = any(h["flags"][c] for c in cols)
            rows.append(
                {
                    "id": f"{h['hid']}-{qtype}",
                    "text": h["text"],
                    "question": question,
                    "group": qtype,
                    "label": "yes" if yes else "no",
                }
            )
    return rows


def make_splits(upstream: D.Splits, questions: dict) -> D.Splits:
    rest, test = D.split_grouped(upstream["train"], "text", 0.2, seed=42)
    train, dev = D.split_grouped(rest, "text", 0.1, seed=42)
    return {name: expand(rows, questions) for name, rows in (("train", train), ("dev", dev), ("test", test))}


def load(labels, synonyms, source, questions, **_):
    return D.build_dataset(
        "headline",
        read_raw=partial(read_raw, questions=questions),
        read_hub=partial(read_hub, questions=questions),
        make_splits=partial(make_splits, questions=questions),
        labels=labels,
        synonyms=synonyms,
        hub=source["hub"],
    )


# --- headline_fingpt: FinGPT's own test split, read from the hub --------------------------------
# FinGPT/fingpt-headline `test` (columns instruction, input, output): 20,547 rows, nine questions per
# headline, made from the last 20% of the raw file's rows by FinGPT's data/prepare_data.ipynb. The
# rows and labels are FinGPT's (its "price or not" label is the "Price Direction Constant" column);
# only our prompt, parser and metric apply.
FINGPT_COLUMNS = ("instruction", "input", "output")


def _no_raw(root: Path, *, task: str, repo: str) -> D.Splits:
    raise D.DataError(
        f"task {task!r} scores FinGPT's test split, read only from the hub dataset {repo} (no raw "
        f"file gives it); unset {D.DATA_DIR_ENV} and use the hub or FINBENCH_HUB_MIRROR=DIR"
    )


def read_fingpt_test(path: str, revision: str, questions: dict, instruction_suffix: str) -> D.Splits:
    from finbench.data import hub
    where = f"hub {path}@{revision} test"
    ds = hub.load_dataset(path, revision=revision, split="test")
    hub.require_columns(ds, FINGPT_COLUMNS, where)
    qtype_of = {question: qtype for qtype, question in questions.items()}
    rows = []
    for i, rec in enumerate(ds):
        instruction = str(rec["instruction"] or "").strip()
        question = instruction.removesuffix(instruction_suffix).strip()
        if question not in qtype_of:
            raise D.DataError(
                f"{where}: row {i}: instruction {instruction!r} is not one of FinGPT's headline "
                f"questions (metadata.questions) followed by {instruction_suffix!r}"
            )
        answer = str(rec["output"] or "").strip().lower()
        if answer not in ("yes", "no"):
            raise D.DataError(f"{where}: row {i}: output {rec['output']!r}, expected Yes or No")
        rows.append(
            {
                "id": f"fingpt-headline-test-{i:05d}",
                "text": str(rec["input"] or "").strip(),
                "question": question,
                "group": qtype_of[question],
                "label": answer,
            }
        )
    return {"test": rows}


def keep_test_only(upstream: D.Splits) -> D.Splits:
    return {"train": [], "dev": [], "test": upstream["test"]}


def load_fingpt(labels, synonyms, source, questions, instruction_suffix, **_):
    hub_source = source["hub"]
    return D.build_dataset(
        "headline_fingpt",
        read_raw=partial(_no_raw, task="headline_fingpt", repo=hub_source["path"]),
        read_hub=partial(read_fingpt_test, questions=questions, instruction_suffix=instruction_suffix),
        make_splits=keep_test_only,
        labels=labels,
        synonyms=synonyms,
        hub=hub_source,
    )
