"""Headline: each gold-news headline asks one yes/no question per question type.

Splits are made over headlines (test 20%, dev 10% of the rest, seed 42) before the questions are
expanded, so no headline is in two splits. The metric groups items by question type (`group`):
`score` is the mean over types of weighted F1, as BloombergGPT reported it.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from finbench.data import raw as D
from finbench.data import readers as R

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
    train, dev, test = R.split_by_text(upstream["train"])
    return {name: expand(rows, questions) for name, rows in (("train", train), ("dev", dev), ("test", test))}


def load(labels, synonyms, source, questions, **_):
    by_question = partial(make_splits, questions=questions)
    return R.load("headline", source, read_raw, read_hub, by_question, labels, synonyms, bind={"questions": questions})


# --- headline_fingpt: FinGPT's own test split, read from the hub --------------------------------
# FinGPT/fingpt-headline `test` (columns instruction, input, output): 20,547 rows, nine questions per
# headline, made from the last 20% of the raw file's rows by FinGPT's data/prepare_data.ipynb. The
# rows and labels are FinGPT's (its "price or not" label is the "Price Direction Constant" column);
# only our prompt, parser and metric apply.
FINGPT_COLUMNS = ("instruction", "input", "output")


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


def load_fingpt(labels, synonyms, source, questions, instruction_suffix, **_):
    read = partial(read_fingpt_test, questions=questions, instruction_suffix=instruction_suffix)
    return R.load_test_only("headline_fingpt", source, read, labels, synonyms)
