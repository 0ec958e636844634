"""A seeded mutation fuzzer for the project's config files (issue 13: no traceback on any config).

It takes the repository's real recipes, mixtures, designs and sweeps, applies one mutation each
(a typo in a key or a name, a duplicated key, a wrong type, a list/mapping/set where a scalar goes,
a huge/negative/inf/nan/float number, an empty value, a missing key, a removed file, a broken file),
runs every mutant through the validating entry points in this process and sorts the outcome:

  clean      one of finbench's error types, naming the mutated file (or the file it broke)
  nofile     one of finbench's error types whose message names no file
  accepted   no error (the mutation was harmless, or validation let it through)
  traceback  any other exception: a bug
  dup_accepted  a duplicated key that was accepted: a bug
  wrong_accepted  a mutant that must be refused (`Mutant.must_refuse`) was accepted: a bug

Targeted mutations (issue 21), each of which must be refused: a `hub:` block of a component that
reads `raw:` files given a bad split, path or revision; a duplicated entry of a list (eval tasks,
raw files, recipes, seeds); a `description` of the wrong type; path tricks (a NUL byte, a name
over 255 bytes) in a file or model name; a 300-character `base_model`. Long strings (300 and
100,000 characters) go into random string values, where they may be accepted. Every error
message longer than MAX_MESSAGE characters is counted (`long_msg`): a user reads one line.

Entry points: recipes `recipes.load` + `check_references` + `train.check_mixture` (what `train
--dry-run` checks before compiling; `--plan N` also runs the full `train.plan`, which ends in
Axolotl's own `validate_config`, on N accepted CPU-recipe mutants), mixtures `load_mixture` +
`resolve_sizes` (`mixture show` and the sizing step of `mixture build`), designs `generate_design`
+ `parse_mixture` of every member (`mixture design`), sweeps `load_sweep` + the store check of
`sweep plan`.

    HF_HUB_OFFLINE=1 python tests/fuzz_configs.py --mutants 1000 --seed 0 [--plan 5] [-v]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import yaml

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("recipe", "mixture", "design", "sweep")

# Values put where something else was expected.
BAD_VALUES: list[Any] = [
    None, "", [], {}, [1, 2], {"a": 1}, {"x", "y"}, True, 0, -1, -5, 8.5, 4294967296,
    9223372036854775808, 10**30, 1e308, -1e308, float("inf"), float("-inf"), float("nan"), 1e-300,
    "abc", "x" * 500, "../../etc/passwd", "/",
]


MAX_MESSAGE = 300  # characters: a longer error message is counted as long_msg

# Values a `hub:` block of a `raw:` component must refuse, and wrong `description` types.
HUB_BAD: dict[str, list[Any]] = {
    "split": [{"a": 1}, float("nan"), None, "", "train/../x"],
    "path": ["/", "../../etc/passwd", "", "a/b/c", "x" * 300],
    "revision": ["", "ma\x00in", None, "a..b", 5],
    "name": [{"a": 1}, ["x"], "a b"],
}
DESCRIPTION_BAD: list[Any] = [{"a": 1}, ["x"], None, 5]
PATH_TRICKS = ["a\x00b.jsonl", "x" * 300 + ".jsonl"]
LONG_STRINGS = ["y" * 300, "z" * 100_000]


@dataclass
class Mutant:
    kind: str
    source: str  # the original file, relative to the tree
    op: str
    detail: str
    text: str | None  # the mutated file's text (None: the file is removed)
    removed: str | None = None  # another file removed from the tree
    must_refuse: bool = False  # accepting it is a bug (wrong_accepted)


@dataclass
class Tally:
    counts: Counter = field(default_factory=Counter)
    by_kind: dict[str, Counter] = field(default_factory=dict)
    bugs: list[str] = field(default_factory=list)  # tracebacks, accepted duplicate keys and must-refuse
    nofile: list[str] = field(default_factory=list)
    accepted: list[Mutant] = field(default_factory=list)
    long_messages: list[str] = field(default_factory=list)  # over MAX_MESSAGE characters
    max_message: int = 0

    def add(self, m: Mutant, outcome: str, note: str, message: str = "") -> None:
        self.counts[outcome] += 1
        self.by_kind.setdefault(m.kind, Counter())[outcome] += 1
        line = f"{m.kind} {m.source} {m.op} {m.detail}: {note}"
        self.max_message = max(self.max_message, len(message))
        if len(message) > MAX_MESSAGE:
            self.long_messages.append(f"{len(message)} chars: {line[:200]}")
        if outcome in BUG_OUTCOMES:
            self.bugs.append(line)
        elif outcome == "nofile":
            self.nofile.append(line)
        elif outcome == "accepted":
            self.accepted.append(m)

    def summary(self) -> str:
        total = sum(self.counts.values())
        parts = [f"{k}={self.counts.get(k, 0)}" for k in ("clean", "nofile", "accepted", *BUG_OUTCOMES)]
        kinds = "; ".join(f"{k}: {dict(sorted(c.items()))}" for k, c in sorted(self.by_kind.items()))
        longest = f"long_msg={len(self.long_messages)} (over {MAX_MESSAGE} chars; longest {self.max_message})"
        return f"{total} mutants: {' '.join(parts)} {longest} ({kinds})"


BUG_OUTCOMES = ("traceback", "dup_accepted", "wrong_accepted")


# ------------------------------------------------------------------------------------------------
# The files and the mutations


def sources() -> dict[str, list[str]]:
    """The real config files by kind, relative to the repository root."""
    return {
        "recipe": sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "recipes").glob("*.yaml")),
        "mixture": sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "mixtures").glob("*.yaml")),
        "design": sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "mixtures/designs").glob("*.yaml")),
        "sweep": sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "recipes/sweeps").glob("*.yaml")),
    }


def _paths(data: Any, prefix: tuple = (), list_items: int | None = None) -> Iterator[tuple]:
    """Every key path (dict keys and list indices) of a parsed YAML or JSON value; `list_items`
    visits only the first items of each list (a data file's first records reach every key)."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k), list_items)
    elif isinstance(data, list):
        for i, v in enumerate(data[:list_items]):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i), list_items)


