"""Where a task's rows come from and how they are split; shared by every task's `utils.py`.

A task folder declares its sources in YAML (`metadata.source`) and supplies two small functions
in its `utils.py`: `read_raw(data_dir)` reads the upstream files (laid out like
README "Data": one folder per dataset, upstream file names) and `read_hub(**hub)` reads the
Hugging Face dataset; both return {upstream split name: [row, ...]}. `build_dataset` picks the
source, splits deterministically and validates every row before lm-eval sees it:

- `FINBENCH_DATA_DIR` set: the raw files under it (offline, and how tests run on fixtures);
- otherwise: the hub dataset through `finbench.hub` (at the locked sha, or from a hub-shaped
  mirror when `FINBENCH_HUB_MIRROR` is set).
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from finbench import settings

Row = dict[str, Any]
Splits = dict[str, list[Row]]
SPLITS = ("train", "dev", "test")
DATA_DIR_ENV = settings.DATA_DIR_ENV


class DataError(RuntimeError):
    """Bad or missing task data; the message names the file or key and what was expected."""


_UPSTREAM_COUNTS: contextvars.ContextVar[dict[str, dict[str, int]] | None] = contextvars.ContextVar(
    "finbench_upstream_counts", default=None
)


@contextlib.contextmanager
def upstream_counts() -> Iterator[dict[str, dict[str, int]]]:
    """Collect {task: {upstream split: rows}} from every `build_dataset` run inside the block."""
    sink: dict[str, dict[str, int]] = {}
    token = _UPSTREAM_COUNTS.set(sink)
    try:
        yield sink
    finally:
        _UPSTREAM_COUNTS.reset(token)


def data_dir() -> Path | None:
    return settings.data_dir()


def raw_file(data_root: Path, folder: str, name: str) -> Path:
    path = data_root / folder / name
    if not path.is_file():
        raise DataError(
            f"{path}: missing. Expected the upstream file {name!r} of dataset folder {folder!r} "
            f"under {DATA_DIR_ENV}={data_root} (layout: README 'Data')."
        )
    return path


def read_lines(path: Path, encoding: str = "utf-8") -> list[str]:
    try:
        return path.read_text(encoding=encoding).splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read as {encoding} text: {err}") from err


def read_csv(path: Path, delimiter: str = ",", required: Sequence[str] = ()) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            missing = [col for col in required if col not in (reader.fieldnames or [])]
            if missing:
                raise DataError(
                    f"{path}: missing column(s) {missing}; found {reader.fieldnames}, expected {list(required)}"
                )
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: cannot read as CSV: {err}") from err


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: cannot read as JSON: {err}") from err


def read_yaml(path: Path, error: type[Exception] = DataError, *, mapping: bool = True) -> Any:
    """Our own YAML files (recipes, mixtures, sweeps), with `yaml.safe_load` and a clear error."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise error(f"{path}: missing") from err
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise error(f"{path}: cannot read as YAML: {err}") from err
    if mapping and not isinstance(data, dict):
        raise error(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def require(record: Any, key: str, where: str) -> Any:
    """record[key] from a JSON record, or a DataError naming where and the key."""
    if not isinstance(record, dict) or record.get(key) is None:
        raise DataError(f"{where}: missing key {key!r}")
    return record[key]


def seeded_split(rows: list[Row], size: float | int, seed: int) -> tuple[list[Row], list[Row]]:
    """(rest, held_out) exactly as `datasets.Dataset.train_test_split(test_size=size, seed=seed)`.

    Published splits (FinGPT's FPB 75/25 with seed 42) were made with that call, so we make ours
    with it too: the same rows in the same order give the same split.
    """
    if not rows:
        return [], []
    import datasets

    index = datasets.Dataset.from_dict({"i": list(range(len(rows)))})
    parts = index.train_test_split(test_size=size, seed=seed, shuffle=True)
    return [rows[i] for i in parts["train"]["i"]], [rows[i] for i in parts["test"]["i"]]


def split_grouped(rows: list[Row], key: str, size: float, seed: int) -> tuple[list[Row], list[Row]]:
    """Like `seeded_split`, but rows sharing `key` (e.g. the same headline) stay on one side."""
    groups = list(dict.fromkeys(row[key] for row in rows))
    rest, held = seeded_split([{"k": g} for g in groups], size, seed)
    held_keys = {g["k"] for g in held}
    return [r for r in rows if r[key] not in held_keys], [r for r in rows if r[key] in held_keys]


def _validate(task: str, split: str, rows: list[Row], labels: Sequence[str]) -> None:
    for i, row in enumerate(rows):
        where = f"task {task!r}, split {split!r}, row {i} (id {row.get('id')!r})"
        for key in ("id", "text", "label"):
            if key not in row:
                raise DataError(f"{where}: missing key {key!r}")
        if not isinstance(row["text"], str) or not row["text"].strip():
            raise DataError(f"{where}: 'text' must be a non-empty string, got {row['text']!r}")
        if labels and row["label"] not in labels:
            raise DataError(f"{where}: label {row['label']!r} is not one of {list(labels)}")


def build_dataset(
    task: str,
    *,
    read_raw: Callable[[Path], Splits],
    read_hub: Callable[..., Splits],
    make_splits: Callable[[Splits], Splits],
    labels: Sequence[str] = (),
    synonyms: Mapping[str, str] | None = None,
    hub: Mapping[str, Any] | None = None,
):
    """Load, split and validate a task's rows; returns a `datasets.DatasetDict` (train/dev/test)."""
    import datasets

    root = data_dir()
    if root is not None:
        if not root.is_dir():
            raise DataError(f"{DATA_DIR_ENV}={root}: not a directory")
        upstream = read_raw(root)
    else:
        upstream = read_hub(**dict(hub or {}))
    sink = _UPSTREAM_COUNTS.get()
    if sink is not None:
        sink[task] = {name: len(rows) for name, rows in upstream.items()}
    splits = make_splits(upstream)
    if set(splits) != set(SPLITS):
        raise DataError(f"task {task!r}: make_splits returned {sorted(splits)}, expected {list(SPLITS)}")
    pairs = [[k, v] for k, v in sorted((synonyms or {}).items())]
    out = {}
    for name in SPLITS:
        rows = splits[name]
        _validate(task, name, rows, labels)
        for row in rows:
            row.setdefault("group", "")
            if labels:
                row["choices"] = list(labels)
                row["synonyms"] = pairs
        out[name] = datasets.Dataset.from_list(rows) if rows else _empty(rows)
    return datasets.DatasetDict(out)


def _empty(rows: list[Row]):
    import datasets

    return datasets.Dataset.from_dict({"id": [], "text": [], "label": []})
