"""`raw:` upstream files under `$FINBENCH_DATA_DIR/<folder>/`, the convention the tasks use."""

from __future__ import annotations

from typing import Any, ClassVar

from finbench.core import settings
from finbench.core import validate as V
from finbench.mixtures.errors import err, unknown_keys
from finbench.mixtures.sources.base import OpenContext, ParseContext
from finbench.mixtures.sources.rows import FileRows, check_ext


class RawSource(FileRows):
    key: ClassVar[str] = "raw"
    in_dataset: ClassVar[bool] = True
    origin = "raw"

    @classmethod
    def parse(cls, ctx: ParseContext, key: str, value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            unknown_keys(ctx.where, key, value, ("folder", "files"))
        files = value.get("files") if isinstance(value, dict) else None
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("folder"), str)
            or not isinstance(files, list)
            or not files
        ):
            raise err(ctx.where, key, f"expected {{folder, files: [...]}}, got {V.short(value)}")
        if not isinstance(value["folder"], str) or V.path_name(value["folder"]):
            raise err(ctx.where, f"{key}.folder", f"expected a folder name, got {V.short(value['folder'])}")
        for f in files:
            if not isinstance(f, str) or not f or V.path_name(f):
                raise err(ctx.where, f"{key}.files", f"expected a file name, got {V.short(f)}")
        if V.duplicates(files):
            raise err(ctx.where, f"{key}.files", V.duplicates(files) or "")
        check_ext(ctx.where, f"{key}.files", files)
        return {"folder": value["folder"], "files": list(files)}

    @classmethod
    def unavailable(cls, value: Any) -> str | None:
        return None if settings.data_dir() is not None else f"{settings.DATA_DIR_ENV} is not set"

    @classmethod
    def open(cls, value: dict[str, Any], ctx: OpenContext) -> RawSource:
        root = settings.data_dir()
        assert root is not None  # checked by unavailable()
        return cls(ctx, [root / value["folder"] / f for f in value["files"]])