def _parent(data: Any, path: tuple) -> Any:
    for p in path[:-1]:
        data = data[p]
    return data


def typo(rng: random.Random, s: str) -> str:
    """One edit: a doubled, dropped, swapped or changed character."""
    if not s:
        return "x"
    i = rng.randrange(len(s))
    op = rng.choice(("double", "drop", "swap", "change"))
    if op == "double" or len(s) == 1:
        return s[:i + 1] + s[i] + s[i + 1:]
    if op == "drop":
        return s[:i] + s[i + 1:]
    if op == "swap" and i + 1 < len(s):
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    return s[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz_") + s[i + 1:]


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _mutate_data(rng: random.Random, data: Any) -> tuple[str, str, Any]:
    """(op, detail, mutated data) of one structural mutation of a parsed file."""
    data = yaml.safe_load(_dump(data))  # a deep copy
    paths = list(_paths(data))
    path = rng.choice(paths)
    parent, key = _parent(data, path), path[-1]
    where = ".".join(map(str, path))
    op = rng.choice(("value", "value", "value", "rename_key", "delete", "typo_value"))
    if op == "rename_key" and isinstance(parent, dict):
        new = typo(rng, str(key))
        parent[new] = parent.pop(key)
        return op, f"{where} -> {new}", data
    if op == "delete":
        del parent[key]
        return op, where, data
    if op == "typo_value" and isinstance(parent[key], str):
        parent[key] = typo(rng, parent[key])
        return op, f"{where} = {parent[key]!r}", data
    value = rng.choice(BAD_VALUES)
    parent[key] = value
    return "value", f"{where} = {value!r}"[:120], data


def _dup_key_text(rng: random.Random, text: str) -> tuple[str, str] | None:
    """The file with one `key: value` line duplicated right below itself (a duplicate key)."""
    lines = text.splitlines(keepends=True)
    candidates = [i for i, ln in enumerate(lines)
                  if re.match(r"^\s*[A-Za-z_][\w.-]*:\s*\S", ln) and not ln.lstrip().startswith("#")]
    if not candidates:
        return None
    i = rng.choice(candidates)
    dup = lines[i] if lines[i].endswith("\n") else lines[i] + "\n"
    return "".join(lines[:i + 1]) + ("\n" if not lines[i].endswith("\n") else "") + dup + "".join(lines[i + 1:]), \
        lines[i].strip()[:60]


def _sites(data: Any, kind: str) -> dict[str, list[tuple]]:
    """Key paths where a targeted mutation applies, by mutation op."""
    paths = list(_paths(data))
    out: dict[str, list[tuple]] = {"hub_under_raw": [], "dup_entry": [], "path_trick": [], "long_string": []}
    for path in paths:
        value = _parent(data, path)[path[-1]]
        if path[-1] == "hub" and "raw" in _parent(data, path) and isinstance(value, dict):
            out["hub_under_raw"].append(path)
        if isinstance(value, list) and value and all(isinstance(v, str | int) for v in value) and (
                path[-1] in ("tasks", "files", "recipes", "seeds", "ingredients", "include")):
            out["dup_entry"].append(path)
        if path[-2:-1] == ("files",) and "raw" in path or path == ("base_model",):
            out["path_trick"].append(path)
        if isinstance(value, str):
            out["long_string"].append(path)
    if isinstance(data, dict):
        out["description"] = [("description",)]
    return {op: sites for op, sites in out.items() if sites}


def _targeted(rng: random.Random, kind: str, data: Any) -> tuple[str, str, Any, bool] | None:
    """(op, detail, mutated data, must_refuse) of one issue-21 mutation, or None if none applies."""
    data = yaml.safe_load(_dump(data))
    sites = _sites(data, kind)
    if not sites:
        return None
    op = rng.choice(sorted(sites))
    path = rng.choice(sites[op])
    parent, key = _parent(data, path), path[-1]
    where = ".".join(map(str, path))
    if op == "hub_under_raw":
        field_ = rng.choice(sorted(HUB_BAD))
        parent[key][field_] = rng.choice(HUB_BAD[field_])
        return op, f"{where}.{field_} = {parent[key][field_]!r}"[:120], data, True
    if op == "dup_entry":
        parent[key] = [*parent[key], rng.choice(parent[key])]
        return op, f"{where} = {parent[key]!r}"[:120], data, True
    if op == "path_trick":
        parent[key] = rng.choice(PATH_TRICKS) if key != "base_model" else "m" * 300
        return op, f"{where} = {parent[key]!r}"[:120], data, True
    if op == "description":
        data["description"] = rng.choice(DESCRIPTION_BAD)
        return op, f"description = {data['description']!r}", data, True
    parent[key] = rng.choice(LONG_STRINGS)
    return op, f"{where} = {len(parent[key])} characters", data, False


def make_mutant(rng: random.Random, kind: str, source: str, all_files: list[str]) -> Mutant:
    text = (ROOT / source).read_text(encoding="utf-8")
    roll = rng.random()
    if roll >= 0.7:  # the issue-21 kinds
        targeted = _targeted(rng, kind, yaml.safe_load(text))
        if targeted:
            op, detail, data, must_refuse = targeted
            return Mutant(kind, source, op, detail, _dump(data), must_refuse=must_refuse)
    if roll < 0.15:
        dup = _dup_key_text(rng, text)
        if dup:
            return Mutant(kind, source, "dup_key", dup[1], dup[0])
    if roll < 0.19:
        broken = rng.choice(("", "[a, b]\n", "just text\n", "a: [unclosed\n", "? !!set {a, b}\n", "- 1\n- 2\n",
                             "a: &x [*x]\n", "\x00\x01binary\n"))
        return Mutant(kind, source, "broken_file", repr(broken), broken)
    if roll < 0.22:
        return Mutant(kind, source, "removed_file", source, None)
    if roll < 0.26:
        other = rng.choice([f for f in all_files if f != source])
        return Mutant(kind, source, "removed_other", other, text, removed=other)
    op, detail, data = _mutate_data(rng, yaml.safe_load(text))
    return Mutant(kind, source, op, detail, _dump(data))


def mutants(n: int, seed: int) -> list[Mutant]:
    """n mutants, the same for the same seed: kinds in turn, files chosen by the seeded generator."""
    rng = random.Random(seed)
    by_kind = sources()
    all_files = [f for files in by_kind.values() for f in files]
    return [make_mutant(rng, KINDS[i % len(KINDS)], rng.choice(by_kind[KINDS[i % len(KINDS)]]), all_files)
            for i in range(n)]


# ------------------------------------------------------------------------------------------------
# Running a mutant


@contextlib.contextmanager
def config_tree(runs_dir: Path) -> Iterator[Path]:
    """A temporary copy of recipes/ and mixtures/ that the settings point at."""
    tmp = Path(tempfile.mkdtemp(prefix="finbench-fuzz-"))
    env = {"FINBENCH_RECIPES_DIR": str(tmp / "recipes"), "FINBENCH_MIXTURES_DIR": str(tmp / "mixtures"),
           "FINBENCH_SWEEPS_DIR": str(tmp / "recipes/sweeps"), "FINBENCH_RUNS_DIR": str(runs_dir),
           "FINBENCH_DATA_DIR": str(ROOT / "tests/fixtures/data")}  # configs, not data, vary
    try:
        with mock.patch.dict(os.environ, env):  # restored on exit, unset ones removed
            yield tmp  # recipes/ is looked up when asked (finbench.train.recipe.recipes_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _reset(tree: Path) -> None:
    for folder in ("recipes", "mixtures"):
        shutil.rmtree(tree / folder, ignore_errors=True)
        shutil.copytree(ROOT / folder, tree / folder)


def _check_recipe(path: Path) -> None:
    from finbench.train import checks as C
    from finbench.train import recipe as R
    from finbench.train import run as TR
    recipe = R.load(str(path))
    C.check_references(recipe)
    TR.check_mixture(recipe)


def _check_mixture(path: Path) -> None:
    from finbench import mixtures as M
    mix = M.load_mixture(str(path))
    M.resolve_sizes(mix, {c: 1000 for c in mix.components})


def _check_design(path: Path) -> None:
    from finbench import mixtures as M
    from finbench.data import tasks as T
    known = set(T.discover())
    for member, spec in M.generate_design(path).items():
        base = Path(spec.pop("_base"))
        M.parse_mixture(spec, name=f"{path.stem}/{member}", path=base, known_tasks=known)
    M.list_mixtures(warn=False)  # a broken design never breaks the listing


def _check_sweep(path: Path) -> None:
    from finbench.sweep import cli

    rc = cli.main(["plan", str(path)])  # prints the plan (or one error line and exit 2)
    if rc == 2:
        raise _CliError


class _CliError(Exception):
    """`sweep plan` printed one clean error line (its main catches our ValueErrors)."""


CHECKS: dict[str, Callable[[Path], None]] = {
    "recipe": _check_recipe, "mixture": _check_mixture, "design": _check_design, "sweep": _check_sweep,
}


def clean_errors() -> tuple[type[BaseException], ...]:
    from finbench.data.raw import DataError
    from finbench.data.tasks import UnknownTaskError
    from finbench.mixtures import MixtureError
    from finbench.sweep.model import SweepError
    from finbench.train.recipe import RecipeError
    from finbench.train.run import TrainError

    return DataError, MixtureError, RecipeError, SweepError, UnknownTaskError, TrainError


def run_mutant(m: Mutant, tree: Path) -> tuple[str, str]:
    """(outcome, note) of one mutant in a fresh copy of the tree."""
    _reset(tree)
    target = tree / m.source
    if m.text is None:
        target.unlink()
    else:
        target.write_text(m.text, encoding="utf-8")
    if m.removed:
        (tree / m.removed).unlink()
    err_out = _Capture()
    try:
        with contextlib.redirect_stdout(_Capture()), contextlib.redirect_stderr(err_out):
            CHECKS[m.kind](target)
    except _CliError:
        msg = err_out.text.strip().removeprefix("finbench: error: ")
        named = str(tree) in msg or Path(m.source).stem in msg
        return ("clean" if named else "nofile"), msg
    except clean_errors() as error:
        msg = str(error)
        named = str(tree) in msg or Path(m.source).stem in msg or (m.removed and Path(m.removed).stem in msg)
        return ("clean" if named else "nofile"), msg
    except Exception as error:  # noqa: BLE001  # anything else is a bug: a traceback for the user
        import traceback

        return "traceback", f"{type(error).__name__}: {error}"[:300] + "\n" + traceback.format_exc(limit=-3)
    if "Traceback" in err_out.text:
        return "traceback", err_out.text[-600:]
    if m.op == "dup_key":
        return "dup_accepted", "a duplicated key was accepted"
    if m.must_refuse:
        return "wrong_accepted", "a value that must be refused was accepted"
    return "accepted", ""


class _Capture:
    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass


def plan_accepted(accepted: list[Mutant], tree: Path, n: int, seed: int) -> Counter:
    """Full `train.plan` (compile + Axolotl's validate_config) of up to n accepted CPU-recipe mutants."""
    from finbench.train import run as TR
    cpu = [m for m in accepted if m.kind == "recipe" and ("tiny_cpu" in m.source or "smol" in m.source)]
    random.Random(seed).shuffle(cpu)
    out: Counter = Counter()
    for m in cpu[:n]:
        _reset(tree)
        (tree / m.source).write_text(m.text or "", encoding="utf-8")
        try:
            TR.plan(str(tree / m.source), gpu=False)
            out["plan ok (Axolotl validate_config passed)"] += 1
        except clean_errors() as error:
            out["clean error at plan" if str(tree) in str(error) else "error at plan naming no file"] += 1
            print(f"  plan refused: {m.source} {m.op} {m.detail}: {str(error)[:200]}")
        except Exception as error:  # noqa: BLE001
            out["traceback at plan"] += 1
            print(f"  plan traceback: {m.source} {m.op} {m.detail}: {type(error).__name__}: {error}")
    return out


def fuzz(n: int, seed: int, *, plan: int = 0, verbose: bool = False, log: Callable[[str], None] = print) -> Tally:
    import logging

    logging.disable(logging.WARNING)  # reference warnings (on purpose) would drown the tally
    tally = Tally()
    runs = Path(tempfile.mkdtemp(prefix="finbench-fuzz-runs-"))
    try:
        with config_tree(runs) as tree:
            for i, m in enumerate(mutants(n, seed)):
                outcome, message = run_mutant(m, tree)
                note = message if outcome == "traceback" else message[:300]
                tally.add(m, outcome, note, message if outcome in ("clean", "nofile") else "")
                if verbose or outcome in BUG_OUTCOMES:
                    log(f"[{i}] {outcome}: {m.kind} {m.source} {m.op} {m.detail}: {note.splitlines()[0] if note else ''}")
            if plan:
                for what, count in sorted(plan_accepted(tally.accepted, tree, plan, seed).items()):
                    log(f"  full plan of accepted mutants: {what}: {count}")
    finally:
        logging.disable(logging.NOTSET)
        shutil.rmtree(runs, ignore_errors=True)
    return tally


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mutants", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plan", type=int, default=0, help="full train.plan of N accepted CPU-recipe mutants")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    start = time.time()
    tally = fuzz(args.mutants, args.seed, plan=args.plan, verbose=args.verbose)
    print(f"config fuzz (seed {args.seed}): {tally.summary()} in {time.time() - start:.0f} s")
    for line in tally.nofile[:20]:
        print(f"  error names no file: {line}")
    for line in sorted(tally.long_messages, key=lambda x: -int(x.split(" ", 1)[0]))[:20]:  # longest first
        print(f"  long message: {line}")
    for line in tally.bugs:
        print(f"  BUG: {line.splitlines()[0]}")
    return 1 if tally.bugs else 0


if __name__ == "__main__":
    sys.exit(main())
