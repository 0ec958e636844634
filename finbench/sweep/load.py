"""Reading a sweep file: strict validation of every key, then the runs it expands to.

Recipes, mixtures and tasks must all exist, and each executor validates its own block (`ray:`,
`slurm:`) before anything is recorded or submitted.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from finbench import mixtures as M
from finbench.core import settings
from finbench.core import validate as V
from finbench.core.files import did_you_mean, is_file, name_or_path
from finbench.data import raw as D
from finbench.data import tasks as T
from finbench.sweep import api_runs
from finbench.sweep.executors import REGISTRY
from finbench.sweep.model import (
    BACKENDS,
    BASE,
    JOBS,
    SPLITS,
    SWEEP_FIELDS,
    RunSpec,
    Sweep,
    SweepError,
    err,
    run_key,
    sha,
)
from finbench.sweep.store import is_sqlite
from finbench.train import recipe as R
from finbench.train.schema import MAX_BATCH, SEED_MAX

SWEEP_KEYS = {"description", "recipes", "mixtures", "seeds", "base_eval", "eval", "job", "store",
              "share_engine", "api_models", "data_seed"}
DATA_SEEDS = ("fixed", "run")  # data_seed: the mixture's own seed, or each run's seed
MAX_NUMBER = 1e9  # limits and counts beyond this are typos
MAX_FEWSHOT = 100
EVAL_KEYS = {"tasks", "general", "splits", "limit", "backend", "batch_size", "num_fewshot"}


def sweep_path(name: str) -> Path:
    folder = settings.sweeps_dir()
    known = {p.stem: p for p in sorted(folder.glob("*.yaml"))}
    return name_or_path(name, known, what="sweep", where=folder, error=SweepError)


def _str_list(where: str, key: str, value: Any, *, allow_empty: bool = False) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or (not value and not allow_empty)
        or not all(isinstance(v, str) and v for v in value)
    ):
        raise err(where, key, f"expected a list of names, got {V.short(value)}")
    if V.duplicates(value):
        raise err(where, key, V.duplicates(value) or "")
    return list(value)


def _check_number(where: str, key: str, value: Any, expected: str, *, integer: bool, minimum: float,
                  maximum: float = MAX_NUMBER) -> None:
    kinds = int if integer else int | float
    if (isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value)
            or not minimum <= value <= maximum):
        raise err(where, key, f"expected {expected} (at most {maximum:g}), got {V.short(value)}")


def _unknown_keys(where: str, block: str, given: Any, allowed: set[str]) -> None:
    """A SweepError for the first unknown key of a mapping, with a did-you-mean and the allowed keys."""
    extra = sorted(map(str, set(given) - allowed))
    if extra:
        key = f"{block}.{extra[0]}" if block else extra[0]
        hint = did_you_mean(extra[0], sorted(allowed), n=1)
        raise err(where, key, f"unknown key.{hint} Expected one of {sorted(allowed)}")


def _check_limit(where: str, limit: Any, key: str = "eval.limit") -> None:
    """lm-eval's --limit: a fraction of each split in (0, 1), or a whole number of rows."""
    ok = (not isinstance(limit, bool) and isinstance(limit, int | float) and math.isfinite(limit)
          and (0 < limit < 1 or (limit == int(limit) and 1 <= limit <= MAX_NUMBER)))
    if not ok:
        raise err(where, key, f"expected a fraction in (0, 1), a whole number of rows in "
                              f"[1, {MAX_NUMBER:g}], {{split: number}} or null, got {V.short(limit)}")


def _check_task_names(where: str, key: str, names: list[str], *, ours_only: bool) -> None:
    known = T.discover()
    if ours_only:
        for t in names:
            if t not in known:
                raise err(where, key, f"unknown finbench task {V.short(t)}.{did_you_mean(t, known, quote=False)}")
        return
    unknown = T.unknown_task_names(names)  # lm-eval's registry: a typo fails now, not in the run
    if unknown:
        name, hint = next(iter(unknown.items()))
        raise err(where, key, f"{V.short(name)} is not an lm-eval task, group or tag.{hint}")


