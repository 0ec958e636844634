"""A mixture file parsed into typed objects; static validation only (no data is read).

A mixture (`mixtures/NAME.yaml`) names components. Each has one source (a `task:`, or a
`dataset:` with a source from `sources/registry.py` and a `format`) and one size: `count: N`,
`fraction: F` (of the valid rows), or `relative_to: [components]` + `factor` (+ `rounding`).

Optional per component: `upsample: false` caps a size at the rows available instead of repeating
rows (`min(count, len)`), `emit: false` makes a component sizing-only (measured for others'
`relative_to`, not written), `sampler:` picks rows (sampling.SAMPLERS; the mixture's `sampler:`
is the default), `pool: N` draws the size from the first N rows by sampling key only (repeated
past N: a size-matched single repeats its own single's rows, design kind matched_singles).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finbench.core import validate as V
from finbench.core.files import did_you_mean
from finbench.data import tasks as T
from finbench.mixtures.contamination import Contamination, parse_contamination
from finbench.mixtures.errors import MAX_FACTOR, MAX_ROWS, MixtureError, err, number, unknown_keys
from finbench.mixtures.sampling import ROUNDINGS, SAMPLERS, Size
from finbench.mixtures.sources.base import ParseContext, Source
from finbench.mixtures.sources.dataset import DatasetSpec, DirectSpec
from finbench.mixtures.sources.registry import COMPONENT_SOURCES, REGISTRY

SIZE_KEYS = ("count", "fraction", "relative_to")
SOURCE_KEYS = (*COMPONENT_SOURCES, "dataset")
OPTION_KEYS = ("upsample", "emit", "sampler", "pool")
COMPONENT_KEYS = {*SOURCE_KEYS, *SIZE_KEYS, "factor", "rounding", *OPTION_KEYS}
TOP_KEYS = {"name", "description", "seed", "components", "contamination", "max_malformed", "sampler"}
MAX_SEED = 2**32 - 1


def _direct(kind: str) -> Any:
    return lambda ctx, key, value: DirectSpec(kind, REGISTRY[kind].parse(ctx, key, value))


# `dataset:` is a section that holds sources and a format; the others are sources themselves
SOURCE_PARSERS = {"dataset": DatasetSpec.parse, **{k: _direct(k) for k in COMPONENT_SOURCES}}


@dataclass(frozen=True)
class Component:
    name: str
    size: Size
    source: DatasetSpec | DirectSpec
    upsample: bool = True  # False: capped at the rows available, never repeated
    emit: bool = True  # False: sizing-only (measured for `relative_to`, not written)
    sampler: str | None = None  # None: the mixture's sampler
    pool: int | None = None  # rows drawn from the first `pool` rows by key only (None: all rows)

    @property
    def task(self) -> str | None:
        return self.source.to_dict().get("task")

    @property
    def dataset(self) -> dict[str, Any] | None:
        return self.source.to_dict().get("dataset")

    def to_dict(self) -> dict[str, Any]:
        opts = {"upsample": self.upsample, "emit": self.emit, "sampler": self.sampler, "pool": self.pool}
        defaults = {"upsample": True, "emit": True, "sampler": None, "pool": None}
        return {**self.source.to_dict(), **self.size.to_dict(), **{k: v for k, v in opts.items() if v != defaults[k]}}

    def open(self, where: str) -> Source:
        return self.source.open(where, f"components.{self.name}")


@dataclass
class Mixture:
    name: str
    path: Path | None
    seed: int
    components: dict[str, Component]
    contamination: Contamination = field(default_factory=Contamination)
    max_malformed: float = 0.01
    description: str = ""
    sizing: dict[str, Component] = field(default_factory=dict)  # `emit: false` components
    sampler: str = "hash"

    @property
    def where(self) -> str:
        return str(self.path) if self.path else f"mixture {V.short(self.name)}"

    def spec_dict(self) -> dict[str, Any]:
        """Everything that decides the output (the description does not)."""
        out = {
            "seed": self.seed,
            "components": {k: c.to_dict() for k, c in self.components.items()},
            "contamination": self.contamination.to_dict(),
            "max_malformed": self.max_malformed,
        }
        if self.sizing:
            out["sizing_only"] = {k: c.to_dict() for k, c in self.sizing.items()}
        return out if self.sampler == "hash" else {**out, "sampler": self.sampler}

    def sampler_of(self, comp: Component) -> Any:
        return SAMPLERS[comp.sampler or self.sampler]


def parse_size(where: str, key: str, spec: dict[str, Any]) -> Size:
    sizes = [k for k in SIZE_KEYS if k in spec]
    if len(sizes) != 1:
        raise err(where, key, f"expected exactly one size key of {list(SIZE_KEYS)}, got {sizes}")
    for only_rel in ("factor", "rounding"):
        if only_rel in spec and "relative_to" not in spec:
            raise err(where, f"{key}.{only_rel}", "only valid with relative_to")
    if "count" in spec:
        return Size(count=int(number(where, f"{key}.count", spec["count"], integer=True, upper=MAX_ROWS)))
    if "fraction" in spec:
        return Size(fraction=float(number(where, f"{key}.fraction", spec["fraction"], upper=MAX_FACTOR)))
    rel = spec["relative_to"]
    rel = [rel] if isinstance(rel, str) else rel
    if not isinstance(rel, list) or not rel or not all(isinstance(r, str) for r in rel):
        raise err(where, f"{key}.relative_to", f"expected a list of component names, got {V.short(rel)}")
    factor = float(number(where, f"{key}.factor", spec.get("factor", 1.0), upper=MAX_FACTOR))
    rounding = spec.get("rounding", "half_up")
    if rounding not in ROUNDINGS:
        raise err(where, f"{key}.rounding", f"expected one of {list(ROUNDINGS)}, got {V.short(rounding)}")
    return Size(relative_to=tuple(rel), factor=factor, rounding=rounding)


def parse_sampler(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or value not in SAMPLERS:
        raise err(where, key, f"expected one of {list(SAMPLERS)}, got {V.short(value)}.{did_you_mean(str(value), SAMPLERS)}")
    return value


def parse_options(where: str, key: str, spec: dict[str, Any]) -> dict[str, Any]:
    """`upsample`, `emit` (booleans), `sampler` and `pool` of one component."""
    out: dict[str, Any] = {}
    for flag in ("upsample", "emit"):
        if flag in spec:
            if not isinstance(spec[flag], bool):
                raise err(where, f"{key}.{flag}", f"expected true or false, got {V.short(spec[flag])}")
            out[flag] = spec[flag]
    if "sampler" in spec:
        out["sampler"] = parse_sampler(where, f"{key}.sampler", spec["sampler"])
    if "pool" in spec:
        out["pool"] = int(number(where, f"{key}.pool", spec["pool"], integer=True, upper=MAX_ROWS))
    return out


def parse_component(ctx: ParseContext, cname: Any, spec: Any) -> Component:
    key = f"components.{cname}"
    if not isinstance(cname, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", cname):
        raise err(ctx.where, key, "component names may use letters, digits, '_', '.', '-'")
    if not isinstance(spec, dict):
        raise err(ctx.where, key, f"expected a mapping, got {V.short(spec)}")
    unknown_keys(ctx.where, key, spec, COMPONENT_KEYS)
    kinds = [k for k in SOURCE_KEYS if k in spec]
    if len(kinds) != 1:
        raise err(ctx.where, key, f"expected exactly one of {' or '.join(SOURCE_KEYS)}")
    size = parse_size(ctx.where, key, spec)
    kind = kinds[0]
    source = SOURCE_PARSERS[kind](ctx, f"{key}.{kind}", spec[kind])
    return Component(cname, size, source, **parse_options(ctx.where, key, spec))


def check_relative_sizes(where: str, comps: dict[str, Component]) -> None:
    """Every `relative_to` names a component, and the sizes form no cycle."""
    for c in comps.values():
        for r in c.size.relative_to:
            if r not in comps:
                raise err(
                    where,
                    f"components.{c.name}.relative_to",
                    f"unknown component {V.short(r)}; components: {', '.join(comps)}",
                )
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = trail[trail.index(name) :] + [name]
            raise err(where, f"components.{name}.relative_to", f"circular relative sizes: {' -> '.join(cycle)}")
        state[name] = 1
        for r in comps[name].size.relative_to:
            visit(r, trail + [name])
        state[name] = 2

    for n in comps:
        visit(n, [])


def parse_mixture(
    data: Any, *, name: str, path: Path | None = None, known_tasks: Iterable[str] | None = None
) -> Mixture:
    """Validate a mixture mapping (from YAML) statically: no data is read."""
    where = str(path) if path else f"mixture {V.short(name)}"
    if not isinstance(data, dict):
        raise MixtureError(f"{where}: expected a mapping at the top level, got {type(data).__name__}")
    extra = sorted(str(k) for k in set(data) - TOP_KEYS)
    if extra:
        hint = "".join(did_you_mean(x, TOP_KEYS) for x in extra)
        raise err(where, ", ".join(extra), f"unknown key(s); expected {sorted(TOP_KEYS)}.{hint}")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise err(where, "seed", f"expected an integer in [0, {MAX_SEED}], got {V.short(seed)}")
    comps_raw = data.get("components")
    if not isinstance(comps_raw, dict) or not comps_raw:
        raise err(where, "components", "expected a non-empty mapping of name -> component")
    known = frozenset(known_tasks if known_tasks is not None else T.discover())
    ctx = ParseContext(where, path.parent if path else Path.cwd(), known)
    every = {cname: parse_component(ctx, cname, spec) for cname, spec in comps_raw.items()}
    check_relative_sizes(where, every)
    comps = {k: c for k, c in every.items() if c.emit}
    if not comps:
        raise err(where, "components", "every component is `emit: false`; at least one must be written")
    sampler = parse_sampler(where, "sampler", data.get("sampler", "hash"))
    cont = parse_contamination(where, data.get("contamination", "fail"), known)
    max_bad = data.get("max_malformed", 0.01)
    if isinstance(max_bad, bool) or not isinstance(max_bad, int | float) or not 0 <= max_bad <= 1:
        raise err(where, "max_malformed", f"expected a fraction in [0, 1], got {V.short(max_bad)}")
    mname = data.get("name", name)
    if not isinstance(mname, str) or not mname:
        raise err(where, "name", f"expected a non-empty string, got {V.short(mname)}")
    sizing = {k: c for k, c in every.items() if not c.emit}
    desc = data.get("description", "")
    if V.description(desc):
        raise err(where, "description", V.description(desc) or "")
    return Mixture(mname, path, seed, comps, cont, float(max_bad), desc, sizing, sampler)
