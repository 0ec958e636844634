"""Twitter Financial News Topic: `text,label` CSVs with label ids 0..19; test = upstream validation."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from finbench.data import raw as D


def _rows(path: Path, records, prefix: str, labels: list[str]) -> list[D.Row]:
    rows = []
    for n, rec in enumerate(records):
        raw = str(rec["label"]).strip()
        if not raw.isdigit() or int(raw) >= len(labels):
            raise D.DataError(f"{path}: row {n + 1}: label {raw!r}, expected an id in 0..{len(labels) - 1}")
        rows.append({"id": f"{prefix}-{n:05d}", "text": str(rec["text"]).strip(), "label": labels[int(raw)]})
    return rows


def read_raw(root: Path, labels: list[str]) -> D.Splits:
    out = {}
    for split, name in (("train", "topic_train.csv"), ("validation", "topic_valid.csv")):
        path = D.raw_file(root, "twitter_financial_news_topic", name)
        out[split] = _rows(path, D.read_csv(path, required=("text", "label")), f"topic-{split}", labels)
        D.require_rows(out[split], path, "rows")
    return out


def read_hub(path: str, revision: str, labels: list[str]) -> D.Splits:
    # main: topic_train.csv, topic_valid.csv (split names inferred from the file names).
    from finbench.data import hub
    ds = hub.load_dataset(path, revision=revision)
    out = {}
    for split in ("train", "validation"):
        if split not in ds:
            raise D.DataError(f"hub {path}@{revision}: no split {split!r} (found {sorted(ds)})")
        hub.require_columns(ds[split], ("text", "label"), f"hub {path}@{revision} {split}")
        out[split] = _rows(Path(path), ds[split], f"topic-{split}", labels)
    return out


def make_splits(upstream: D.Splits) -> D.Splits:
    # Like TFNS: no upstream test split, report on validation; dev = 10% of train (seed 42).
    train, dev = D.seeded_split(upstream["train"], 0.1, seed=42)
    return {"train": train, "dev": dev, "test": upstream["validation"]}


def load(labels, synonyms, source, **_):
    return D.build_dataset(
        "twitter_topic",
        read_raw=partial(read_raw, labels=labels),
        read_hub=partial(read_hub, labels=labels),
        make_splits=make_splits,
        labels=labels,
        synonyms=synonyms,
        hub=source["hub"],
    )
