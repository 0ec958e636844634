"""Where a task's rows come from and how they are split; shared by every task's `utils.py`.

A task folder declares its sources in YAML (`metadata.source`) and supplies two small functions
in its `utils.py`: `read_raw(data_dir)` reads the upstream files (laid out like
README "Data": one folder per dataset, upstream file names) and `read_hub(**hub)` reads the
Hugging Face dataset; both return {upstream split name: [row, ...]}. `build_dataset` picks the
source, splits deterministically and validates every row before lm-eval sees it:

- `FINBENCH_DATA_DIR` set: the raw files under it (offline, and how tests run on fixtures);
- otherwise: the hub dataset through `finbench.data.hub` (at the locked sha, or from a hub-shaped
  mirror when `FINBENCH_HUB_MIRROR` is set).
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from finbench.core import settings
from finbench.core.validate import short

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
    # utf-8-sig: a byte-order mark (Windows editors add one) must not glue onto the first line.
    encoding = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        return path.read_text(encoding=encoding).splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read as {encoding} text: {err}") from err


def read_csv(path: Path, delimiter: str = ",", required: Sequence[str] = ()) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            if reader.fieldnames is None:
                raise DataError(f"{path}: empty file; expected a header line with columns {list(required)}")
            missing = [col for col in required if col not in (reader.fieldnames or [])]
            if missing:
                raise DataError(
                    f"{path}: missing column(s) {short(missing, 120)}; found {short(reader.fieldnames, 100)}"
                )
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: cannot read as CSV: {err}") from err


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: cannot read as JSON: {err}") from err


def _unique_key_loader():
    """A SafeLoader that refuses a mapping key given twice (plain YAML keeps the last silently)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
        # Only the keys written in this mapping count: overriding a key merged in with `<<` is fine.
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = loader.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                continue  # the base constructor reports unhashable keys with their position
            line = key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKeyError(key, line, seen[key])
            seen[key] = line
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return UniqueKeyLoader


class DuplicateKeyError(Exception):
    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(f"line {line}: duplicate key {key!r} (first given on line {first})")
        self.key, self.line, self.first = key, line, first


def read_yaml(path: Path, error: type[Exception] = DataError, *, mapping: bool = True) -> Any:
    """Our own YAML files (recipes, mixtures, designs, sweeps): safe loading, no duplicate keys,
    and a clear error naming the file (and line)."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise error(f"{path}: missing") from err
    except OSError as err:  # strerror alone: the message names the path once, not twice
        raise error(f"{path}: cannot read as YAML: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise error(f"{path}: cannot read as YAML: {err}") from err
    try:
        data = yaml.load(text, Loader=_unique_key_loader())  # noqa: S506 (a SafeLoader subclass)
    except DuplicateKeyError as err:
        raise error(
            f"{path}:{err.line}: duplicate key {err.key!r} (first given on line {err.first}); "
            "YAML would silently keep only the last value"
        ) from err
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as err:
        raise error(f"{path}: cannot read as YAML: {err}") from err
    if mapping and not isinstance(data, dict):
        raise error(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def require_rows(rows: Sequence[Any], path: Path | str, what: str = "records") -> None:
    """A DataError naming `path` when a raw file gave no rows (empty, header only, `[]`, `{}`).

    An empty split would otherwise reach lm-eval, which fails on `docs[0]` with an IndexError.
    """
    if not rows:
        raise DataError(f"{path}: no {what} found (an empty file, a header line only, or an empty list?)")


def finite_gold(value: Any, where: str) -> Any:
    """A FinQA/ConvFinQA `exe_ans`: a finite number, a numeric string or yes/no; else a DataError.

    JSON's `Infinity`/`NaN` and strings like "abc" have no answer a model could match: refusing
    them names the record instead of failing later (an OverflowError when formatting the target).
    """
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("yes", "no"):
            return value
        try:
            number = float(text.replace(",", "").removesuffix("%"))
        except ValueError:
            raise DataError(f"{where}: exe_ans {short(value)} is neither a number nor yes/no") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer of hundreds of digits
            number = math.inf
    else:
        raise DataError(f"{where}: exe_ans must be a number or yes/no, got {short(value)}")
    if not math.isfinite(number):
        raise DataError(f"{where}: exe_ans {short(value)} is not a finite number")
    return value


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


ORDER_SEED = 42
ORDERED_SPLITS = ("dev", "test")  # train keeps its order: mixtures sample it with their own seeds


def representative_order(rows: list[Row], seed: int = ORDER_SEED, stratify: bool = True) -> list[Row]:
    """The same rows, ordered so that every prefix (what `--limit N` scores) represents the split.

    Rows are shuffled with `random.Random(seed)`, then grouped into strata (label and `group`,
    e.g. Headline's question type; one stratum for tasks without labels). The k-th row of a stratum
    of n rows gets the key k/n and rows are sorted by (key, shuffled position): the first rows hold
    one row of every stratum, and any prefix holds each stratum in proportion to its share of the
    split (within one row). Same rows in, same order out; the set of rows never changes.
    """
    import random

    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    strata: dict[tuple[str, str], list[int]] = {}
    for pos, row in enumerate(shuffled):
        key = (str(row.get("group", "")), str(row.get("label", ""))) if stratify else ("", "")
        strata.setdefault(key, []).append(pos)
    keys: list[tuple[float, int]] = []
    for members in strata.values():
        keys += [(rank / len(members), pos) for rank, pos in enumerate(members)]
    return [shuffled[pos] for _, pos in sorted(keys)]


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
    """Load, split and validate a task's rows; returns a `datasets.DatasetDict` (train/dev/test).

    dev and test come in `representative_order` (stratified by label for labelled tasks), so a
    `--limit N` slice draws from every label; the sets themselves are what `make_splits` gives.
    """
    import datasets

    root = data_dir()
    if root is not None:
        if not root.is_dir():
            raise DataError(f"{DATA_DIR_ENV}={root}: not a directory")
        upstream = read_raw(root)
        source = f"the raw files under {DATA_DIR_ENV}={root}"
    else:
        upstream = read_hub(**dict(hub or {}))
        source = f"hub dataset {dict(hub or {}).get('path', '?')}"
    sink = _UPSTREAM_COUNTS.get()
    if sink is not None:
        sink[task] = {name: len(rows) for name, rows in upstream.items()}
    try:
        splits = make_splits(upstream)
    except ValueError as err:  # e.g. a seeded split of too few rows (datasets refuses it)
        sizes = {name: len(rows) for name, rows in upstream.items()}
        raise DataError(f"task {task!r}: cannot split the rows read from {source} ({sizes}): {err}") from err
    if set(splits) != set(SPLITS):
        raise DataError(f"task {task!r}: make_splits returned {sorted(splits)}, expected {list(SPLITS)}")
    if not splits["test"]:
        # lm-eval would fail on `docs[0]` with an IndexError far from the cause.
        raise DataError(f"task {task!r}: the test split is empty (rows read from {source})")
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
        if name in ORDERED_SPLITS:
            rows = representative_order(rows, stratify=bool(labels))
        out[name] = datasets.Dataset.from_list(rows) if rows else _empty(rows)
    return datasets.DatasetDict(out)


def _empty(rows: list[Row]):
    import datasets

    return datasets.Dataset.from_dict({"id": [], "text": [], "label": []})
