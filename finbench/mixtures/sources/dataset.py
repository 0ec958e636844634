"""The `dataset:` section of a component: one or more row sources plus the rows' `format`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finbench.core import validate as V
from finbench.mixtures.errors import err, unknown_keys
from finbench.mixtures.formats import PRESET_FORMATS, Format, parse_format
from finbench.mixtures.sources.base import OpenContext, ParseContext, Source
from finbench.mixtures.sources.registry import DATASET_SOURCES, REGISTRY

DATASET_KEYS = {"format", "streaming", *DATASET_SOURCES}


@dataclass(frozen=True)
class DatasetSpec:
    fmt: Format
    streaming: bool
    origins: dict[str, Any]  # registry key -> its normalised value, in registry order

    @classmethod
    def parse(cls, ctx: ParseContext, key: str, ds: Any) -> DatasetSpec:
        names = ", ".join(DATASET_SOURCES)
        if not isinstance(ds, dict):
            raise err(ctx.where, key, f"expected a mapping with a source ({names}) and format, got {V.short(ds)}")
        unknown_keys(ctx.where, key, ds, DATASET_KEYS)
        if not any(k in ds for k in DATASET_SOURCES):
            raise err(ctx.where, key, f"expected at least one source: {names}")
        if "format" not in ds:
            raise err(
                ctx.where,
                f"{key}.format",
                f"missing; declare {', '.join(PRESET_FORMATS)} or a field mapping {{system?, user, assistant}}",
            )
        fmt = parse_format(ctx.where, f"{key}.format", ds["format"])
        origins = {k: REGISTRY[k].parse(ctx, f"{key}.{k}", ds[k]) for k in DATASET_SOURCES if k in ds}
        return cls(fmt, bool(ds.get("streaming", True)), origins)

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": {"format": self.fmt.to_dict(), "streaming": self.streaming, **self.origins}}

    def open(self, where: str, key: str) -> Source:
        """The first declared source that is usable now (e.g. `raw:` only with a data folder)."""
        why: dict[str, str] = {}
        for name, value in self.origins.items():
            reason = REGISTRY[name].unavailable(value)
            if reason is None:
                ctx = OpenContext(where, f"{key}.dataset", self.fmt, self.streaming)
                return REGISTRY[name].open(value, ctx)
            why[name] = reason
        first = next(iter(why))
        reasons = "; ".join(f"{k}: {v}" for k, v in why.items())
        raise err(where, f"{key}.dataset.{first}", f"no usable source ({reasons}) and no other source declared")

    @staticmethod
    def rebase(ds: dict[str, Any], base_dir: Path) -> dict[str, Any]:
        """The raw YAML mapping with each source's relative paths made absolute."""
        return {k: (REGISTRY[k].rebase(v, base_dir) if k in DATASET_SOURCES else v) for k, v in ds.items()}


@dataclass(frozen=True)
class DirectSpec:
    """A source named by a component key of its own (today only `task:`)."""

    kind: str
    value: Any

    def to_dict(self) -> dict[str, Any]:
        return {self.kind: self.value}

    def open(self, where: str, key: str) -> Source:
        return REGISTRY[self.kind].open(self.value, OpenContext(where, f"{key}.{self.kind}"))