def _parse_eval(where: str, ev: Any) -> dict[str, Any]:
    if not isinstance(ev, dict):
        raise err(where, "eval", f"expected a mapping with tasks, splits, ..., got {V.short(ev)}")
    _unknown_keys(where, "eval", ev, EVAL_KEYS)
    tasks = _str_list(where, "eval.tasks", ev.get("tasks"))
    general = _str_list(where, "eval.general", ev.get("general", []), allow_empty=True)
    splits = _str_list(where, "eval.splits", ev.get("splits", list(SPLITS)))
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise err(where, "eval.splits", f"{V.short(bad)}: expected a subset of {list(SPLITS)}")
    limit = ev.get("limit")
    if isinstance(limit, dict):  # per split: {dev: 60, test: 300}
        unknown = [sp for sp in limit if sp not in splits]
        if unknown:
            raise err(where, "eval.limit", f"{unknown}: expected split names from eval.splits {splits}")
        for split, n in limit.items():
            if n is not None:
                _check_limit(where, n, f"eval.limit.{split}")
    elif limit is not None:
        _check_limit(where, limit)
    backend = ev.get("backend", "auto")
    if backend not in BACKENDS:
        raise err(where, "eval.backend", f"expected one of {list(BACKENDS)}, got {V.short(backend)}")
    nf = ev.get("num_fewshot")
    if nf is not None:
        _check_number(where, "eval.num_fewshot", nf, "a non-negative integer", integer=True, minimum=0,
                      maximum=MAX_FEWSHOT)
    bs = ev.get("batch_size", "auto")
    if bs != "auto":
        _check_number(where, "eval.batch_size", bs, "a positive integer or 'auto'", integer=True, minimum=1,
                      maximum=MAX_BATCH)
    # Known tasks: finbench's own (cheap YAML scan); general tasks against lm-eval's registry.
    _check_task_names(where, "eval.tasks", tasks, ours_only=True)
    _check_task_names(where, "eval.general", general, ours_only=False)
    return {"tasks": tasks, "general": general, "splits": splits, "limit": limit, "backend": backend,
            "batch_size": bs, "num_fewshot": nf}


def _parse_mixtures_spec(where: str, spec: Any) -> tuple[str | None, list[str]]:
    """(design name or None, included mixture names) of the sweep's `mixtures:` value."""
    if not isinstance(spec, dict):
        return None, _str_list(where, "mixtures", spec)
    _unknown_keys(where, "mixtures", spec, {"design", "include"})
    design = spec.get("design")
    if design is not None and (not isinstance(design, str) or not design):
        raise err(where, "mixtures.design", f"expected a design name, got {V.short(design)}")
    names = _str_list(where, "mixtures.include", spec.get("include", []), allow_empty=True)
    if design is None and not names:
        raise err(where, "mixtures", "expected a design and/or an include list")
    return design, names


def _design_members(where: str, design: str, base_dir: Path) -> list[tuple[str, Any]]:
    designs = M.MIXTURES_DIR / M.DESIGNS_DIR_NAME
    dpath = Path(design)
    if dpath.suffix not in (".yaml", ".yml"):
        dpath = designs / f"{design}.yaml"
    elif not dpath.is_absolute():
        dpath = (base_dir / dpath).resolve()
    if not is_file(dpath):
        known = sorted(p.stem for p in designs.glob("*.yaml"))
        raise err(where, "mixtures.design", f"no design file {dpath}; known designs: {known}")
    out = []
    try:
        known_tasks = set(T.discover())
        for member, mspec in M.generate_design(dpath).items():
            base = Path(mspec.pop("_base"))
            name = f"{dpath.stem}/{member}"
            out.append((name, M.parse_mixture(mspec, name=name, path=base, known_tasks=known_tasks)))
    except M.MixtureError as error:
        raise err(where, "mixtures.design", str(error)) from error
    return out


