"""Training mixtures: build one exact, reproducible JSONL of chat examples from a YAML recipe.

Axolotl concatenates datasets, only downsamples with `weight`, loses task identity and caches by
file name, so the project builds each mixture itself and hands Axolotl one file.

A mixture file (`mixtures/NAME.yaml`) names components. Each is either

- a finbench task (`task: fpb`): its train split, rendered by `finbench.tasks.training_messages`,
  i.e. by lm-eval's own few-shot turn builder, so training and evaluation prompts are identical; or
- an external instruction dataset (`dataset:`): a hub id at a pinned revision, the upstream files
  under `$FINBENCH_DATA_DIR/<raw.folder>/` (same convention as the tasks), or local JSONL/Parquet
  (`file:`), with a declared `format` (alpaca, sharegpt, messages, or an explicit
  {system, user, assistant} field mapping). Everything is streamed in Arrow batches: hub and JSON
  through `datasets` (streaming=True), local Parquet through pyarrow's record-batch reader.

Sizes: `count: N`, `fraction: F` (of the valid rows), or `relative_to: [components]` + `factor`
(the study sized OpenOrca = 1.0 x the finance total and Orca-Math = 0.5 x). A count above the valid
rows upsamples: every row `count // available` times plus a seeded remainder.

Selection is bottom-k by a seeded 64-bit hash of (seed, component name, row index): exact counts,
memory bounded by the rows kept (not by the source size), one streaming pass, no reservoir. Because
the key depends on the component name and not on the other components, mixtures of one design draw
nested samples: a smaller count of `fpb` is a subset of a larger one.

The output file name carries a hash over the spec, the seed, the builder code and every input
(data file hashes or hub revisions, task folders): a rebuild with nothing changed is a no-op, and
the same inputs give byte-identical output. Files are written to a temporary name and renamed.

Contamination guard: every dev and test item of every finbench task (or the mixture's list) is
checked against the training rows that are selected: normalised exact match of the text or prompt,
and n-gram overlap (default 13-grams, or the whole item when it is shorter but has at least
`min_tokens` words; a hit when at least half of an item's n-grams appear in one training row;
n-grams shared by more than `max_items_per_gram` items are boilerplate and ignored). `contamination: fail` (default) stops the build with a report, `drop` skips hits
(the next rows by hash take their place, so counts stay exact), `allow` keeps them and reports them.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import heapq
import itertools
import json
import math
import os
import re
import sys
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finbench import data as D
from finbench import hub as H
from finbench import tasks as T

ROOT = T.ROOT
MIXTURES_DIR = Path(os.environ.get("FINBENCH_MIXTURES_DIR", ROOT / "mixtures"))
DESIGNS_DIR_NAME = "designs"
DEFAULT_OUT = ROOT / "runs" / "mixtures"
BUILDER_VERSION = 1
BATCH = 2048
SIZE_KEYS = ("count", "fraction", "relative_to")
COMPONENT_KEYS = {"task", "dataset", "count", "fraction", "relative_to", "factor"}
DATASET_KEYS = {"hub", "raw", "file", "format", "streaming"}
TOP_KEYS = {"name", "description", "seed", "components", "contamination", "max_malformed"}
CONTAMINATION_MODES = ("fail", "drop", "allow")
PRESET_FORMATS = ("alpaca", "sharegpt", "messages")
ROLE_ALIASES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
}
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


class MixtureError(ValueError):
    """A bad mixture or design file, or input it names; the message names the file and key."""


# --------------------------------------------------------------------------------------------
# Spec


@dataclass(frozen=True)
class Size:
    count: int | None = None
    fraction: float | None = None
    relative_to: tuple[str, ...] = ()
    factor: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        if self.count is not None:
            return {"count": self.count}
        if self.fraction is not None:
            return {"fraction": self.fraction}
        return {"relative_to": list(self.relative_to), "factor": self.factor}


@dataclass(frozen=True)
class Component:
    name: str
    size: Size
    task: str | None = None
    dataset: dict[str, Any] | None = None  # normalised: hub/raw/file/format/streaming

    @property
    def kind(self) -> str:
        return "task" if self.task else "dataset"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task": self.task} if self.task else {"dataset": self.dataset}
        out.update(self.size.to_dict())
        return out


@dataclass
class Contamination:
    mode: str = "fail"
    tasks: tuple[str, ...] | None = None  # None: every finbench task
    ngram: int = 13
    min_overlap: float = 0.5
    min_tokens: int = 5
    max_items_per_gram: int = 10

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "tasks": "all" if self.tasks is None else list(self.tasks),
            "ngram": self.ngram,
            "min_overlap": self.min_overlap,
            "min_tokens": self.min_tokens,
            "max_items_per_gram": self.max_items_per_gram,
        }


@dataclass
class Mixture:
    name: str
    path: Path | None
    seed: int
    components: dict[str, Component]
    contamination: Contamination = field(default_factory=Contamination)
    max_malformed: float = 0.01
    description: str = ""

    @property
    def where(self) -> str:
        return str(self.path) if self.path else f"mixture {self.name!r}"

    def spec_dict(self) -> dict[str, Any]:
        """Everything that decides the output (the description does not)."""
        return {
            "seed": self.seed,
            "components": {k: c.to_dict() for k, c in self.components.items()},
            "contamination": self.contamination.to_dict(),
            "max_malformed": self.max_malformed,
        }


def _err(where: str, key: str, msg: str) -> MixtureError:
    return MixtureError(f"{where}: {key}: {msg}")


def _number(where: str, key: str, value: Any, *, integer: bool = False) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _err(where, key, f"expected a {'whole ' if integer else ''}number, got {value!r}")
    if integer and (not float(value).is_integer()):
        raise _err(where, key, f"expected a whole number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise _err(where, key, f"expected a positive number, got {value!r}")
    return int(value) if integer else float(value)


def _parse_format(where: str, key: str, fmt: Any) -> dict[str, Any]:
    if isinstance(fmt, str):
        fmt = {"type": fmt}
    if not isinstance(fmt, dict) or not fmt:
        raise _err(
            where,
            key,
            f"expected one of {list(PRESET_FORMATS)} or a field mapping "
            f"{{system?, user, assistant}}, got {fmt!r}",
        )
    if "type" in fmt:
        kind = fmt["type"]
        if kind not in PRESET_FORMATS:
            raise _err(where, f"{key}.type", f"expected one of {list(PRESET_FORMATS)}, got {kind!r}")
        allowed = {"type", "field"} if kind != "alpaca" else {"type"}
        extra = set(fmt) - allowed
        if extra:
            raise _err(where, key, f"unknown key(s) {sorted(extra)} for format {kind!r}")
        default_field = {"sharegpt": "conversations", "messages": "messages"}.get(kind)
        out = {"type": kind}
        if default_field:
            out["field"] = str(fmt.get("field", default_field))
        return out
    extra = set(fmt) - {"system", "user", "assistant"}
    if extra:
        raise _err(
            where,
            key,
            f"unknown field-mapping key(s) {sorted(extra)}; expected system (optional), user, assistant",
        )
    for need in ("user", "assistant"):
        if not isinstance(fmt.get(need), str) or not fmt[need]:
            raise _err(where, f"{key}.{need}", f"expected a column name, got {fmt.get(need)!r}")
    if "system" in fmt and not isinstance(fmt["system"], str):
        raise _err(where, f"{key}.system", f"expected a column name, got {fmt['system']!r}")
    return {"type": "fields", **{k: fmt[k] for k in ("system", "user", "assistant") if k in fmt}}


def _parse_dataset(where: str, key: str, ds: Any, base_dir: Path) -> dict[str, Any]:
    if not isinstance(ds, dict):
        raise _err(where, key, f"expected a mapping with hub/raw/file and format, got {ds!r}")
    extra = set(ds) - DATASET_KEYS
    if extra:
        raise _err(where, key, f"unknown key(s) {sorted(extra)}; expected {sorted(DATASET_KEYS)}")
    if not any(k in ds for k in ("hub", "raw", "file")):
        raise _err(where, key, "expected at least one source: hub, raw or file")
    if "format" not in ds:
        raise _err(
            where,
            f"{key}.format",
            "missing; declare alpaca, sharegpt, messages or a field mapping {system?, user, assistant}",
        )
    out: dict[str, Any] = {"format": _parse_format(where, f"{key}.format", ds["format"])}
    out["streaming"] = bool(ds.get("streaming", True))
    if "file" in ds:
        files = ds["file"] if isinstance(ds["file"], list) else [ds["file"]]
        if not files or not all(isinstance(f, str) and f for f in files):
            raise _err(where, f"{key}.file", f"expected a path or a list of paths, got {ds['file']!r}")
        paths = [str((base_dir / f).resolve()) if not Path(f).is_absolute() else f for f in files]
        _check_ext(where, f"{key}.file", paths)
        out["file"] = paths
    if "hub" in ds:
        hub = ds["hub"]
        if isinstance(hub, str):
            hub = {"path": hub}
        if not isinstance(hub, dict) or not isinstance(hub.get("path"), str):
            raise _err(where, f"{key}.hub", f"expected {{path, revision, split?, name?}}, got {hub!r}")
        if not isinstance(hub.get("revision"), str) or not hub["revision"]:
            raise _err(where, f"{key}.hub.revision", "missing: pin the hub dataset's revision")
        extra = set(hub) - {"path", "revision", "split", "name"}
        if extra:
            raise _err(where, f"{key}.hub", f"unknown key(s) {sorted(extra)}")
        out["hub"] = {"split": "train", **hub}
    if "raw" in ds:
        raw = ds["raw"]
        files = raw.get("files") if isinstance(raw, dict) else None
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("folder"), str)
            or not isinstance(files, list)
            or not files
        ):
            raise _err(where, f"{key}.raw", f"expected {{folder, files: [...]}}, got {raw!r}")
        _check_ext(where, f"{key}.raw.files", files)
        out["raw"] = {"folder": raw["folder"], "files": [str(f) for f in files]}
    return out


def _check_ext(where: str, key: str, files: Sequence[str]) -> None:
    for f in files:
        if _builder_for(f) is None:
            raise _err(where, key, f"{f!r}: expected a .jsonl, .json or .parquet file")


def _builder_for(path: str) -> str | None:
    p = path.lower()
    if p.endswith((".jsonl", ".json", ".jsonl.gz", ".json.gz")):
        return "json"
    if p.endswith(".parquet"):
        return "parquet"
    return None


def parse_mixture(
    data: Any, *, name: str, path: Path | None = None, known_tasks: Iterable[str] | None = None
) -> Mixture:
    """Validate a mixture mapping (from YAML) statically: no data is read."""
    where = str(path) if path else f"mixture {name!r}"
    if not isinstance(data, dict):
        raise MixtureError(f"{where}: expected a mapping at the top level, got {type(data).__name__}")
    extra = set(data) - TOP_KEYS
    if extra:
        raise _err(where, ", ".join(sorted(extra)), f"unknown key(s); expected {sorted(TOP_KEYS)}")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise _err(where, "seed", f"expected a non-negative integer, got {seed!r}")
    comps_raw = data.get("components")
    if not isinstance(comps_raw, dict) or not comps_raw:
        raise _err(where, "components", "expected a non-empty mapping of name -> component")
    known = set(known_tasks) if known_tasks is not None else set(T.discover())
    base_dir = path.parent if path else Path.cwd()
    comps: dict[str, Component] = {}
    for cname, spec in comps_raw.items():
        key = f"components.{cname}"
        if not isinstance(cname, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", cname):
            raise _err(where, key, "component names may use letters, digits, '_', '.', '-'")
        if not isinstance(spec, dict):
            raise _err(where, key, f"expected a mapping, got {spec!r}")
        extra = set(spec) - COMPONENT_KEYS
        if extra:
            raise _err(where, key, f"unknown key(s) {sorted(extra)}; expected {sorted(COMPONENT_KEYS)}")
        if ("task" in spec) == ("dataset" in spec):
            raise _err(where, key, "expected exactly one of task or dataset")
        sizes = [k for k in SIZE_KEYS if k in spec]
        if len(sizes) != 1:
            raise _err(where, key, f"expected exactly one size key of {list(SIZE_KEYS)}, got {sizes}")
        if "factor" in spec and "relative_to" not in spec:
            raise _err(where, f"{key}.factor", "only valid with relative_to")
        if "count" in spec:
            size = Size(count=int(_number(where, f"{key}.count", spec["count"], integer=True)))
        elif "fraction" in spec:
            size = Size(fraction=float(_number(where, f"{key}.fraction", spec["fraction"])))
        else:
            rel = spec["relative_to"]
            rel = [rel] if isinstance(rel, str) else rel
            if not isinstance(rel, list) or not rel or not all(isinstance(r, str) for r in rel):
                raise _err(where, f"{key}.relative_to", f"expected a list of component names, got {rel!r}")
            factor = float(_number(where, f"{key}.factor", spec.get("factor", 1.0)))
            size = Size(relative_to=tuple(rel), factor=factor)
        if "task" in spec:
            task = spec["task"]
            if not isinstance(task, str) or task not in known:
                import difflib

                close = difflib.get_close_matches(str(task), known, n=3)
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                raise _err(
                    where,
                    f"{key}.task",
                    f"unknown finbench task {task!r}.{hint} Known: {', '.join(sorted(known))}",
                )
            comps[cname] = Component(cname, size, task=task)
        else:
            ds = _parse_dataset(where, f"{key}.dataset", spec["dataset"], base_dir)
            comps[cname] = Component(cname, size, dataset=ds)
    for c in comps.values():
        for r in c.size.relative_to:
            if r not in comps:
                raise _err(
                    where,
                    f"components.{c.name}.relative_to",
                    f"unknown component {r!r}; components: {', '.join(comps)}",
                )
    _check_cycles(where, comps)

    cont = Contamination()
    craw = data.get("contamination", "fail")
    if isinstance(craw, str):
        craw = {"mode": craw}
    if not isinstance(craw, dict):
        raise _err(where, "contamination", f"expected a mode {list(CONTAMINATION_MODES)} or a mapping")
    extra = set(craw) - {
        "mode",
        "tasks",
        "ngram",
        "min_overlap",
        "min_tokens",
        "max_items_per_gram",
    }
    if extra:
        raise _err(where, "contamination", f"unknown key(s) {sorted(extra)}")
    cont.mode = craw.get("mode", "fail")
    if cont.mode not in CONTAMINATION_MODES:
        raise _err(
            where,
            "contamination.mode",
            f"expected one of {list(CONTAMINATION_MODES)}, got {cont.mode!r}",
        )
    tasks = craw.get("tasks", "all")
    if tasks != "all":
        if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
            raise _err(where, "contamination.tasks", f"expected 'all' or a list of tasks, got {tasks!r}")
        for t in tasks:
            if t not in known:
                raise _err(where, "contamination.tasks", f"unknown finbench task {t!r}")
        cont.tasks = tuple(tasks)
    cont.ngram = int(_number(where, "contamination.ngram", craw.get("ngram", 13), integer=True))
    cont.min_overlap = float(_number(where, "contamination.min_overlap", craw.get("min_overlap", 0.5)))
    if cont.min_overlap > 1:
        raise _err(
            where,
            "contamination.min_overlap",
            f"expected a fraction in (0, 1], got {cont.min_overlap}",
        )
    cont.min_tokens = int(_number(where, "contamination.min_tokens", craw.get("min_tokens", 5), integer=True))
    cont.max_items_per_gram = int(
        _number(
            where,
            "contamination.max_items_per_gram",
            craw.get("max_items_per_gram", 10),
            integer=True,
        )
    )
    max_bad = data.get("max_malformed", 0.01)
    if isinstance(max_bad, bool) or not isinstance(max_bad, int | float) or not 0 <= max_bad <= 1:
        raise _err(where, "max_malformed", f"expected a fraction in [0, 1], got {max_bad!r}")
    desc = data.get("description", "")
    mname = data.get("name", name)
    if not isinstance(mname, str) or not mname:
        raise _err(where, "name", f"expected a non-empty string, got {mname!r}")
    return Mixture(mname, path, seed, comps, cont, float(max_bad), str(desc or ""))


def _check_cycles(where: str, comps: dict[str, Component]) -> None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = trail[trail.index(name) :] + [name]
            raise _err(
                where,
                f"components.{name}.relative_to",
                f"circular relative sizes: {' -> '.join(cycle)}",
            )
        state[name] = 1
        for r in comps[name].size.relative_to:
            visit(r, trail + [name])
        state[name] = 2

    for n in comps:
        visit(n, [])


def _read_yaml(path: Path) -> Any:
    return D.read_yaml(path, MixtureError, mapping=False)  # parse_mixture names a non-mapping


def list_mixtures(mixtures_dir: Path | None = None) -> list[str]:
    d = Path(mixtures_dir or MIXTURES_DIR)
    names = sorted(p.stem for p in d.glob("*.yaml"))
    for design in sorted((d / DESIGNS_DIR_NAME).glob("*.yaml")):
        names += [f"{design.stem}/{m}" for m in generate_design(design)]
    return names


def load_mixture(name: str, mixtures_dir: Path | None = None) -> Mixture:
    """A mixture by file path, by name (`mixtures/NAME.yaml`) or design member (`DESIGN/MEMBER`)."""
    d = Path(mixtures_dir or MIXTURES_DIR)
    as_path = Path(name)
    if name.endswith((".yaml", ".yml")):
        if not as_path.is_file():
            raise MixtureError(f"{as_path}: mixture file missing")
        return parse_mixture(_read_yaml(as_path), name=as_path.stem, path=as_path.resolve())
    path = d / f"{name}.yaml"
    if path.is_file():
        return parse_mixture(_read_yaml(path), name=name, path=path)
    if "/" in name:
        design, member = name.split("/", 1)
        dpath = d / DESIGNS_DIR_NAME / f"{design}.yaml"
        if dpath.is_file():
            members = generate_design(dpath)
            if member not in members:
                raise MixtureError(f"{dpath}: no member {member!r}; members: {', '.join(members)}")
            base = Path(members[member].pop("_base"))
            return parse_mixture(members[member], name=name, path=base)
    known = ", ".join(list_mixtures(d)) if d.is_dir() else "(none)"
    raise MixtureError(f"unknown mixture {name!r}: no {path}. Known: {known}")


# --------------------------------------------------------------------------------------------
# Design generator


def design_members(ingredients: Sequence[str], kinds: Sequence[str]) -> dict[str, list[str]]:
    """Member name -> ingredient subset: singles, pairs, leave_one_out, all (duplicates dropped)."""
    ing = list(ingredients)
    out: dict[str, list[str]] = {}
    seen: set[frozenset[str]] = set()

    def add(name: str, members: list[str]) -> None:
        key = frozenset(members)
        if members and key not in seen:
            seen.add(key)
            out[name] = members

    for kind in kinds:
        if kind == "singles":
            for a in ing:
                add(a, [a])
        elif kind == "pairs":
            for a, b in itertools.combinations(ing, 2):
                add(f"{a}+{b}", [a, b])
        elif kind == "leave_one_out":
            for a in ing:
                add(f"without-{a}", [x for x in ing if x != a])
        elif kind == "all":
            add("all", list(ing))
        else:
            raise ValueError(f"unknown design member kind {kind!r}")
    return out


def _static_count(comps: dict[str, Any], name: str, where: str) -> int:
    spec = comps[name]
    if "count" in spec:
        return int(spec["count"])
    if "relative_to" in spec:
        rel = spec["relative_to"]
        rel = [rel] if isinstance(rel, str) else rel
        total = sum(_static_count(comps, r, where) for r in rel)
        return _round(float(spec.get("factor", 1.0)) * total)
    raise MixtureError(
        f"{where}: components.{name}: a design member lacks all components this "
        "size is relative to, and a fraction has no static count to fall back on"
    )


def generate_design(path: Path) -> dict[str, dict[str, Any]]:
    """Design file -> {member name: mixture mapping}. Deterministic; no data is read.

    The design names a base mixture and its ingredients. Each member keeps the base's seed,
    contamination policy and each ingredient's size. A `relative_to` list is narrowed to the
    ingredients present; when none is present (e.g. `openorca` alone) the size falls back to the
    count it has in the full base mixture, so an ingredient has the same size in every member
    where it cannot be sized relative to the others.
    """
    where = str(path)
    d = _read_yaml(path)
    if not isinstance(d, dict):
        raise MixtureError(f"{where}: expected a mapping")
    extra = set(d) - {"design", "description", "base", "ingredients", "members"}
    if extra:
        raise _err(
            where,
            ", ".join(sorted(extra)),
            "unknown key(s); expected design, description, base, ingredients, members",
        )
    if not isinstance(d.get("base"), str):
        raise _err(where, "base", "expected the path of the full mixture, relative to this file")
    base_path = (path.parent / d["base"]).resolve()
    base = _read_yaml(base_path)
    base_mix = parse_mixture(base, name=base_path.stem, path=base_path)  # validates the base
    comps = base["components"]
    ingredients = d.get("ingredients", list(comps))
    if not isinstance(ingredients, list) or not ingredients:
        raise _err(where, "ingredients", f"expected a non-empty list, got {ingredients!r}")
    for i in ingredients:
        if i not in comps:
            raise _err(
                where,
                "ingredients",
                f"{i!r} is not a component of {base_path}; components: {', '.join(comps)}",
            )
    if len(set(ingredients)) != len(ingredients):
        raise _err(where, "ingredients", "duplicate ingredient")
    kinds = d.get("members", ["singles", "pairs", "leave_one_out", "all"])
    valid = ("singles", "pairs", "leave_one_out", "all")
    if not isinstance(kinds, list) or not kinds or any(k not in valid for k in kinds):
        raise _err(where, "members", f"expected a list drawn from {list(valid)}, got {kinds!r}")
    out: dict[str, dict[str, Any]] = {}
    for mname, subset in design_members(ingredients, kinds).items():
        mcomps: dict[str, Any] = {}
        for c in subset:
            spec = dict(comps[c])
            ds = spec.get("dataset")
            if isinstance(ds, dict) and "file" in ds:  # members may be written elsewhere
                files = ds["file"] if isinstance(ds["file"], list) else [ds["file"]]
                spec["dataset"] = {**ds, "file": [str((base_path.parent / f).resolve()) for f in files]}
            if "relative_to" in spec:
                rel = spec["relative_to"]
                rel = [rel] if isinstance(rel, str) else list(rel)
                present = [r for r in rel if r in subset]
                if present:
                    spec["relative_to"] = present
                else:
                    spec.pop("relative_to")
                    spec.pop("factor", None)
                    spec["count"] = _static_count(comps, c, where)
            mcomps[c] = spec
        member = {k: v for k, v in base.items() if k not in ("components", "name", "description")}
        member["name"] = f"{d.get('design', path.stem)}/{mname}"
        member["components"] = mcomps
        member["_base"] = str(base_mix.path)
        out[mname] = member
    return out


# --------------------------------------------------------------------------------------------
# Sources


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tree_digest(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {
        str(p.relative_to(folder)): _sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def task_fingerprint(task: str) -> dict[str, Any]:
    """What decides a task's rows: its folder (YAML, utils.py), shared templates, its data."""
    info = T.get_info(task)
    fp: dict[str, Any] = {"task": task, "folder": _tree_digest(info.yaml_path.parent)}
    fp["templates"] = _tree_digest(ROOT / "eval_plugins" / "templates")
    root = D.data_dir()
    raw = info.source.get("raw") or {}
    if root is not None:
        folder = raw.get("folder", info.folder)
        fp["data"] = {"dir": folder, "files": _tree_digest(root / folder)}
    else:
        fp["data"] = {"hub": H.record(info.source.get("hub") or {}, with_mirror=False)}
    return fp


