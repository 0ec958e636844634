"""Design files: a base mixture and its ingredients -> many member mixtures (the study's 55).

The design names a base mixture and its ingredients. Each member keeps the base's seed,
contamination policy and each ingredient's size. A `relative_to` list is narrowed to the
ingredients present; when none is present (e.g. `openorca` alone) the size falls back to the
count it has in the full base mixture, so an ingredient has the same size in every member where it
cannot be sized relative to the others.

With `sizing: base` (the study's own rule) `relative_to` is not narrowed: the base components a
member's sizes depend on and that it lacks are kept as sizing-only (`emit: false`) components, so
e.g. OpenOrca has the same size in every member, sized from all seven finance sets.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from finbench.core import validate as V
from finbench.core.files import did_you_mean
from finbench.data import raw as D
from finbench.mixtures.errors import MAX_ROWS, MixtureError, err
from finbench.mixtures.sampling import round_half_up
from finbench.mixtures.sources.dataset import DatasetSpec
from finbench.mixtures.spec import parse_mixture

DESIGN_KEYS = ("design", "description", "base", "ingredients", "members", "sizing")
SIZING_MODES = ("narrow", "base")
MEMBER_KINDS = ("singles", "pairs", "leave_one_out", "all", "matched_singles")
MATCHED = "matched_singles"  # size-matched controls: made by matched_singles(), not design_members()


def read_yaml(path: Path) -> Any:
    return D.read_yaml(path, MixtureError, mapping=False)  # parse_mixture names a non-mapping


def design_members(ingredients: Sequence[str], kinds: Sequence[str]) -> dict[str, list[str]]:
    """Member name -> ingredient subset: singles, pairs, leave_one_out, all (duplicates dropped)."""
    ing = list(ingredients)
    out: dict[str, list[str]] = {}
    seen: set[frozenset[str]] = set()
    subsets = {
        "singles": lambda: [(a, [a]) for a in ing],
        "pairs": lambda: [(f"{a}+{b}", [a, b]) for a, b in itertools.combinations(ing, 2)],
        "leave_one_out": lambda: [(f"without-{a}", [x for x in ing if x != a]) for a in ing],
        "all": lambda: [("all", list(ing))],
    }
    for kind in kinds:
        if kind not in subsets:
            raise ValueError(f"unknown design member kind {V.short(kind)}")
        for name, members in subsets[kind]():
            key = frozenset(members)
            if members and key not in seen:
                seen.add(key)
                out[name] = members
    return out


def _static_count(comps: dict[str, Any], name: str, where: str) -> int:
    spec = comps[name]
    if "count" in spec:
        return int(spec["count"])
    if "relative_to" in spec:
        rel = spec["relative_to"]
        rel = [rel] if isinstance(rel, str) else rel
        total = sum(_static_count(comps, r, where) for r in rel)
        n = round_half_up(float(spec.get("factor", 1.0)) * total)
        if n > MAX_ROWS:
            raise err(where, f"components.{name}", f"resolves to {n} rows; at most {MAX_ROWS}")
        return n
    raise MixtureError(
        f"{where}: components.{name}: a design member lacks all components this "
        "size is relative to, and a fraction has no static count to fall back on"
    )


def _check_design(where: str, d: Any, comps: dict[str, Any], base_path: Path) -> tuple[list[str], list[str]]:
    """(ingredients, member kinds) of a design mapping, validated."""
    if "description" in d and V.description(d["description"]):
        raise err(where, "description", V.description(d["description"]) or "")
    ingredients = d.get("ingredients", list(comps))
    if not isinstance(ingredients, list) or not ingredients:
        raise err(where, "ingredients", f"expected a non-empty list, got {V.short(ingredients)}")
    for i in ingredients:
        if not isinstance(i, str):
            raise err(where, "ingredients", f"expected component names, got {V.short(i)}")
        if i not in comps:
            raise err(where, "ingredients", f"{V.short(i)} is not a component of {base_path}; components: {', '.join(comps)}")
    if V.duplicates(ingredients):
        raise err(where, "ingredients", V.duplicates(ingredients) or "")
    kinds = d.get("members", [k for k in MEMBER_KINDS if k != MATCHED])  # controls only when asked
    if (
        not isinstance(kinds, list)
        or not kinds
        or any(not isinstance(k, str) or k not in MEMBER_KINDS for k in kinds)
    ):
        raise err(where, "members", f"expected a list drawn from {list(MEMBER_KINDS)}, got {V.short(kinds)}")
    return ingredients, kinds


def _member_component(
    comps: dict[str, Any], c: str, subset: list[str], base_dir: Path, where: str, *, narrow: bool = True
) -> dict:
    spec = dict(comps[c])
    if isinstance(spec.get("dataset"), dict):  # members may be written elsewhere: absolute paths
        spec["dataset"] = DatasetSpec.rebase(spec["dataset"], base_dir)
    if narrow and "relative_to" in spec:
        rel = spec["relative_to"]
        rel = [rel] if isinstance(rel, str) else list(rel)
        present = [r for r in rel if r in subset]
        if present:
            spec["relative_to"] = present
        else:
            spec.pop("relative_to")
            spec.pop("factor", None)
            spec["count"] = _static_count(comps, c, where)
    return spec


def _sizing_only(comps: dict[str, Any], subset: list[str], base_dir: Path) -> dict[str, dict]:
    """`sizing: base`: the base components the subset's sizes depend on, as `emit: false`."""
    needed: list[str] = []
    todo = list(subset)
    while todo:
        spec = comps[todo.pop()]
        rel = spec.get("relative_to", [])
        for r in [rel] if isinstance(rel, str) else rel:
            if r not in subset and r not in needed:
                needed.append(r)
                todo.append(r)
    out = {}
    for c in (c for c in comps if c in needed):  # base order
        spec = dict(comps[c])
        if isinstance(spec.get("dataset"), dict):
            spec["dataset"] = DatasetSpec.rebase(spec["dataset"], base_dir)
        out[c] = {**spec, "emit": False}
    return out