def _resolve_mixtures(where: str, spec: Any, base_dir: Path) -> list[tuple[str, Any]]:
    """[(name, finbench.mixtures.Mixture)] in sweep order; every mixture is validated now."""
    design, names = _parse_mixtures_spec(where, spec)
    out = _design_members(where, design, base_dir) if design is not None else []
    for name in names:
        ref = name
        if name.endswith((".yaml", ".yml")) and not Path(name).is_absolute():
            ref = str((base_dir / name).resolve())
        try:
            out.append((ref, M.load_mixture(ref)))
        except M.MixtureError as error:
            raise err(where, "mixtures", f"{V.short(name)}: {error}") from error
    seen: set[str] = set()
    for name, _ in out:
        if name in seen:
            raise err(where, "mixtures", f"mixture {V.short(name)} listed twice")
        seen.add(name)
    return out


def _load_recipes(where: str, value: Any, base_dir: Path) -> list[R.Recipe]:
    recipes = []
    for r in _str_list(where, "recipes", value):
        ref = r
        if r.endswith((".yaml", ".yml")) and not Path(r).is_absolute():
            ref = str((base_dir / r).resolve())
        try:
            recipes.append(R.load(ref))
        except R.RecipeError as error:
            raise err(where, "recipes", f"{V.short(r)}: {error}") from error
    return recipes


def top_keys() -> set[str]:
    """The sweep file's keys: its own, and the block of each registered executor."""
    return SWEEP_KEYS | {e.config_key for e in REGISTRY.values() if e.config_key}


def _check_top_level(where: str, data: dict[str, Any]) -> None:
    _unknown_keys(where, "", data, top_keys())
    for need in ("recipes", "mixtures", "seeds", "eval"):
        if need not in data:
            raise err(where, need, "missing")
    share = data.get("share_engine", "auto")
    if share not in ("auto", True, False):
        raise err(where, "share_engine", f"expected auto, true or false, got {V.short(share)}")
    seeds = data["seeds"]
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= SEED_MAX for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise err(where, "seeds", f"expected a list of distinct integers in [0, {SEED_MAX}], got {V.short(seeds)}")
    if data.get("data_seed", "fixed") not in DATA_SEEDS:
        raise err(where, "data_seed", f"expected one of {list(DATA_SEEDS)}, got {V.short(data['data_seed'])}")
    job = data.get("job", "train_eval")
    if job not in JOBS:
        raise err(where, "job", f"expected one of {list(JOBS)}, got {V.short(job)}")
    if not isinstance(data.get("base_eval", False), bool):
        raise err(where, "base_eval", f"expected true or false, got {V.short(data['base_eval'])}")
    if "description" in data and V.description(data["description"]):
        raise err(where, "description", V.description(data["description"]) or "")
    if not isinstance(data.get("store", ""), str):
        raise err(where, "store", f"expected a path, got {V.short(data['store'])}")


def store_path(where: str, value: str, stem: str) -> Path:
    """The sweep's SQLite file: absolute or under the project; not a folder, not another kind of file."""
    # no `store:`: under the runs folder (FINBENCH_RUNS_DIR when set), like every other output
    store = Path(value).expanduser() if value else settings.runs_dir() / "sweeps" / stem / "sweep.sqlite"
    store = store if store.is_absolute() else settings.ROOT / store
    try:
        if store.is_dir() or value.endswith(("/", os.sep)):
            raise err(where, "store", f"{store} is a folder; expected a file such as {store / 'sweep.sqlite'}")
        if store.is_file() and store.stat().st_size and not is_sqlite(store):
            raise err(where, "store", f"{store} exists and is not a SQLite database; "
                                      "name a new file or a sweep store")
        parent = next((p for p in store.parents if p.exists()), None)
    except OSError as error:  # a name too long, a permission denied
        raise err(where, "store", f"{store}: {error.strerror or error}") from error
    if parent is not None and not parent.is_dir():
        raise err(where, "store", f"{parent} is a file, so {store} cannot be created")
    return store