class Source:
    """Rows of one component in a fixed order, as chat messages (or why a row is malformed)."""

    total: int | None = None  # rows in the source, when known without a pass

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def batches(self) -> Iterator[list[dict[str, Any]]]:
        raise NotImplementedError

    def render(self, row: dict[str, Any]) -> tuple[list[dict[str, str]] | None, str]:
        raise NotImplementedError

    def guard_texts(self, row: dict[str, Any], messages: list[dict[str, str]]) -> tuple[list[str], str]:
        """(extra texts for the exact-match check, the user text for exact and n-gram checks)."""
        return [], "\n".join(m["content"] for m in messages if m["role"] == "user")


class TaskSource(Source):
    def __init__(self, task_name: str) -> None:
        self.task_name = task_name
        self._task = None
        self.docs: list[dict[str, Any]] = []

    def load(self, loaded: dict[str, Any] | None = None) -> None:
        """Load the task's data (seconds); done after the up-to-date check."""
        if self._task is None:
            self._task = _task(self.task_name, loaded)
            self.docs = T.split_docs(self._task, "train")
            self.total = len(self.docs)

    def describe(self) -> dict[str, Any]:
        info = T.get_info(self.task_name)
        root = D.data_dir()
        raw = info.source.get("raw") or {}
        if root is not None:
            folder = root / raw.get("folder", info.folder)
            src = {
                "type": "task",
                "task": self.task_name,
                "split": "train",
                "raw_dir": str(folder),
                "files": _tree_digest(folder),
            }
        else:
            src = {
                "type": "task",
                "task": self.task_name,
                "split": "train",
                "hub": H.record(info.source.get("hub") or {}),
            }
        return src

    def batches(self) -> Iterator[list[dict[str, Any]]]:
        for i in range(0, len(self.docs), BATCH):
            yield self.docs[i : i + BATCH]

    def render(self, row: dict[str, Any]) -> tuple[list[dict[str, str]] | None, str]:
        return T.training_messages(self._task, row), ""

    def guard_texts(self, row, messages):
        user = "\n".join(m["content"] for m in messages if m["role"] == "user")
        return ([row["text"]] if isinstance(row.get("text"), str) else []), user