def _member_components(comps: dict[str, Any], subset: list[str], base_dir: Path, where: str, sizing: str) -> dict:
    """A member's components: `narrow` narrows `relative_to`; `base` adds sizing-only components."""
    narrow = sizing == "narrow"
    out = {c: _member_component(comps, c, subset, base_dir, where, narrow=narrow) for c in subset}
    return out if narrow else {**out, **_sizing_only(comps, subset, base_dir)}


def generate_design(path: Path) -> dict[str, dict[str, Any]]:
    """Design file -> {member name: mixture mapping}. Deterministic; no data is read."""
    where = str(path)
    d = read_yaml(path)
    if not isinstance(d, dict):
        raise MixtureError(f"{where}: expected a mapping")
    extra = sorted(str(k) for k in set(d) - set(DESIGN_KEYS))
    if extra:
        hint = "".join(did_you_mean(x, DESIGN_KEYS) for x in extra)
        raise err(where, ", ".join(extra), f"unknown key(s); expected {', '.join(DESIGN_KEYS)}.{hint}")
    if not isinstance(d.get("base"), str) or V.path_name(d["base"]):
        raise err(where, "base", f"expected the path of the full mixture, relative to this file, got {V.short(d.get('base'))}")
    base_path = (path.parent / d["base"]).resolve()
    base = read_yaml(base_path)
    base_mix = parse_mixture(base, name=base_path.stem, path=base_path)  # validates the base
    comps = base["components"]
    ingredients, kinds = _check_design(where, d, comps, base_path)
    sizing = d.get("sizing", "narrow")
    if sizing not in SIZING_MODES:
        raise err(where, "sizing", f"expected one of {list(SIZING_MODES)}, got {V.short(sizing)}")
    out: dict[str, dict[str, Any]] = {}
    for mname, subset in design_members(ingredients, [k for k in kinds if k != MATCHED]).items():
        member = {k: v for k, v in base.items() if k not in ("components", "name", "description")}
        member["name"] = f"{d.get('design', path.stem)}/{mname}"
        member["components"] = _member_components(comps, subset, base_path.parent, where, sizing)
        member["_base"] = str(base_mix.path)
        out[mname] = member
    if MATCHED in kinds:
        for mname, components in matched_singles(ingredients, comps, base_path.parent, where).items():
            rest = {k: v for k, v in base.items() if k not in ("components", "name", "description")}
            out[mname] = {**rest, "name": f"{d.get('design', path.stem)}/{mname}", "components": components,
                          "_base": str(base_mix.path)}
    return out


def matched_name(ingredient: str, pair: str) -> str:
    return f"{ingredient}@{pair}"


def parse_matched(mixture: str) -> tuple[str, str] | None:
    """`DESIGN/A@A+B` -> (A, `DESIGN/A+B`): a size-matched single and the pair it matches."""
    prefix, _, last = mixture.rpartition("/")
    ingredient, sep, pair = last.partition("@")
    if not sep or not ingredient or not pair:
        return None
    return ingredient, f"{prefix}/{pair}" if prefix else pair


def matched_singles(ingredients: Sequence[str], comps: dict[str, Any], base_dir: Path,
                    where: str) -> dict[str, dict[str, Any]]:
    """Size-matched controls: for each pair A+B, members `A@A+B` and `B@A+B` train on one task
    alone with as many rows as the pair holds: the single's own rows (`pool`) repeated, so a pair
    can be compared with the same number of training steps on its first task only.

    Pair sizes are static: every component must be sized by `count` or `relative_to`.
    """
    out: dict[str, dict[str, Any]] = {}
    for a, b in itertools.combinations(list(ingredients), 2):
        pair = {c: _member_component(comps, c, [a, b], base_dir, where) for c in (a, b)}
        for c, spec in pair.items():
            if "fraction" in spec:
                raise err(where, "members", f"{MATCHED} needs static sizes, but components.{c} is sized by"
                          " 'fraction' (its row count depends on the data); use count or relative_to")
        total = sum(_static_count(pair, c, where) for c in (a, b))
        for single in (a, b):
            spec = {k: v for k, v in pair[single].items() if k not in ("count", "relative_to", "factor")}
            # the single's own rows (the first `own` by sampling key), repeated to the pair's size
            own = _static_count(pair, single, where)
            out[matched_name(single, f"{a}+{b}")] = {single: {**spec, "count": total, "pool": own,
                                                              "upsample": True}}
    return out
