"""`csv:` local CSV / TSV files with a header row, read through `datasets`' csv builder.

    dataset:
      csv: [qa.tsv]                                  # or one path, or {files: [...], delimiter: ";"}
      format: {user: question, assistant: answer}

The delimiter defaults to a tab for `.tsv` files and a comma otherwise. Every column is read as
text, so a numeric-looking answer keeps its exact spelling ("007", "1.50").
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any, ClassVar

from finbench.core import validate as V
from finbench.mixtures.errors import err, string_list, unknown_keys
from finbench.mixtures.sources.base import OpenContext, ParseContext
from finbench.mixtures.sources.rows import FileRows, absolute

_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz")


def _default_delimiter(files: list[str]) -> str:
    return "\t" if all(f.lower().endswith((".tsv", ".tsv.gz")) for f in files) else ","


class CsvSource(FileRows):
    key: ClassVar[str] = "csv"
    in_dataset: ClassVar[bool] = True
    origin = "csv"

    def __init__(self, ctx: OpenContext, files: list[Path], delimiter: str) -> None:
        self.delimiter = delimiter
        super().__init__(ctx, files)

    @classmethod
    def parse(cls, ctx: ParseContext, key: str, value: Any) -> dict[str, Any]:
        spec = value if isinstance(value, dict) else {"files": value}
        unknown_keys(ctx.where, key, spec, ("files", "delimiter"))
        files = absolute(ctx.base_dir, string_list(ctx.where, f"{key}.files", spec.get("files"), "a path"))
        for f in files:
            if not f.lower().endswith(_SUFFIXES):
                raise err(ctx.where, f"{key}.files", f"{V.short(f)}: expected a .csv or .tsv file")
        delim = spec.get("delimiter", _default_delimiter(files))
        if not isinstance(delim, str) or len(delim) != 1 or delim in "\"\r\n":
            raise err(ctx.where, f"{key}.delimiter", f"expected one character such as ',' or '\\t', got {V.short(delim)}")
        return {"files": files, "delimiter": delim}

    @classmethod
    def rebase(cls, value: Any, base_dir: Path) -> Any:
        spec = dict(value) if isinstance(value, dict) else {"files": value}
        files = spec.get("files")
        spec["files"] = absolute(base_dir, [str(f) for f in (files if isinstance(files, list) else [files])])
        return spec

    @classmethod
    def open(cls, value: dict[str, Any], ctx: OpenContext) -> CsvSource:
        return cls(ctx, [Path(f) for f in value["files"]], value["delimiter"])

    def header(self) -> list[str]:
        """The first file's column names (every file must share them)."""
        opener = gzip.open if self.files[0].suffix == ".gz" else open
        try:
            with opener(self.files[0], "rt", encoding="utf-8", newline="") as fh:
                return next(csv.reader(fh, delimiter=self.delimiter), [])
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise self.error(f"{self.files[0]}: cannot read the header row: {exc}") from exc

    def builder(self) -> tuple[str, dict[str, Any]]:
        import datasets

        # every column as text: pandas would otherwise turn "007" into 7 and empty cells into NaN
        features = datasets.Features({c: datasets.Value("string") for c in self.header()})
        return "csv", {"delimiter": self.delimiter, "features": features, "keep_default_na": False}

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "delimiter": self.delimiter}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "delimiter": self.delimiter}