class DatasetSource(Source):
    def __init__(self, comp: Component, where: str) -> None:
        self.comp = comp
        self.where = where
        self.key = f"components.{comp.name}.dataset"
        ds = comp.dataset or {}
        self.fmt = ds["format"]
        self.streaming = ds.get("streaming", True)
        self.files: list[Path] = []
        self.hub: dict[str, Any] | None = None
        root = D.data_dir()
        if "file" in ds:
            self.files = [Path(f) for f in ds["file"]]
            self.origin = "file"
        elif "raw" in ds and root is not None:
            self.files = [root / ds["raw"]["folder"] / f for f in ds["raw"]["files"]]
            self.origin = "raw"
        elif "hub" in ds:
            self.hub = dict(ds["hub"])
            self.origin = "hub"
        else:
            raise _err(
                where,
                f"{self.key}.raw",
                f"{D.DATA_DIR_ENV} is not set and no hub source is declared",
            )
        for f in self.files:
            if not f.is_file():
                raise _err(where, f"{self.key}.{self.origin}", f"{f}: missing")
        self.total = self._count_hint()

    def _count_hint(self) -> int | None:
        if self.files and all(_builder_for(str(f)) == "parquet" for f in self.files):
            import pyarrow.parquet as pq

            try:
                return sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)
            except Exception as err:
                raise _err(self.where, f"{self.key}.{self.origin}", f"cannot read Parquet: {err}") from err
        return None

    def describe(self) -> dict[str, Any]:
        if self.hub is not None:
            out = {"type": "hub", **H.record(self.hub)}
            if not out.get("sha"):
                out["warning"] = "not locked to a commit sha: run `finbench data lock` for a reproducible run"
            return out
        return {
            "type": self.origin,
            "files": {str(f): _sha256_file(f) for f in self.files},
            "format": self.fmt,
        }

    def fingerprint(self) -> dict[str, Any]:
        if self.hub is not None:
            return {"hub": H.record(self.hub, with_mirror=False), "format": self.fmt}
        return {"files": [_sha256_file(f) for f in self.files], "format": self.fmt}

    def _dataset(self):
        import datasets

        datasets.disable_progress_bars()
        try:
            if self.hub is not None:
                return H.load_dataset(
                    self.hub["path"],
                    name=self.hub.get("name"),
                    revision=self.hub["revision"],
                    split=self.hub.get("split", "train"),
                    streaming=self.streaming,
                )
            builder = _builder_for(str(self.files[0]))
            if any(_builder_for(str(f)) != builder for f in self.files):
                raise _err(self.where, f"{self.key}.{self.origin}", "mixes JSON and Parquet files")
            return datasets.load_dataset(
                builder,
                data_files=[str(f) for f in self.files],
                split="train",
                streaming=self.streaming,
            )
        except MixtureError:
            raise
        except Exception as err:  # datasets raises many types; name the key and the cause
            raise _err(
                self.where, f"{self.key}.{self.origin}", f"cannot load: {type(err).__name__}: {err}"
            ) from err

    def check_schema(self) -> None:
        """Peek at the first row so a wrong format fails before the expensive pass."""
        for batch in self.batches(first_only=True):
            if not batch:
                break
            cols = set(batch[0])
            need = [v for k, v in self.fmt.items() if k in ("user", "assistant", "system", "field")]
            if self.fmt["type"] == "alpaca":
                need = ["instruction", "output"]
            missing = [c for c in need if c not in cols]
            if missing:
                raise _err(
                    self.where,
                    f"{self.key}.format",
                    f"column(s) {missing} not in the data (found {sorted(cols)})",
                )
            return
        raise _err(self.where, f"{self.key}.{self.origin}", "the source has no rows")

    def batches(self, first_only: bool = False) -> Iterator[list[dict[str, Any]]]:
        for tb in self.arrow_batches(first_only):
            yield tb.to_pylist()

    def arrow_batches(self, first_only: bool = False) -> Iterator[Any]:
        """Arrow record batches / tables of BATCH rows, in source order."""
        size = 1 if first_only else BATCH
        if self.files and all(_builder_for(str(f)) == "parquet" for f in self.files):
            # Local Parquet: pyarrow record batches (the reader `datasets` itself uses), same rows
            # in the same order, without datasets' per-row formatting (~20x faster here).
            import pyarrow.parquet as pq

            for f in self.files:
                try:
                    for rb in pq.ParquetFile(f).iter_batches(batch_size=size):
                        yield rb
                        if first_only:
                            return
                except Exception as err:
                    raise _err(
                        self.where,
                        f"{self.key}.{self.origin}",
                        f"{f}: cannot read Parquet: {type(err).__name__}: {err}",
                    ) from err
            return
        ds = self._dataset()
        try:
            for tb in ds.with_format("arrow").iter(batch_size=size):
                yield tb
                if first_only:
                    return
        except MixtureError:
            raise
        except Exception as err:
            raise _err(
                self.where,
                f"{self.key}.{self.origin}",
                f"cannot read rows: {type(err).__name__}: {err}",
            ) from err

    def validate(self, tb) -> tuple[Any, list[tuple[str, Any]]]:
        """(valid mask, [(reason, mask of rows failing first for it)]) for one Arrow batch.

        Column formats (field mapping, alpaca) are checked vectorised, so the rows that are not
        kept never become Python objects; chat formats fall back to rendering each row.
        """
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        n = tb.num_rows
        if self.fmt["type"] not in ("fields", "alpaca"):
            fails: dict[str, Any] = {}
            for j, row in enumerate(tb.to_pylist()):
                msgs, why = render_row(self.fmt, row)
                if msgs is None:
                    fails.setdefault(why, np.zeros(n, dtype=bool))[j] = True
            bad = np.zeros(n, dtype=bool)
            for m in fails.values():
                bad |= m
            return ~bad, list(fails.items())
        if self.fmt["type"] == "fields":
            required = [self.fmt["user"], self.fmt["assistant"]]
            optional = [self.fmt["system"]] if "system" in self.fmt else []
        else:
            required, optional = ["instruction", "output"], ["input", "system"]
        valid = np.ones(n, dtype=bool)
        reasons: list[tuple[str, Any]] = []

        def is_str(t) -> bool:
            return pa.types.is_string(t) or pa.types.is_large_string(t)

        names = tb.schema.names
        for col in required:
            if col not in names or not is_str(tb.schema.field(col).type):
                ok = np.zeros(n, dtype=bool)
            else:
                length = pc.utf8_length(pc.utf8_trim_whitespace(tb.column(col)))
                ok = pc.fill_null(pc.greater(length, 0), False).to_numpy(zero_copy_only=False)
            fail = valid & ~ok
            if fail.any():
                reasons.append((f"{col!r} missing or empty", fail))
            valid &= ok
        for col in optional:
            if col in names:
                t = tb.schema.field(col).type
                if not (is_str(t) or pa.types.is_null(t)):
                    fail = valid.copy()
                    if fail.any():
                        reasons.append((f"{col!r} is not a string", fail))
                    valid[:] = False
        return valid, reasons

    def render(self, row: dict[str, Any]) -> tuple[list[dict[str, str]] | None, str]:
        return render_row(self.fmt, row)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def render_row(fmt: dict[str, Any], row: dict[str, Any]) -> tuple[list[dict[str, str]] | None, str]:
    """Chat messages for one external row, or (None, reason) when it is malformed."""
    kind = fmt["type"]
    msgs: list[dict[str, str]] = []
    if kind == "fields":
        for role in ("system", "user", "assistant"):
            col = fmt.get(role)
            if col is None:
                continue
            value = row.get(col)
            if role == "system":
                if value is None or (isinstance(value, str) and not value.strip()):
                    continue  # OpenOrca leaves many system prompts empty
                if not isinstance(value, str):
                    return None, f"{col!r} is not a string"
            elif _text(value) is None:
                return None, f"{col!r} missing or empty"
            msgs.append({"role": role, "content": value})
        return msgs, ""
    if kind == "alpaca":
        instr, inp, out = row.get("instruction"), row.get("input"), row.get("output")
        if _text(instr) is None:
            return None, "'instruction' missing or empty"
        if _text(out) is None:
            return None, "'output' missing or empty"
        if inp is not None and not isinstance(inp, str):
            return None, "'input' is not a string"
        system = row.get("system")
        if _text(system):
            msgs.append({"role": "system", "content": system})
        user = f"{instr}\n\n{inp}" if inp and inp.strip() else instr
        return msgs + [{"role": "user", "content": user}, {"role": "assistant", "content": out}], ""
    # sharegpt / messages
    turns = row.get(fmt["field"])
    if not isinstance(turns, list) or not turns:
        return None, f"{fmt['field']!r} missing or not a non-empty list"
    rk, ck = ("from", "value") if kind == "sharegpt" else ("role", "content")
    for t in turns:
        if not isinstance(t, dict):
            return None, f"{fmt['field']!r} holds a non-mapping turn"
        role = ROLE_ALIASES.get(str(t.get(rk, "")).lower())
        if role is None:
            return None, f"unknown role {t.get(rk)!r}"
        content = t.get(ck)
        if not isinstance(content, str):
            return None, f"turn {rk}={t.get(rk)!r} has no string {ck!r}"
        if role == "system" and msgs:
            return None, "system turn after the first turn"
        msgs.append({"role": role, "content": content})
    roles = [m["role"] for m in msgs]
    if "user" not in roles or roles[-1] != "assistant":
        return None, "needs a user turn and must end with an assistant turn"
    if not all(m["content"].strip() for m in msgs if m["role"] != "system"):
        return None, "empty user or assistant turn"
    return msgs, ""


