"""`hub:` a Hugging Face dataset at a pinned revision, streamed through `datasets`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from finbench.core import validate as V
from finbench.data import hub as H
from finbench.mixtures.errors import err, unknown_keys
from finbench.mixtures.sources.base import OpenContext, ParseContext
from finbench.mixtures.sources.rows import BATCH, RowSource, stream_dataset

_KEYS = {"path", "revision", "split", "name"}


class HubSource(RowSource):
    key: ClassVar[str] = "hub"
    in_dataset: ClassVar[bool] = True
    origin = "hub"

    def __init__(self, ctx: OpenContext, hub: dict[str, Any]) -> None:
        super().__init__(ctx)
        self.hub = dict(hub)

    @classmethod
    def parse(cls, ctx: ParseContext, key: str, value: Any) -> dict[str, Any]:
        hub = {"path": value} if isinstance(value, str) else value
        if isinstance(hub, dict):
            unknown_keys(ctx.where, key, hub, _KEYS)
        if not isinstance(hub, dict) or not isinstance(hub.get("path"), str):
            raise err(ctx.where, key, f"expected {{path, revision, split?, name?}}, got {V.short(value)}")
        hub = {"split": "train", **hub}
        # Every value is checked here, when the mixture is read, even where a `raw:` source is
        # the one used (issue 21): a bad hub block is never written into a manifest.
        for field, check in V.HUB_CHECKS.items():
            problem = check(hub.get(field)) if field in hub or field == "revision" else None
            if problem:
                raise err(ctx.where, f"{key}.{field}", problem)
        return hub

    @classmethod
    def open(cls, value: dict[str, Any], ctx: OpenContext) -> HubSource:
        return cls(ctx, value)

    def describe(self) -> dict[str, Any]:
        out = {"type": "hub", **H.record(self.hub)}
        if not out.get("sha"):
            out["warning"] = "not locked to a commit sha: run `finbench data lock` for a reproducible run"
        elif out.get("sha_origin") == "public-evidence":
            out["warning"] = "sha found in public evidence, not yet resolved online: run `finbench data lock`"
        return out

    def fingerprint(self) -> dict[str, Any]:
        return {"hub": H.record(self.hub, with_mirror=False), "format": self.fmt.to_dict()}

    def arrow_batches(self, first_only: bool = False) -> Iterator[Any]:
        yield from stream_dataset(
            self,
            1 if first_only else BATCH,
            first_only,
            self.hub["path"],
            loader=H.load_dataset,
            name=self.hub.get("name"),
            revision=self.hub["revision"],
            split=self.hub.get("split", "train"),
        )
