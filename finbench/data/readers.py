"""Reading code that several task folders share: one upstream shape, read one way.

A task's `utils.py` keeps what is its own (file names, label maps, row fields) and calls these for
what is the same across tasks: `load` (lm-eval's `custom_dataset`, from the task's YAML metadata),
the `text,label` CSV pairs of the Twitter Financial News datasets, the usual ways of splitting, and
the test-only variants that score a peer's published test split.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from finbench.data import raw as D

Reader = Callable[..., D.Splits]
LabelOf = Callable[[str], str | None]  # a raw `label` cell -> the label word, None when not one


def load(
    task: str,
    source: Mapping[str, Any],
    read_raw: Reader,
    read_hub: Reader,
    make_splits: Callable[[D.Splits], D.Splits],
    labels: Sequence[str] = (),
    synonyms: Mapping[str, str] | None = None,
    bind: Mapping[str, Any] | None = None,
):
    """A task's DatasetDict from what lm-eval passes `custom_dataset` (the YAML `metadata`).

    `bind`: keyword arguments both readers take (e.g. FPB's agreement level, FiQA's thresholds).
    """
    bound = dict(bind or {})
    return D.build_dataset(
        task,
        read_raw=partial(read_raw, **bound),
        read_hub=partial(read_hub, **bound),
        make_splits=make_splits,
        labels=labels,
        synonyms=synonyms,
        hub=source["hub"],
    )


# --- `text,label` pairs: Twitter Financial News Sentiment and Topic ---------------------------------


def text_label_rows(path: Path, records: Iterable[Any], prefix: str, label_of: LabelOf, expected: str) -> list[D.Row]:
    """One row per record (`text`, `label`), ids `{prefix}-00000`...; a bad label names the row."""
    rows = []
    for n, rec in enumerate(records):
        cell = str(rec["label"]).strip()
        label = label_of(cell)
        if label is None:
            raise D.DataError(f"{path}: row {n + 1}: label {cell!r}, expected {expected}")
        rows.append({"id": f"{prefix}-{n:05d}", "text": str(rec["text"]).strip(), "label": label})
    return rows


def read_csv_splits(
    root: Path, folder: str, files: Mapping[str, str], prefix: str, label_of: LabelOf, expected: str
) -> D.Splits:
    """{split: rows} from one `text,label` CSV per upstream split under `root/folder/`."""
    out = {}
    for split, name in files.items():
        path = D.raw_file(root, folder, name)
        records = D.read_csv(path, required=("text", "label"))
        out[split] = text_label_rows(path, records, f"{prefix}-{split}", label_of, expected)
        D.require_rows(out[split], path, "rows")
    return out


def read_hub_splits(
    path: str, revision: str, splits: Sequence[str], prefix: str, label_of: LabelOf, expected: str
) -> D.Splits:
    """The same rows from the hub copy, whose splits are named after the CSV files."""
    from finbench.data import hub

    ds = hub.load_dataset(path, revision=revision)
    out = {}
    for split in splits:
        if split not in ds:
            raise D.DataError(f"hub {path}@{revision}: no split {split!r} (found {sorted(ds)})")
        hub.require_columns(ds[split], ("text", "label"), f"hub {path}@{revision} {split}")
        out[split] = text_label_rows(Path(path), ds[split], f"{prefix}-{split}", label_of, expected)
    return out


# --- splits ------------------------------------------------------------------------------------


def upstream_splits(upstream: D.Splits) -> D.Splits:
    """The upstream train/dev/test as they are (FinQA, TAT-QA)."""
    return {split: list(upstream[split]) for split in D.SPLITS}


def validation_as_test(upstream: D.Splits) -> D.Splits:
    """No upstream test split: report on validation, as everyone does; dev = 10% of train (seed 42)."""
    train, dev = D.seeded_split(upstream["train"], 0.1, seed=42)
    return {"train": train, "dev": dev, "test": upstream["validation"]}


def split_by_text(rows: list[D.Row]) -> tuple[list[D.Row], list[D.Row], list[D.Row]]:
    """(train, dev, test): test 20% (seed 42), dev 10% of the rest; one text never in two splits."""
    rest, test = D.split_grouped(rows, "text", 0.2, seed=42)
    train, dev = D.split_grouped(rest, "text", 0.1, seed=42)
    return train, dev, test


# --- test-only variants: a peer's published test split, read from the hub -------------------------


def hub_only(root: Path, *, task: str, repo: str) -> D.Splits:
    """`read_raw` of a task no raw file gives: a DataError saying where its rows come from."""
    raise D.DataError(
        f"task {task!r} scores FinGPT's test split, read only from the hub dataset {repo} (no raw "
        f"file gives it); unset {D.DATA_DIR_ENV} and use the hub or FINBENCH_HUB_MIRROR=DIR"
    )


def keep_test_only(upstream: D.Splits) -> D.Splits:
    return {"train": [], "dev": [], "test": upstream["test"]}


def load_test_only(
    task: str,
    source: Mapping[str, Any],
    read_hub: Reader,
    labels: Sequence[str] = (),
    synonyms: Mapping[str, str] | None = None,
):
    """`load` for a variant scored on a peer's test split only (no train or dev rows, no raw files)."""
    no_raw = partial(hub_only, task=task, repo=source["hub"]["path"])
    return load(task, source, no_raw, read_hub, keep_test_only, labels, synonyms)
