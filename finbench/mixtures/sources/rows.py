"""Shared machinery of the dataset sources: Arrow batches, vectorised validation, streaming bottom-k.

Subclasses say where the batches come from (`arrow_batches`) and what identifies the data
(`describe`, `fingerprint`); hub and JSON rows are streamed through `datasets`, local Parquet
through pyarrow's record-batch reader.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from finbench.core import validate as V
from finbench.core.files import sha256_file
from finbench.mixtures.errors import MixtureError, err
from finbench.mixtures.formats import Format, Messages, Rendered
from finbench.mixtures.sampling import BottomK, Pick, row_keys
from finbench.mixtures.sources.base import OpenContext, SourceDefaults, user_text

BATCH = 2048


def progress_bar(iterable, total: int | None, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="batch", leave=False, file=sys.stderr)


def _is_str(t) -> bool:
    import pyarrow as pa

    return pa.types.is_string(t) or pa.types.is_large_string(t)


class RowSource(SourceDefaults):
    """Rows of an external dataset, rendered by the declared format."""

    origin = ""  # the registry key, for error messages and the manifest

    def __init__(self, ctx: OpenContext) -> None:
        assert ctx.fmt is not None
        self.where = ctx.where
        self.key = ctx.key
        self.fmt: Format = ctx.fmt
        self.streaming = ctx.streaming
        self.total: int | None = None

    def error(self, msg: str) -> MixtureError:
        return err(self.where, f"{self.key}.{self.origin}", msg)

    # -- what subclasses provide
    def arrow_batches(self, first_only: bool = False) -> Iterator[Any]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def fingerprint(self) -> dict[str, Any]:
        raise NotImplementedError

    # -- the Source interface
    def prepare(self, loaded: dict[str, Any]) -> None:
        self.check_schema()

    def check_schema(self) -> None:
        """Peek at the first row so a wrong format fails before the expensive pass."""
        for batch in self.batches(first_only=True):
            if not batch:
                break
            cols = set(batch[0])
            missing = [c for c in self.fmt.columns() if c not in cols]
            if missing:
                raise err(
                    self.where,
                    f"{self.key}.format",
                    f"column(s) {missing} not in the data (found {sorted(cols)})",
                )
            return
        raise self.error("the source has no rows")

    def batches(self, first_only: bool = False) -> Iterator[list[dict[str, Any]]]:
        for tb in self.arrow_batches(first_only):
            yield tb.to_pylist()

    def render(self, row: dict[str, Any]) -> Rendered:
        return self.fmt.render(row)

    def guard_texts(self, row: dict[str, Any], messages: Messages) -> tuple[list[str], str]:
        return [], user_text(messages)

    def count_valid(self) -> int:
        return sum(1 for batch in self.batches() for row in batch if self.render(row)[0] is not None)

    def validate(self, tb) -> tuple[Any, list[tuple[str, Any]]]:
        """(valid mask, [(reason, mask of rows failing first for it)]) for one Arrow batch.

        Column formats (field mapping, alpaca) are checked vectorised, so the rows that are not
        kept never become Python objects; chat formats fall back to rendering each row.
        """
        import numpy as np

        n = tb.num_rows
        cols = self.fmt.string_columns()
        if cols is None:
            fails: dict[str, Any] = {}
            for j, row in enumerate(tb.to_pylist()):
                msgs, why = self.render(row)
                if msgs is None:
                    fails.setdefault(why, np.zeros(n, dtype=bool))[j] = True
            bad = np.zeros(n, dtype=bool)
            for m in fails.values():
                bad |= m
            return ~bad, list(fails.items())
        return self._validate_columns(tb, *cols)

    def _validate_columns(self, tb, required: Sequence[str], optional: Sequence[str]):
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        n = tb.num_rows
        valid = np.ones(n, dtype=bool)
        reasons: list[tuple[str, Any]] = []
        names = tb.schema.names
        for col in required:
            if col not in names or not _is_str(tb.schema.field(col).type):
                ok = np.zeros(n, dtype=bool)
            else:
                length = pc.utf8_length(pc.utf8_trim_whitespace(tb.column(col)))
                ok = pc.fill_null(pc.greater(length, 0), False).to_numpy(zero_copy_only=False)
            fail = valid & ~ok
            if fail.any():
                reasons.append((f"{V.short(col)} missing or empty", fail))
            valid &= ok
        for col in optional:
            if col in names:
                t = tb.schema.field(col).type
                if not (_is_str(t) or pa.types.is_null(t)):
                    fail = valid.copy()
                    if fail.any():
                        reasons.append((f"{V.short(col)} is not a string", fail))
                    valid[:] = False
        return valid, reasons

    def count_rows(self) -> int:
        """Rows in the source, valid or not (a pass over the batches unless known)."""
        if self.total is None:
            self.total = sum(tb.num_rows for tb in self.arrow_batches())
        return self.total

    def bottom_k(self, salt: int, k: int, progress: bool, label: str, keyer: Any = None) -> Pick:
        """One streaming pass; only rows that can enter the bottom-k become Python objects."""
        import numpy as np
        import pyarrow as pa

        pick, heap, start = Pick(), BottomK(k), 0
        total_batches = math.ceil(self.total / BATCH) if self.total else None
        for tb in progress_bar(self.arrow_batches(), total_batches, label, progress):
            n = tb.num_rows
            keys = keyer(start, n) if keyer else row_keys(salt, start, n)
            valid, reasons = self.validate(tb)
            for why, mask in reasons:
                pick.count_malformed(why, [start + int(j) for j in np.nonzero(mask)[0]])
            pick.available += int(valid.sum())
            limit = heap.threshold()
            cand = valid if limit is None else valid & (keys <= np.uint64(limit))
            idxs = np.nonzero(cand)[0]
            if len(idxs):
                rows = tb.take(pa.array(idxs)).to_pylist()
                for j, row in zip(idxs.tolist(), rows, strict=True):
                    key, idx = int(keys[j]), start + j
                    if not heap.beats(key, idx):
                        continue
                    msgs, why = self.render(row)
                    if msgs is None:  # validate() and render() disagree: count it, skip it
                        pick.count_malformed(why, [], 1)
                        pick.available -= 1
                        continue
                    heap.push(key, idx, msgs, {})  # guard texts come from the messages
            start += n
        pick.rows_seen = start
        pick.rows = heap.sorted_rows()
        pick.exhausted = len(pick.rows) < k
        return pick


def builder_for(path: str) -> str | None:
    p = path.lower()
    if p.endswith((".jsonl", ".json", ".jsonl.gz", ".json.gz")):
        return "json"
    if p.endswith(".parquet"):
        return "parquet"
    return None


def check_ext(where: str, key: str, files: Sequence[str]) -> None:
    for f in files:
        if builder_for(f) is None:
            raise err(where, key, f"{V.short(f)}: expected a .jsonl, .json or .parquet file")


def absolute(base_dir: Path, files: Sequence[str]) -> list[str]:
    return [f if Path(f).is_absolute() else str((base_dir / f).resolve()) for f in files]


class FileRows(RowSource):
    """Rows of local files: Parquet through pyarrow, anything else through `datasets`."""

    def __init__(self, ctx: OpenContext, files: Sequence[Path]) -> None:
        super().__init__(ctx)
        self.files = [Path(f) for f in files]
        for f in self.files:
            if not f.is_file():
                raise self.error(f"{f}: missing")
        self.total = self._parquet_rows()

    def builder(self) -> tuple[str, dict[str, Any]]:
        """(`datasets` builder name, its extra arguments) for these files."""
        kinds = {builder_for(str(f)) for f in self.files}
        if len(kinds) != 1:
            raise self.error("mixes JSON and Parquet files")
        return kinds.pop() or "json", {}

    def _all_parquet(self) -> bool:
        return all(builder_for(str(f)) == "parquet" for f in self.files)

    def _parquet_rows(self) -> int | None:
        if not self._all_parquet():
            return None
        import pyarrow.parquet as pq

        try:
            return sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)
        except Exception as exc:
            raise self.error(f"cannot read Parquet: {exc}") from exc

    def describe(self) -> dict[str, Any]:
        return {
            "type": self.origin,
            "files": {str(f): sha256_file(f) for f in self.files},
            "format": self.fmt.to_dict(),
        }

    def fingerprint(self) -> dict[str, Any]:
        return {"files": [sha256_file(f) for f in self.files], "format": self.fmt.to_dict()}

    def arrow_batches(self, first_only: bool = False) -> Iterator[Any]:
        """Arrow record batches / tables of BATCH rows, in source order."""
        size = 1 if first_only else BATCH
        if self._all_parquet():
            yield from self._parquet_batches(size, first_only)
            return
        builder, kwargs = self.builder()
        yield from stream_dataset(self, size, first_only, builder, data_files=[str(f) for f in self.files],
                                  split="train", **kwargs)

    def _parquet_batches(self, size: int, first_only: bool) -> Iterator[Any]:
        # pyarrow record batches (the reader `datasets` itself uses): the same rows in the same
        # order, without datasets' per-row formatting (~20x faster here).
        import pyarrow.parquet as pq

        for f in self.files:
            try:
                for rb in pq.ParquetFile(f).iter_batches(batch_size=size):
                    yield rb
                    if first_only:
                        return
            except Exception as exc:
                raise self.error(f"{f}: cannot read Parquet: {type(exc).__name__}: {exc}") from exc


def stream_dataset(
    src: RowSource, size: int, first_only: bool, *args: Any, loader: Any = None, **kwargs: Any
) -> Iterator[Any]:
    """`loader(*args, **kwargs)` (default `datasets.load_dataset`) as Arrow tables; errors name the key."""
    import datasets

    datasets.disable_progress_bars()
    try:
        ds = (loader or datasets.load_dataset)(*args, streaming=src.streaming, **kwargs)
    except MixtureError:
        raise
    except Exception as exc:  # datasets raises many types; name the key and the cause
        raise src.error(f"cannot load: {type(exc).__name__}: {exc}") from exc
    try:
        for tb in ds.with_format("arrow").iter(batch_size=size):
            yield tb
            if first_only:
                return
    except MixtureError:
        raise
    except Exception as exc:
        raise src.error(f"cannot read rows: {type(exc).__name__}: {exc}") from exc
