"""`file:` local JSON Lines / JSON / Parquet files (paths relative to the mixture file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from finbench.mixtures.errors import string_list
from finbench.mixtures.sources.base import OpenContext, ParseContext
from finbench.mixtures.sources.rows import FileRows, absolute, check_ext


class FileSource(FileRows):
    key: ClassVar[str] = "file"
    in_dataset: ClassVar[bool] = True
    origin = "file"

    @classmethod
    def parse(cls, ctx: ParseContext, key: str, value: Any) -> list[str]:
        files = string_list(ctx.where, key, value, "a path")
        paths = absolute(ctx.base_dir, files)
        check_ext(ctx.where, key, paths)
        return paths

    @classmethod
    def rebase(cls, value: Any, base_dir: Path) -> Any:
        files = value if isinstance(value, list) else [value]
        return absolute(base_dir, [str(f) for f in files])

    @classmethod
    def open(cls, value: list[str], ctx: OpenContext) -> FileSource:
        return cls(ctx, [Path(f) for f in value])