def load_sweep(name: str) -> Sweep:
    """Read and strictly validate a sweep: recipes, mixtures and tasks must all exist."""
    path = sweep_path(name)
    where = str(path)
    data = D.read_yaml(path, SweepError)
    _check_top_level(where, data)
    recipes = _load_recipes(where, data["recipes"], path.parent)
    blocks = {e.config_key: e.parse_config(where, data.get(e.config_key))
              for e in REGISTRY.values() if e.config_key}
    ev = _parse_eval(where, data["eval"])
    api_models = api_runs.parse_api_models(where, data.get("api_models"), ev, [r.name for r in recipes])
    mixtures = _resolve_mixtures(where, data["mixtures"], path.parent)
    store = store_path(where, data.get("store") or "", path.stem)
    sw = Sweep(
        name=path.stem,
        path=path,
        description=str(data.get("description", "")),
        recipes=[r.name for r in recipes],
        mixtures=[m for m, _ in mixtures],
        seeds=list(data["seeds"]),
        base_eval=data.get("base_eval", False),
        eval=ev,
        job=data.get("job", "train_eval"),
        store=store,
        share_engine=data.get("share_engine", "auto"),  # how runs are scored: in no run key
        data_seed=data.get("data_seed", "fixed"),
        api_models=api_models,
        executor_options=blocks,  # each executor's own validated block, by its config_key
        **{k: v for k, v in blocks.items() if k in SWEEP_FIELDS},  # type: ignore[arg-type]  # ray=, slurm=
    )
    sw.runs = expand(sw, recipes, mixtures)
    sw.runs += api_runs.expand(sw)  # one run per API model (not trained: no seeds)
    return sw


def _mixture_sha(mix: Any, data_seed: str):
    """run seed -> the mixture's content hash. With `data_seed: run` the run seed replaces the
    mixture's seed (another draw of rows, another hash); `fixed` keeps the hash runs always had."""
    spec = mix.spec_dict()
    if data_seed == "fixed":
        fixed = sha(json.dumps(spec, sort_keys=True))
        return lambda _seed: fixed
    return lambda seed: sha(json.dumps({**spec, "seed": seed}, sort_keys=True))


def expand(sweep: Sweep, recipes: list[Any], mixtures: list[tuple[str, Any]]) -> list[RunSpec]:
    """recipes x mixtures x seeds (+ one base-model run per recipe and seed with base_eval)."""
    runs: list[RunSpec] = []
    mix_info = []
    for name, mix in mixtures:
        comps = {c: comp.task for c, comp in mix.components.items()}
        mix_info.append((name, comps, _mixture_sha(mix, sweep.data_seed)))
    recipes_dir = R.recipes_dir().resolve()
    for recipe in recipes:
        rsha = sha(recipe.path.read_bytes())
        rname = recipe.name if recipe.path.parent == recipes_dir else str(recipe.path)
        todo = [(BASE, {}, lambda _seed: sha(BASE), "eval_only")] if sweep.base_eval else []
        todo += [(n, c, s, sweep.job) for n, c, s in mix_info]
        for mname, comps, msha_of, job in todo:
            # an untrained base model is greedy-decoded: one seed is enough
            for seed in sweep.seeds[:1] if mname == BASE else sweep.seeds:
                msha = msha_of(seed)
                runs.append(RunSpec(
                    key=run_key(rsha, msha, seed, job, sweep.eval), sweep=sweep.name, recipe=rname,
                    recipe_path=str(recipe.path), mixture=mname, seed=seed, job=job, eval=dict(sweep.eval),
                    components=dict(comps), recipe_sha=rsha, mixture_sha=msha,
                    data_seed=seed if sweep.data_seed == "run" and mname != BASE else None,
                    recipe_data=recipe.data,
                ))
    keys = [r.key for r in runs]
    if len(set(keys)) != len(keys):  # same recipe listed twice under two names, etc.
        raise SweepError(f"{sweep.path}: two runs have the same content (recipe, mixture, seed)")
    return runs
