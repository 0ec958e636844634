"""Twitter Financial News Sentiment: `text,label` CSVs; test = the upstream validation file."""

from __future__ import annotations

from pathlib import Path

from finbench.data import raw as D

# The dataset card's map. Do not reuse FPB's map: that swaps Bullish and Neutral.
LABELS = {"0": "negative", "1": "positive", "2": "neutral"}


def _rows(path: Path, records, prefix: str) -> list[D.Row]:
    rows = []
    for n, rec in enumerate(records):
        label = str(rec["label"]).strip()
        if label not in LABELS:
            raise D.DataError(f"{path}: row {n + 1}: label {label!r}, expected one of {sorted(LABELS)}")
        rows.append({"id": f"{prefix}-{n:05d}", "text": str(rec["text"]).strip(), "label": LABELS[label]})
    return rows


def read_raw(root: Path) -> D.Splits:
    out = {}
    for split, name in (("train", "sent_train.csv"), ("validation", "sent_valid.csv")):
        path = D.raw_file(root, "twitter_financial_news_sentiment", name)
        out[split] = _rows(path, D.read_csv(path, required=("text", "label")), f"tfns-{split}")
        D.require_rows(out[split], path, "rows")
    return out


def read_hub(path: str, revision: str) -> D.Splits:
    # main: sent_train.csv, sent_valid.csv (split names inferred from the file names).
    from finbench.data import hub
    ds = hub.load_dataset(path, revision=revision)
    out = {}
    for split in ("train", "validation"):
        if split not in ds:
            raise D.DataError(f"hub {path}@{revision}: no split {split!r} (found {sorted(ds)})")
        hub.require_columns(ds[split], ("text", "label"), f"hub {path}@{revision} {split}")
        out[split] = _rows(Path(path), ds[split], f"tfns-{split}")
    return out


def make_splits(upstream: D.Splits) -> D.Splits:
    # No upstream test split: everyone reports on validation. Dev = 10% of train (seed 42).
    train, dev = D.seeded_split(upstream["train"], 0.1, seed=42)
    return {"train": train, "dev": dev, "test": upstream["validation"]}


def load(labels, synonyms, source, **_):
    return D.build_dataset(
        "tfns",
        read_raw=read_raw,
        read_hub=read_hub,
        make_splits=make_splits,
        labels=labels,
        synonyms=synonyms,
        hub=source["hub"],
    )
