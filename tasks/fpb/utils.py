"""Financial PhraseBank: `sentence@label` lines; FinGPT's split (75/25, seed 42) plus a dev split."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from finbench import data as D

HUB_LABELS = ("negative", "neutral", "positive")  # takala/financial_phrasebank ClassLabel order


def read_raw(root: Path, agree: str = "50") -> D.Splits:
    path = D.raw_file(root, "financial_phrasebank", f"Sentences_{agree}Agree.txt")
    try:  # the 50/66/75 files are ISO-8859-1 upstream; some copies were re-encoded to UTF-8
        lines = path.read_bytes().decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        lines = D.read_lines(path, encoding="iso-8859-1")
    rows = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        text, sep, label = line.rpartition("@")
        if not sep or label.strip() not in HUB_LABELS:
            raise D.DataError(
                f"{path}:{n}: expected 'sentence@label' with label in {list(HUB_LABELS)}, got {line[:80]!r}"
            )
        rows.append({"id": f"fpb{agree}-{len(rows):05d}", "text": text.strip(), "label": label.strip()})
    D.require_rows(rows, path, "'sentence@label' lines")
    return {"train": rows}


def _hub_label(value, where: str) -> str:
    # The parquet branch keeps the ClassLabel feature (ints); a plain copy may hold the names.
    if isinstance(value, int) and 0 <= value < len(HUB_LABELS):
        return HUB_LABELS[value]
    if isinstance(value, str) and value.strip() in HUB_LABELS:
        return value.strip()
    raise D.DataError(f"{where}: label {value!r}, expected an id into {list(HUB_LABELS)} or a name")


def read_hub(path: str, revision: str, agree: str = "50") -> D.Splits:
    # Main is script-based; the parquet branch is a plain tree `sentences_{50,66,75,all}agree/train/`
    # whose only config is `default`: select the agreement folder, never merge the four.
    from finbench import hub

    folder = f"sentences_{agree.lower()}agree"
    ds = hub.load_dataset(path, revision=revision, data_dir=folder, split="train")
    hub.require_columns(ds, ("sentence", "label"), f"hub {path}@{revision} {folder}")
    return {
        "train": [
            {
                "id": f"fpb{agree}-{i:05d}",
                "text": r["sentence"].strip(),
                "label": _hub_label(r["label"], f"hub {path} {folder}/train[{i}]"),
            }
            for i, r in enumerate(ds)
        ]
    }


def make_splits(upstream: D.Splits) -> D.Splits:
    # FinGPT: train_test_split(test_size=0.25, seed=42) on sentences_50agree; dev = 10% of train.
    rest, test = D.seeded_split(upstream["train"], 0.25, seed=42)
    train, dev = D.seeded_split(rest, 0.1, seed=42)
    return {"train": train, "dev": dev, "test": test}


def load(labels, synonyms, source, agree=50, **_):
    agree = str(agree)
    return D.build_dataset(
        "fpb",
        read_raw=partial(read_raw, agree=agree),
        read_hub=partial(read_hub, agree=agree),
        make_splits=make_splits,
        labels=labels,
        synonyms=synonyms,
        hub=source["hub"],
    )
