"""Twitter Financial News Sentiment: `text,label` CSVs; test = the upstream validation file."""

from __future__ import annotations

from pathlib import Path

from finbench.data import raw as D
from finbench.data import readers as R

# The dataset card's map. Do not reuse FPB's map: that swaps Bullish and Neutral.
LABELS = {"0": "negative", "1": "positive", "2": "neutral"}
EXPECTED = f"one of {sorted(LABELS)}"
FOLDER = "twitter_financial_news_sentiment"
FILES = {"train": "sent_train.csv", "validation": "sent_valid.csv"}


def _rows(path: Path, records, prefix: str) -> list[D.Row]:
    return R.text_label_rows(path, records, prefix, LABELS.get, EXPECTED)


def read_raw(root: Path) -> D.Splits:
    return R.read_csv_splits(root, FOLDER, FILES, "tfns", LABELS.get, EXPECTED)


def read_hub(path: str, revision: str) -> D.Splits:
    # main: sent_train.csv, sent_valid.csv (split names inferred from the file names).
    return R.read_hub_splits(path, revision, tuple(FILES), "tfns", LABELS.get, EXPECTED)


make_splits = R.validation_as_test


def load(labels, synonyms, source, **_):
    return R.load("tfns", source, read_raw, read_hub, make_splits, labels, synonyms)