# --------------------------------------------------------------------------------------------
# Hashing and selection

_MASK = (1 << 64) - 1


def _salt(*parts: Any) -> int:
    data = json.dumps(parts, sort_keys=True).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def row_keys(salt: int, start: int, n: int):
    """Sampling keys of rows start..start+n: splitmix64(salt + index), vectorised, portable."""
    import numpy as np

    with np.errstate(over="ignore"):
        z = np.arange(start, start + n, dtype=np.uint64) + np.uint64(salt)
        z = z * np.uint64(0x9E3779B97F4A7C15) + np.uint64(0x632BE59BD9B4E5F)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


# --------------------------------------------------------------------------------------------
# Contamination guard

_WORD = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def normalise(text: str) -> str:
    return " ".join(tokens(text))


@dataclass
class EvalItem:
    task: str
    split: str
    id: str
    text: str
    prompts: tuple[str, ...] = ()


class ContaminationIndex:
    """Dev/test items of finbench tasks, indexed for exact and n-gram lookups of training rows."""

    _P = 0x100000001B3  # FNV prime; any odd multiplier works: hits are verified on the tokens

    def __init__(self, items: list[EvalItem], cfg: Contamination) -> None:
        import numpy as np

        self.items = items
        self.cfg = cfg
        self.exact: dict[str, list[int]] = defaultdict(list)
        self.vocab: dict[str, int] = {}
        self.item_ids: list[list[int]] = []
        grams: dict[int, dict[int, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
        for i, item in enumerate(items):
            toks = tokens(item.text)
            self.exact[" ".join(toks)].append(i)
            for prompt in item.prompts:
                self.exact[normalise(prompt)].append(i)
            ids = [self.vocab.setdefault(t, len(self.vocab) + 1) for t in toks]
            self.item_ids.append(ids)
            if len(ids) < cfg.min_tokens:
                continue
            L = min(cfg.ngram, len(ids))
            arr = np.asarray(ids, dtype=np.uint64)
            for pos, h in enumerate(self._hash(arr, L).tolist()):
                grams[L][h].append((i, pos))
        self.need: list[int] = [0] * len(items)
        kept: dict[int, dict[int, list[tuple[int, int]]]] = {}
        for L, table in grams.items():
            # n-grams shared by many items are boilerplate (disclaimers, table headers), not leaks
            kept[L] = {
                h: occ for h, occ in table.items() if len({i for i, _ in occ}) <= cfg.max_items_per_gram
            }
            for occ in kept[L].values():
                for i in {i for i, _ in occ}:
                    self.need[i] += 1
        self.need = [math.ceil(cfg.min_overlap * n) if n else 0 for n in self.need]
        self.grams = kept
        self.sorted = {
            L: np.sort(np.fromiter(t.keys(), dtype=np.uint64, count=len(t))) for L, t in kept.items()
        }

    def _hash(self, arr, L: int):
        import numpy as np
        from numpy.lib.stride_tricks import sliding_window_view

        if len(arr) < L:
            return np.zeros(0, dtype=np.uint64)
        pows = np.array([pow(self._P, L - 1 - j, 1 << 64) for j in range(L)], dtype=np.uint64)
        with np.errstate(over="ignore"):
            return (sliding_window_view(arr, L) * pows).sum(axis=1, dtype=np.uint64)

    def check(self, exact_texts: list[list[str]], gram_texts: list[str]) -> list[list[dict[str, Any]]]:
        """Hits per training row: [{task, split, id, match, overlap}]."""
        import numpy as np

        out: list[list[dict[str, Any]]] = [[] for _ in gram_texts]
        found: list[dict[int, dict[str, Any]]] = [{} for _ in gram_texts]
        row_toks = [tokens(t) for t in gram_texts]
        for r, (extra, toks) in enumerate(zip(exact_texts, row_toks, strict=True)):
            for norm in [" ".join(toks)] + [normalise(t) for t in extra]:
                for i in self.exact.get(norm, ()):
                    found[r][i] = {"match": "exact", "overlap": 1.0}
        if self.sorted:
            vocab = self.vocab
            row_ids = [[vocab.get(t, 0) for t in toks] for toks in row_toks]
            offsets = np.cumsum([0] + [len(x) + 1 for x in row_ids])
            flat = np.fromiter(
                itertools.chain.from_iterable(x + [0] for x in row_ids),
                dtype=np.uint64,
                count=int(offsets[-1]),
            )
            matched: dict[tuple[int, int], set[int]] = defaultdict(set)  # (row, item) -> gram pos
            for L, keys in self.sorted.items():
                h = self._hash(flat, L)
                if not len(h) or not len(keys):
                    continue
                pos = np.searchsorted(keys, h)
                pos[pos >= len(keys)] = 0
                for w in np.nonzero(keys[pos] == h)[0].tolist():
                    r = int(np.searchsorted(offsets, w, side="right") - 1)
                    window = flat[w : w + L].tolist()
                    for i, ipos in self.grams[L][int(h[w])]:
                        if self.item_ids[i][ipos : ipos + L] == window:  # verify: no hash collision
                            matched[(r, i)].add(ipos)
            for (r, i), poss in matched.items():
                if i in found[r] or not self.need[i]:
                    continue
                if len(poss) >= self.need[i]:
                    total = len(self.item_ids[i]) - min(self.cfg.ngram, len(self.item_ids[i])) + 1
                    found[r][i] = {"match": "ngram", "overlap": round(len(poss) / max(total, 1), 3)}
        for r, hits in enumerate(found):
            for i, h in sorted(hits.items()):
                it = self.items[i]
                out[r].append({"task": it.task, "split": it.split, "id": it.id, **h})
        return out


def guard_tasks(mix: Mixture) -> list[str]:
    """One task per task folder (variants share their data), default (generative) variant first."""
    infos = T.discover()
    names = list(mix.contamination.tasks) if mix.contamination.tasks is not None else sorted(infos)
    by_folder: dict[str, str] = {}
    for n in sorted(names, key=lambda n: (not infos[n].is_default_variant, n)):
        by_folder.setdefault(infos[n].folder, n)
    return sorted(by_folder.values())


@contextlib.contextmanager
def _cached_lm_eval_templates() -> Iterator[None]:
    """Cache lm-eval's Jinja compilation for the length of a build.

    lm-eval 0.4.13 compiles a prompt template on every `doc_to_text` / `doc_to_target` call
    (`utils.apply_template` -> `env.from_string`), about 1 ms each: 30 s for the paper cocktail's
    finance rows. Compiled templates are immutable, so caching them on lm-eval's own Environment
    gives the same strings; the original method is restored afterwards.
    """
    from lm_eval import utils as lm_utils

    env = lm_utils.env
    original = env.from_string
    env.from_string = functools.lru_cache(maxsize=512)(original)  # type: ignore[method-assign]
    try:
        yield
    finally:
        env.from_string = original  # type: ignore[method-assign]


def _task(name: str, loaded: dict[str, Any] | None):
    """lm-eval task by name, loaded once per build (loading builds its whole dataset)."""
    if loaded is None:
        return T.load_task(name)
    if name not in loaded:
        loaded[name] = T.load_task(name)
    return loaded[name]


def load_eval_items(
    task_names: Sequence[str], where: str, loaded: dict[str, Any] | None = None
) -> list[EvalItem]:
    items: list[EvalItem] = []
    for name in task_names:
        try:
            task = _task(name, loaded)
            for split in ("dev", "test"):
                try:
                    docs = T.split_docs(task, split)
                except ValueError:
                    continue  # a task without that split has nothing to leak into
                for doc in docs:
                    text = doc.get("text")
                    prompt = task.doc_to_text(doc)
                    items.append(
                        EvalItem(
                            name,
                            split,
                            str(doc.get("id", "")),
                            text if isinstance(text, str) else "",
                            (prompt,) if isinstance(prompt, str) else (),
                        )
                    )
        except (D.DataError, T.UnknownTaskError, FileNotFoundError) as err:
            raise MixtureError(
                f"{where}: contamination.tasks: cannot load eval items of task {name!r}: {err}"
            ) from err
    return items


# --------------------------------------------------------------------------------------------
# Build


@dataclass
class Selected:
    key: int
    index: int
    messages_json: str
    hits: list[dict[str, Any]]


@dataclass
class ComponentResult:
    name: str
    source: dict[str, Any]
    requested: int = 0
    rows_seen: int = 0
    available: int = 0
    malformed: Counter = field(default_factory=Counter)
    malformed_examples: dict[str, list[int]] = field(default_factory=dict)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    selected: list[Selected] = field(default_factory=list)
    copies: int = 0
    remainder: int = 0
    tokens: int | None = None

    @property
    def taken(self) -> int:
        return self.copies * len(self.selected) + self.remainder

    def manifest(self) -> dict[str, Any]:
        n = len(self.selected)
        out: dict[str, Any] = {
            "source": self.source,
            "rows_in_source": self.rows_seen,
            "rows_available": self.available,
            "rows_requested": self.requested,
            "rows_taken": self.taken,
            "distinct_rows": n,
            "upsampling_factor": round(self.taken / n, 4) if n else 0.0,
            "whole_repeats": self.copies,
            "remainder_rows": self.remainder,
            "malformed_skipped": {
                reason: {"rows": c, "first_indices": self.malformed_examples.get(reason, [])}
                for reason, c in sorted(self.malformed.items())
            },
        }
        if self.dropped:
            out["contaminated_dropped"] = self.dropped
        if self.tokens is not None:
            out["tokens"] = self.tokens
        return out


@dataclass
class BuildResult:
    jsonl: Path
    manifest: Path
    cached: bool
    summary: dict[str, Any]


def _open_source(mix: Mixture, comp: Component) -> Source:
    return TaskSource(comp.task) if comp.task else DatasetSource(comp, mix.where)


def _prepare_source(mix: Mixture, name: str, src: Source, loaded: dict[str, Any]) -> None:
    if isinstance(src, TaskSource):
        try:
            src.load(loaded)
        except (D.DataError, T.UnknownTaskError, FileNotFoundError) as err:
            raise _err(
                mix.where, f"components.{name}.task", f"cannot load task {src.task_name!r}: {err}"
            ) from err
    elif isinstance(src, DatasetSource):
        src.check_schema()


def _fingerprint(mix: Mixture, sources: dict[str, Source], guard: list[str], tokenizer: str | None) -> str:
    import lm_eval

    inputs: dict[str, Any] = {
        "builder": BUILDER_VERSION,
        "code": {p: _sha256_file(ROOT / "finbench" / p) for p in ("mixtures.py", "tasks.py", "data.py")},
        "lm_eval": getattr(lm_eval, "__version__", "?"),
        "spec": mix.spec_dict(),
        "tokenizer": _tokenizer_digest(tokenizer) if tokenizer else None,
        "components": {},
        "guard": {t: task_fingerprint(t) for t in guard},
    }
    for name, src in sources.items():
        if isinstance(src, TaskSource):
            inputs["components"][name] = task_fingerprint(src.task_name)
        else:
            inputs["components"][name] = src.fingerprint()  # type: ignore[attr-defined]
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _tokenizer_digest(path: str) -> Any:
    p = Path(path)
    return _tree_digest(p) if p.is_dir() else path


def resolve_sizes(mix: Mixture, available: dict[str, int]) -> dict[str, int]:
    """Requested rows per component. `available` is needed only for fractions."""
    out: dict[str, int] = {}

    def size(name: str) -> int:
        if name in out:
            return out[name]
        s = mix.components[name].size
        if s.count is not None:
            n = s.count
        elif s.fraction is not None:
            n = _round(s.fraction * available[name])
            if n < 1:
                raise _err(
                    mix.where,
                    f"components.{name}.fraction",
                    f"{s.fraction} of {available[name]} rows is less than one row",
                )
        else:
            n = _round(s.factor * sum(size(r) for r in s.relative_to))
            if n < 1:
                raise _err(mix.where, f"components.{name}.relative_to", "resolves to zero rows")
        out[name] = n
        return n

    for name in mix.components:
        size(name)
    return out


def _progress(iterable, total: int | None, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="batch", leave=False, file=sys.stderr)


def _count_valid(src: Source) -> int:
    if isinstance(src, TaskSource):
        return len(src.docs)  # validated by finbench.data.build_dataset
    n = 0
    for batch in src.batches():
        n += sum(1 for row in batch if src.render(row)[0] is not None)
    return n


def _select(
    mix: Mixture,
    comp: Component,
    src: Source,
    k: int,
    guard: ContaminationIndex | None,
    progress: bool,
) -> ComponentResult:
    """Bottom-k of the eligible rows by sampling key; then whole repeats + remainder if short.

    Streamed sources are read once, keeping only the rows whose key beats the current k-th
    smallest (memory O(k)). Task sources are in memory already and are visited in key order.
    The contamination check runs on the kept rows only; in `drop` mode a margin of spare rows is
    kept, and if hits exceed it the pass is repeated with a larger margin (rare).
    """
    margin = (k // 50 + 32) if guard is not None and mix.contamination.mode == "drop" else 0
    while True:
        res, rows, exhausted = _bottom_k(mix, comp, src, k + margin, progress)
        res.requested = k
        hits = _check_rows(src, rows, guard)
        eligible: list[tuple[tuple[int, int], list[dict[str, str]], list[dict[str, Any]]]] = []
        for (key_idx, msgs, _), h in zip(rows, hits, strict=True):
            if h and mix.contamination.mode == "drop":
                res.dropped.append({"row": key_idx[1], "hits": h[:5]})
            else:
                eligible.append((key_idx, msgs, h))
        if len(eligible) >= k or exhausted:
            break
        margin = 4 * (margin + len(res.dropped))
    if not eligible:
        why = "no usable rows in the source"
        if res.dropped:
            why += (f": the contamination guard dropped all {len(res.dropped)} (they match eval items, "
                    f"e.g. {res.dropped[0]['hits'][:2]}); see `contamination:` in the mixture")
        raise _err(mix.where, f"components.{comp.name}", why)
    eligible = eligible[:k]
    res.selected = [
        Selected(key, idx, json.dumps(msgs, ensure_ascii=False), h) for (key, idx), msgs, h in eligible
    ]
    res.copies, res.remainder = divmod(k, len(eligible))  # (1, 0) unless upsampling
    return res


Kept = tuple[tuple[int, int], list[dict[str, str]], dict[str, Any]]


def _bottom_k(
    mix: Mixture, comp: Component, src: Source, k: int, progress: bool
) -> tuple[ComponentResult, list[Kept], bool]:
    """The k eligible rows with the smallest keys, ascending; and whether the source ran out."""
    import numpy as np

    res = ComponentResult(comp.name, src.describe())
    res.requested = k
    salt = _salt("select", mix.seed, comp.name)
    if isinstance(src, TaskSource):
        docs = src.docs
        keys = row_keys(salt, 0, len(docs))
        order = np.argsort(keys, kind="stable")[:k].tolist()  # ties (never seen) by index
        res.available = res.rows_seen = len(docs)
        rows = [((int(keys[j]), j), src.render(docs[j])[0], docs[j]) for j in order]
        return res, rows, k >= len(docs)
    heap: list[tuple[int, int, list[dict[str, str]], dict[str, Any]]] = []  # max-heap: -key, -idx
    start = 0
    total_batches = math.ceil(src.total / BATCH) if src.total else None
    assert isinstance(src, DatasetSource)
    for tb in _progress(src.arrow_batches(), total_batches, comp.name, progress):
        n = tb.num_rows
        keys = row_keys(salt, start, n)
        valid, reasons = src.validate(tb)
        for why, mask in reasons:
            bad = np.nonzero(mask)[0]
            res.malformed[why] += len(bad)
            ex = res.malformed_examples.setdefault(why, [])
            ex += [start + int(j) for j in bad[: max(5 - len(ex), 0)]]
        res.available += int(valid.sum())
        cand = valid
        if len(heap) >= k:  # only rows that can enter the bottom-k become Python objects
            cand = valid & (keys <= np.uint64(-heap[0][0]))
        idxs = np.nonzero(cand)[0]
        if len(idxs):
            import pyarrow as pa

            rows = tb.take(pa.array(idxs)).to_pylist()
            for j, row in zip(idxs.tolist(), rows, strict=True):
                key, idx = int(keys[j]), start + j
                if len(heap) >= k and (key, idx) >= (-heap[0][0], -heap[0][1]):
                    continue
                msgs, why = src.render(row)
                if msgs is None:  # validate() and render_row() disagree: count it, skip it
                    res.malformed[why] += 1
                    res.available -= 1
                    continue
                # the raw row is not needed any more (guard texts come from the messages)
                if len(heap) < k:
                    heapq.heappush(heap, (-key, -idx, msgs, {}))
                else:
                    heapq.heapreplace(heap, (-key, -idx, msgs, {}))
        start += n
    res.rows_seen = start
    if res.malformed and res.rows_seen:
        bad = sum(res.malformed.values()) / res.rows_seen
        if bad > mix.max_malformed:
            top = ", ".join(f"{r!r} x{c}" for r, c in res.malformed.most_common(3))
            raise _err(
                mix.where,
                f"components.{comp.name}",
                f"{bad:.1%} of {res.rows_seen} rows are "
                f"malformed (max_malformed {mix.max_malformed:.1%}): {top}",
            )
    rows = [((-nk, -ni), msgs, row) for nk, ni, msgs, row in sorted(heap, reverse=True)]
    return res, rows, len(heap) < k


def _check_rows(
    src: Source, rows: list[Kept], guard: ContaminationIndex | None
) -> list[list[dict[str, Any]]]:
    if guard is None:
        return [[] for _ in rows]
    hits: list[list[dict[str, Any]]] = []
    for i in range(0, len(rows), BATCH):
        pairs = [src.guard_texts(row, msgs) for _, msgs, row in rows[i : i + BATCH]]
        hits += guard.check([p[0] for p in pairs], [p[1] for p in pairs])
    return hits


def _contamination_report(results: list[ComponentResult]) -> list[dict[str, Any]]:
    report = []
    for res in results:
        for s in res.selected:
            if s.hits:
                msgs = json.loads(s.messages_json)
                user = next((m["content"] for m in msgs if m["role"] == "user"), "")
                report.append({"component": res.name, "row": s.index, "user": user[:200], "hits": s.hits})
    return report


def _count_tokens(tokenizer_path: str, results: list[ComponentResult]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    for res in results:
        total = 0
        for i in range(0, len(res.selected), 256):
            chunk = res.selected[i : i + 256]
            convs = [json.loads(s.messages_json) for s in chunk]
            if getattr(tok, "chat_template", None):
                ids = tok.apply_chat_template(convs, tokenize=True)
                if isinstance(ids, dict) or hasattr(ids, "keys"):
                    ids = ids["input_ids"]
                lens = [len(x) for x in ids]
            else:
                lens = [
                    sum(len(tok(m["content"], add_special_tokens=False)["input_ids"]) for m in c)
                    for c in convs
                ]
            for j, n in enumerate(lens):
                reps = res.copies + (1 if i + j < res.remainder else 0)
                total += n * reps
        res.tokens = total


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def output_paths(mix: Mixture, digest: str, out_dir: Path) -> tuple[Path, Path]:
    stem = f"{mix.name}-{digest[:16]}"
    return out_dir / f"{stem}.jsonl", out_dir / f"{stem}.manifest.json"


def build(
    mixture: Mixture | str,
    out_dir: Path | str | None = None,
    *,
    tokenizer: str | None = None,
    force: bool = False,
    progress: bool | None = None,
) -> BuildResult:
    """Build a mixture and return its paths; unchanged inputs return the cached files."""
    t0 = time.perf_counter()
    mix = load_mixture(mixture) if isinstance(mixture, str) else mixture
    out_dir = Path(out_dir) if out_dir else DEFAULT_OUT
    if progress is None:
        progress = sys.stderr.isatty()
    # Cheap checks first (files exist), then the up-to-date check, then loading (tasks, the
    # first row of each dataset against its declared format, eval items), then the one pass.
    sources = {name: _open_source(mix, comp) for name, comp in mix.components.items()}
    guard_names = guard_tasks(mix)
    digest = _fingerprint(mix, sources, guard_names, tokenizer)
    jsonl, manifest = output_paths(mix, digest, out_dir)
    if not force and jsonl.is_file() and manifest.is_file():
        summary = json.loads(manifest.read_text(encoding="utf-8"))
        return BuildResult(jsonl, manifest, True, summary)

    timings: dict[str, float] = {"check_and_hash_inputs": time.perf_counter() - t0}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 2)
        return now

    with _cached_lm_eval_templates():
        t = time.perf_counter()
        loaded: dict[str, Any] = {}
        for name, src in sources.items():
            _prepare_source(mix, name, src, loaded)
        t = lap("load_sources", t)
        items = load_eval_items(guard_names, mix.where, loaded)
        loaded.clear()
        index = ContaminationIndex(items, mix.contamination)
        t = lap("load_and_index_eval_items", t)
        available: dict[str, int] = {}
        for name, comp in mix.components.items():
            if comp.size.fraction is not None:
                available[name] = _count_valid(sources[name])
        sizes = resolve_sizes(mix, available)
        results = []
        for name, comp in mix.components.items():
            results.append(_select(mix, comp, sources[name], sizes[name], index, progress))
            t = lap(f"select:{name}", t)
    t = time.perf_counter()

    report = _contamination_report(results)
    if report and mix.contamination.mode == "fail":
        rpath = out_dir / f"{mix.name}-{digest[:16]}.contamination.json"
        _atomic_write(rpath, lambda fh: json.dump(report, fh, indent=1, ensure_ascii=False))
        lines = [
            f"  {r['component']} row {r['row']}: "
            + "; ".join(
                f"{h['task']}/{h['split']}/{h['id']} ({h['match']} {h['overlap']})" for h in r["hits"][:3]
            )
            + f" | {r['user'][:80]!r}"
            for r in report[:10]
        ]
        more = f"\n  ... and {len(report) - 10} more" if len(report) > 10 else ""
        raise _err(
            mix.where,
            "contamination",
            f"{len(report)} training row(s) overlap dev/test items "
            f"(full report: {rpath}); set contamination: drop or allow in the mixture to "
            "proceed:\n" + "\n".join(lines) + more,
        )

    if tokenizer:
        _count_tokens(tokenizer, results)

    # Final order: a seeded hash of (component, row, copy), so tasks are interleaved.
    order: list[tuple[bytes, int, int]] = []
    for ci, res in enumerate(results):
        osalt = _salt("order", mix.seed, res.name).to_bytes(8, "little")
        for si, s in enumerate(res.selected):
            reps = res.copies + (1 if si < res.remainder else 0)
            for c in range(reps):
                k = hashlib.blake2b(
                    osalt + s.index.to_bytes(8, "little") + c.to_bytes(4, "little"), digest_size=8
                ).digest()
                order.append((k, ci, si))
    order.sort()
    names = [json.dumps(r.name) for r in results]

    def write_rows(fh) -> None:
        for _, ci, si in order:
            fh.write(
                '{"messages": ' + results[ci].selected[si].messages_json + ', "task": ' + names[ci] + "}\n"
            )

    _atomic_write(jsonl, write_rows)
    lap("order_and_write", t)
    summary = {
        "mixture": mix.name,
        "file": str(mix.path) if mix.path else None,
        "description": mix.description,
        "seed": mix.seed,
        "content_hash": digest,
        "output": jsonl.name,
        "output_sha256": _sha256_file(jsonl),
        "rows": len(order),
        "tokenizer": tokenizer,
        "spec": mix.spec_dict(),
        "contamination": {
            **mix.contamination.to_dict(),
            "eval_tasks": guard_names,
            "eval_items": len(items),
            "hits_kept": report if mix.contamination.mode == "allow" else [],
            "dropped": sum(len(r.dropped) for r in results),
        },
        "components": {r.name: r.manifest() for r in results},
        "build_seconds": round(time.perf_counter() - t0, 2),
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
    }
    if tokenizer:
        summary["tokens"] = sum(r.tokens or 0 for r in results)
    # The manifest records timing and paths; the JSONL is the byte-reproducible artefact.
    _atomic_write(manifest, lambda fh: json.dump(summary, fh, indent=2, ensure_ascii=False, sort_keys=True))
    return BuildResult(jsonl, manifest, False, summary)


# --------------------------------------------------------------------------------------------
# CLI


def _cmd_build(args: argparse.Namespace) -> int:
    res = build(
        args.name,
        args.out,
        tokenizer=args.tokenizer,
        force=args.force,
        progress=False if args.no_progress else None,
    )
    s = res.summary
    print(f"{'cached' if res.cached else 'built'}: {res.jsonl} ({s['rows']} rows)")
    print(f"manifest: {res.manifest}")
    for name, c in s["components"].items():
        extra = f" tokens={c['tokens']}" if "tokens" in c else ""
        bad = sum(v["rows"] for v in c["malformed_skipped"].values())
        print(
            f"  {name:<16} available={c['rows_available']:<8} requested={c['rows_requested']:<7} "
            f"taken={c['rows_taken']:<7} x{c['upsampling_factor']} malformed={bad}{extra}"
        )
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    mix = load_mixture(args.name)
    print(
        json.dumps(
            {
                "name": mix.name,
                "file": str(mix.path),
                "description": mix.description,
                **mix.spec_dict(),
            },
            indent=2,
        )
    )
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    for name in list_mixtures():
        print(name)
    return 0


def _cmd_design(args: argparse.Namespace) -> int:
    import yaml

    path = Path(args.design)
    if not path.suffix:
        path = MIXTURES_DIR / DESIGNS_DIR_NAME / f"{args.design}.yaml"
    members = generate_design(path)
    if args.write:
        out = Path(args.write)
        for mname, spec in members.items():
            spec = {k: v for k, v in spec.items() if k != "_base"}
            text = yaml.safe_dump(spec, sort_keys=False)
            _atomic_write(out / f"{mname}.yaml", lambda fh, t=text: fh.write(t))
        print(f"wrote {len(members)} mixtures to {out}")
    else:
        for mname, spec in members.items():
            print(f"{path.stem}/{mname}: {', '.join(spec['components'])}")
        print(f"# {len(members)} mixtures")
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mixture", help="build training mixtures (mixtures/*.yaml)")
    msub = p.add_subparsers(dest="mixture_command", required=True)
    b = msub.add_parser("build", help="write the mixture JSONL + manifest (no-op when up to date)")
    b.add_argument("name", help="mixture name (mixtures/NAME.yaml), DESIGN/MEMBER, or a .yaml path")
    b.add_argument("--out", default=None, help=f"output folder (default {DEFAULT_OUT})")
    b.add_argument("--tokenizer", default=None, help="tokenizer folder: count tokens in the manifest")
    b.add_argument("--force", action="store_true", help="rebuild even when up to date")
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=_cmd_build)
    s = msub.add_parser("show", help="print the validated mixture spec")
    s.add_argument("name")
    s.set_defaults(func=_cmd_show)
    ls = msub.add_parser("list", help="list mixtures, including design members")
    ls.set_defaults(func=_cmd_list)
    d = msub.add_parser("design", help="list (or --write) the mixtures of a design file")
    d.add_argument("design", help="design name (mixtures/designs/NAME.yaml) or path")
    d.add_argument("--write", default=None, help="folder to write one YAML per member")
    d.set_defaults(func=_cmd_design)
