"""Twitter Financial News Topic: `text,label` CSVs with label ids 0..19; test = upstream validation."""

from __future__ import annotations

from pathlib import Path

from finbench.data import raw as D
from finbench.data import readers as R

FOLDER = "twitter_financial_news_topic"
FILES = {"train": "topic_train.csv", "validation": "topic_valid.csv"}


def _label_of(labels: list[str]):
    """A label id cell ("0".."19") -> `labels[id]` (the YAML's list, in id order), else None."""
    return lambda cell: labels[int(cell)] if cell.isdigit() and int(cell) < len(labels) else None


def _expected(labels: list[str]) -> str:
    return f"an id in 0..{len(labels) - 1}"


def read_raw(root: Path, labels: list[str]) -> D.Splits:
    return R.read_csv_splits(root, FOLDER, FILES, "topic", _label_of(labels), _expected(labels))


def read_hub(path: str, revision: str, labels: list[str]) -> D.Splits:
    # main: topic_train.csv, topic_valid.csv (split names inferred from the file names).
    return R.read_hub_splits(path, revision, tuple(FILES), "topic", _label_of(labels), _expected(labels))


make_splits = R.validation_as_test  # like TFNS


def load(labels, synonyms, source, **_):
    return R.load("twitter_topic", source, read_raw, read_hub, make_splits, labels, synonyms, bind={"labels": labels})
