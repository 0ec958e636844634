"""Sweeps: recipes x mixtures x seeds, run by a real scheduler, results in one SQLite store.

A sweep file (`recipes/sweeps/NAME.yaml`, or any .yaml path) names

    description: free text
    recipes: [phi3_cocktail, llama31_8b_cocktail]    # recipes/NAME.yaml ("models")
    mixtures: {design: paper55}                      # a design (mixtures/designs/NAME.yaml) ...
    # mixtures: [paper55/fpb, paper55/all, demo]     # ... or a list of mixture names / .yaml paths
    # mixtures: {design: paper55, include: [demo]}   # ... or both
    seeds: [1, 2, 3]                                 # training seeds (the recipe's `seed`)
    base_eval: true          # also score each recipe's untrained base model (general regression)
    eval:
      tasks: [fpb, fiqa_sa, headline]                # finance target tasks (lm-eval names)
      general: []                                    # general-ability tasks (regression check)
      splits: [dev, test]                            # dev selects mixtures, test reports them
      limit: null                                    # rows per task (null: all)
      backend: auto                                  # auto | hf | vllm
      batch_size: auto
      num_fewshot: null
    job: train_eval          # train_eval (Axolotl + lm-eval) | eval_only (base model, no training)
    ray: {num_cpus: 1, num_gpus: 0}                  # resources per run on a Ray cluster
    slurm: {partition: gpu, time: "04:00:00", gpus: 1, max_parallel: 16}  # per array task (finbench.slurm)
    store: runs/sweeps/NAME/sweep.sqlite             # default; relative to the project root
    share_engine: auto       # auto | true | false: one vLLM engine for all LoRA runs of a base model
    api_models:                                      # optional: API models scored as extra rows
      - name: gpt-4o                                 # report label "gpt-4o (API)"
        model: openai-chat-completions               # | local-chat-completions | local-completions
        model_args: {model: gpt-4o-2024-08-06, num_concurrent: 4, max_retries: 3}
        # base_url (local-*: the full .../v1/chat/completions or .../v1/completions URL)
        # gen_kwargs: {max_gen_toks: 64}              # optional answer budget for verbose models

An API model is ONE run (job api_eval, mixture `api`, not per seed: nothing is trained and
decoding is greedy), scored by lm-eval's own API backend with the chat template applied, on the
same tasks, splits and tolerant/strict parsers, and stored like any run. Keys come from the
environment (OPENAI_API_KEY), never from the sweep file: `api_key` in model_args is refused.
Chat backends have no log-probabilities, so `_mc` tasks are refused for them. See
finbench.api_models.

Each run is (recipe, mixture, seed) and is keyed by a content hash of the recipe file's bytes, the
mixture's validated spec, the seed, the job and the eval settings. A run is written to the store
in ONE transaction with all its scores and per-item predictions when it finishes, so a sweep that
is killed loses only the runs in flight: `finbench sweep run` again skips the finished keys and
re-runs the rest (a run's `attempts` counts how often it was started).

Trained LoRA runs keep their adapter only (no merged copy: 660 merged 7B models would need
~10 TB); scoring applies the adapter (hf: merged in memory; vLLM: served as a LoRA request).
With the vLLM backend, the LoRA runs of one base model are scored through ONE engine
(`share_engine`): they are trained first, then one job per base model starts an engine and scores
every run as a LoRA request (see `lora_groups`, `run_shared`).

Executors: `local` runs the pending runs one after another in this process; `ray` submits them as
Ray tasks (`ray.init()`: a local cluster, or `--address`/RAY_ADDRESS for an existing one). Only
the driver writes to the store; Ray workers return their results. On a real cluster, submit the
driver itself with Ray Jobs:

    ray job submit --address http://HEAD:8265 --working-dir . -- finbench sweep run SWEEP --executor ray

`slurm` submits the pending runs as ONE `sbatch` job array (one task per run, resources from the
sweep's `slurm:` block: partition, account, time, cpus_per_task, gpus, mem, max_parallel, extra);
each task writes its result to a spool folder beside the store, and the driver, polling `squeue`
(no accounting database needed), records them. A killed driver resumes: results already on disk
are recorded and a still-queued array job is adopted, never resubmitted. `sbatch`, `scontrol ping`
and `sbatch --test-only` of the `slurm:` options are checked before anything is submitted. Run
the driver where `sbatch` works, in a project folder the compute nodes share. See finbench.slurm.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import socket
import sqlite3
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from finbench import data as D

ROOT = Path(__file__).resolve().parent.parent
SWEEPS_DIR = Path(os.environ.get("FINBENCH_SWEEPS_DIR", ROOT / "recipes" / "sweeps"))
TOP_KEYS = {"description", "recipes", "mixtures", "seeds", "base_eval", "eval", "job", "ray", "slurm", "store",
            "share_engine",
            "api_models"}
EVAL_KEYS = {"tasks", "general", "splits", "limit", "backend", "batch_size", "num_fewshot"}
RAY_KEYS = {"num_cpus", "num_gpus", "address"}
SPLITS = ("dev", "test")
JOBS = ("train_eval", "eval_only")
BACKENDS = ("auto", "hf", "vllm")
ANY_METRIC = "*"  # items.metrics key: the same per-item value for every metric of the task
BASE = "base"  # the mixture name of a recipe's untrained base-model run
SCHEMA_VERSION = 1


class SweepError(ValueError):
    """A bad sweep file or an unreachable scheduler; the message names the file and key."""


def _err(where: str, key: str, msg: str) -> SweepError:
    return SweepError(f"{where}: {key}: {msg}")


# --------------------------------------------------------------------------------------------
# Sweep file


@dataclass(frozen=True)
class RunSpec:
    """One run. Plain data (dict-able) so it travels to Ray workers and into the store."""

    key: str
    sweep: str
    recipe: str  # recipe name (recipes/NAME.yaml) or absolute path
    recipe_path: str
    mixture: str  # mixture name, DESIGN/MEMBER, absolute .yaml path, or BASE
    seed: int
    job: str
    eval: dict[str, Any]
    components: dict[str, str | None]  # mixture component -> finbench task (None: a dataset)
    recipe_sha: str
    mixture_sha: str
    api: dict[str, Any] | None = None  # an api_models entry (job api_eval); see finbench.api_models

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        return cls(**d)

    @property
    def label(self) -> str:
        if self.api:
            return f"{self.recipe} (API model {self.api['model_args']['model']})"
        return f"{self.recipe} x {self.mixture} x seed {self.seed}"


@dataclass
class Sweep:
    name: str
    path: Path
    description: str
    recipes: list[str]
    mixtures: list[str]
    seeds: list[int]
    base_eval: bool
    eval: dict[str, Any]
    job: str
    ray: dict[str, Any]
    store: Path
    runs: list[RunSpec] = field(default_factory=list)
    slurm: dict[str, Any] = field(default_factory=dict)  # finbench.slurm.parse_config
    api_models: list[dict[str, Any]] = field(default_factory=list)  # finbench.api_models
    share_engine: str | bool = "auto"  # multi-LoRA serving: one vLLM engine per base model


def sweep_path(name_or_path: str) -> Path:
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.suffix in (".yaml", ".yml") or os.sep in text:
        if not path.is_file():
            raise SweepError(f"{path}: sweep file not found")
        return path.resolve()
    path = SWEEPS_DIR / f"{text}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in SWEEPS_DIR.glob("*.yaml"))
        raise SweepError(
            f"unknown sweep {text!r}: no {path}. Known: {', '.join(known) or 'none'}"
        )
    return path


def _str_list(where: str, key: str, value: Any, *, allow_empty: bool = False) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or (not value and not allow_empty)
        or not all(isinstance(v, str) and v for v in value)
    ):
        raise _err(where, key, f"expected a list of names, got {value!r}")
    if len(set(value)) != len(value):
        dup = sorted({v for v in value if value.count(v) > 1})
        raise _err(where, key, f"duplicate entries {dup}")
    return list(value)


def _parse_eval(where: str, ev: Any) -> dict[str, Any]:
    if not isinstance(ev, dict):
        raise _err(where, "eval", f"expected a mapping with tasks, splits, ..., got {ev!r}")
    extra = set(ev) - EVAL_KEYS
    if extra:
        raise _err(where, "eval", f"unknown key(s) {sorted(extra)}; expected {sorted(EVAL_KEYS)}")
    tasks = _str_list(where, "eval.tasks", ev.get("tasks"))
    general = _str_list(where, "eval.general", ev.get("general", []), allow_empty=True)
    splits = _str_list(where, "eval.splits", ev.get("splits", list(SPLITS)))
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise _err(where, "eval.splits", f"{bad}: expected a subset of {list(SPLITS)}")
    limit = ev.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int | float) or limit <= 0):
        raise _err(where, "eval.limit", f"expected a positive number or null, got {limit!r}")
    backend = ev.get("backend", "auto")
    if backend not in BACKENDS:
        raise _err(where, "eval.backend", f"expected one of {list(BACKENDS)}, got {backend!r}")
    nf = ev.get("num_fewshot")
    if nf is not None and (isinstance(nf, bool) or not isinstance(nf, int) or nf < 0):
        raise _err(where, "eval.num_fewshot", f"expected a non-negative integer, got {nf!r}")
    bs = ev.get("batch_size", "auto")
    if not (bs == "auto" or (isinstance(bs, int) and not isinstance(bs, bool) and bs > 0)):
        raise _err(where, "eval.batch_size", f"expected a positive integer or 'auto', got {bs!r}")
    # Known tasks: finbench's own (cheap YAML scan); general tasks may be lm-eval built-ins and
    # are checked when the first run loads them.
    from finbench import tasks as T

    known = T.discover()
    for t in tasks:
        if t not in known:
            import difflib

            close = difflib.get_close_matches(t, known, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise _err(where, "eval.tasks", f"unknown finbench task {t!r}.{hint}")
    return {
        "tasks": tasks,
        "general": general,
        "splits": splits,
        "limit": limit,
        "backend": backend,
        "batch_size": bs,
        "num_fewshot": nf,
    }


def _sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def _resolve_mixtures(where: str, spec: Any, base_dir: Path) -> list[tuple[str, Any]]:
    """[(name, finbench.mixtures.Mixture)] in sweep order; every mixture is validated now."""
    from finbench import mixtures as M
    from finbench import tasks as T

    names: list[str] = []
    design = None
    if isinstance(spec, dict):
        extra = set(spec) - {"design", "include"}
        if extra:
            raise _err(where, "mixtures", f"unknown key(s) {sorted(extra)}; expected design, include")
        design = spec.get("design")
        if design is not None and (not isinstance(design, str) or not design):
            raise _err(where, "mixtures.design", f"expected a design name, got {design!r}")
        names = _str_list(where, "mixtures.include", spec.get("include", []), allow_empty=True)
        if design is None and not names:
            raise _err(where, "mixtures", "expected a design and/or an include list")
    else:
        names = _str_list(where, "mixtures", spec)
    out: list[tuple[str, Any]] = []
    if design is not None:
        dpath = Path(design)
        if dpath.suffix not in (".yaml", ".yml"):
            dpath = M.MIXTURES_DIR / M.DESIGNS_DIR_NAME / f"{design}.yaml"
        elif not dpath.is_absolute():
            dpath = (base_dir / dpath).resolve()
        if not dpath.is_file():
            known = sorted(p.stem for p in (M.MIXTURES_DIR / M.DESIGNS_DIR_NAME).glob("*.yaml"))
            raise _err(where, "mixtures.design", f"no design file {dpath}; known designs: {known}")
        try:
            members = M.generate_design(dpath)
            known_tasks = set(T.discover())
            for member, mspec in members.items():
                base = Path(mspec.pop("_base"))
                name = f"{dpath.stem}/{member}"
                out.append(
                    (name, M.parse_mixture(mspec, name=name, path=base, known_tasks=known_tasks))
                )
        except M.MixtureError as err:
            raise _err(where, "mixtures.design", str(err)) from err
    for name in names:
        ref = name
        if name.endswith((".yaml", ".yml")) and not Path(name).is_absolute():
            ref = str((base_dir / name).resolve())
        try:
            out.append((ref, M.load_mixture(ref)))
        except M.MixtureError as err:
            raise _err(where, "mixtures", f"{name!r}: {err}") from err
    seen: set[str] = set()
    for name, _ in out:
        if name in seen:
            raise _err(where, "mixtures", f"mixture {name!r} listed twice")
        seen.add(name)
    return out


def load_sweep(name_or_path: str) -> Sweep:
    """Read and strictly validate a sweep: recipes, mixtures and tasks must all exist."""
    from finbench import recipes as R

    path = sweep_path(name_or_path)
    where = str(path)
    data = D.read_yaml(path, SweepError)
    extra = set(data) - TOP_KEYS
    if extra:
        raise _err(where, ", ".join(sorted(extra)), f"unknown key(s); expected {sorted(TOP_KEYS)}")
    for need in ("recipes", "mixtures", "seeds", "eval"):
        if need not in data:
            raise _err(where, need, "missing")
    share = data.get("share_engine", "auto")
    if share not in ("auto", True, False):
        raise _err(where, "share_engine", f"expected auto, true or false, got {share!r}")
    recipe_names = _str_list(where, "recipes", data["recipes"])
    recipes = []
    for r in recipe_names:
        ref = r
        if r.endswith((".yaml", ".yml")) and not Path(r).is_absolute():
            ref = str((path.parent / r).resolve())
        try:
            recipes.append(R.load(ref))
        except R.RecipeError as err:
            raise _err(where, "recipes", f"{r!r}: {err}") from err
    seeds = data["seeds"]
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise _err(where, "seeds", f"expected a list of distinct non-negative integers, got {seeds!r}")
    job = data.get("job", "train_eval")
    if job not in JOBS:
        raise _err(where, "job", f"expected one of {list(JOBS)}, got {job!r}")
    base_eval = data.get("base_eval", False)
    if not isinstance(base_eval, bool):
        raise _err(where, "base_eval", f"expected true or false, got {base_eval!r}")
    from finbench import slurm as SL

    slurm_cfg = SL.parse_config(where, data.get("slurm"))
    ray_cfg = data.get("ray") or {}
    if not isinstance(ray_cfg, dict) or set(ray_cfg) - RAY_KEYS:
        raise _err(where, "ray", f"expected a mapping with keys from {sorted(RAY_KEYS)}, got {ray_cfg!r}")
    for k in ("num_cpus", "num_gpus"):
        v = ray_cfg.get(k, 1 if k == "num_cpus" else 0)
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise _err(where, f"ray.{k}", f"expected a non-negative number, got {v!r}")
    ev = _parse_eval(where, data["eval"])
    from finbench import api_models as AM

    api_models = AM.parse_api_models(where, data.get("api_models"), ev, [r.name for r in recipes])
    mixtures = _resolve_mixtures(where, data["mixtures"], path.parent)
    store = data.get("store") or f"runs/sweeps/{path.stem}/sweep.sqlite"
    if not isinstance(store, str):
        raise _err(where, "store", f"expected a path, got {store!r}")
    store_path = Path(store) if Path(store).is_absolute() else ROOT / store
    sw = Sweep(
        name=path.stem,
        path=path,
        description=str(data.get("description", "")),
        recipes=[r.name for r in recipes],
        mixtures=[m for m, _ in mixtures],
        seeds=list(seeds),
        base_eval=base_eval,
        eval=ev,
        job=job,
        ray=dict(ray_cfg),
        slurm=slurm_cfg,
        store=store_path,
    )
    sw.share_engine = share  # how runs are scored, not what: not part of any run key
    sw.runs = expand(sw, recipes, mixtures)
    sw.api_models = api_models
    sw.runs += AM.expand(sw)  # one run per API model (not trained: no seeds)
    return sw


def run_key(recipe_sha: str, mixture_sha: str, seed: int, job: str, ev: dict[str, Any]) -> str:
    """The content hash that identifies a run (the same inputs give the same key anywhere)."""
    blob = json.dumps(
        {"recipe": recipe_sha, "mixture": mixture_sha, "seed": seed, "job": job, "eval": ev},
        sort_keys=True,
    )
    return _sha(blob)[:20]


def expand(sweep: Sweep, recipes: list[Any], mixtures: list[tuple[str, Any]]) -> list[RunSpec]:
    """recipes x mixtures x seeds (+ one base-model run per recipe and seed with base_eval)."""
    runs: list[RunSpec] = []
    mix_info = []
    for name, mix in mixtures:
        comps = {c: comp.task for c, comp in mix.components.items()}
        mix_info.append((name, comps, _sha(json.dumps(mix.spec_dict(), sort_keys=True))))
    for recipe in recipes:
        rsha = _sha(recipe.path.read_bytes())
        rname = recipe.name if recipe.path.parent == _recipes_dir() else str(recipe.path)
        todo = [(BASE, {}, _sha(BASE), "eval_only")] if sweep.base_eval else []
        todo += [(n, c, s, sweep.job) for n, c, s in mix_info]
        for mname, comps, msha, job in todo:
            # an untrained base model is greedy-decoded: one seed is enough
            for seed in sweep.seeds[:1] if mname == BASE else sweep.seeds:
                key = run_key(rsha, msha, seed, job, sweep.eval)
                runs.append(
                    RunSpec(
                        key=key,
                        sweep=sweep.name,
                        recipe=rname,
                        recipe_path=str(recipe.path),
                        mixture=mname,
                        seed=seed,
                        job=job,
                        eval=dict(sweep.eval),
                        components=dict(comps),
                        recipe_sha=rsha,
                        mixture_sha=msha,
                    )
                )
    keys = [r.key for r in runs]
    if len(set(keys)) != len(keys):  # same recipe listed twice under two names, etc.
        raise SweepError(f"{sweep.path}: two runs have the same content (recipe, mixture, seed)")
    return runs


def _recipes_dir() -> Path:
    from finbench import recipes as R

    return R.RECIPES_DIR.resolve()


# --------------------------------------------------------------------------------------------
# Store (SQLite, WAL; one writer: the driver)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY, sweep TEXT NOT NULL, recipe TEXT NOT NULL, mixture TEXT NOT NULL,
    seed INTEGER NOT NULL, job TEXT NOT NULL, components TEXT NOT NULL, spec TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0, started_at TEXT, finished_at TEXT, seconds REAL,
    host TEXT, model_dir TEXT, info TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS scores (
    run_key TEXT NOT NULL REFERENCES runs(key), split TEXT NOT NULL, task TEXT NOT NULL,
    metric TEXT NOT NULL, filter TEXT NOT NULL, value REAL, stderr REAL,
    PRIMARY KEY (run_key, split, task, metric, filter));
CREATE TABLE IF NOT EXISTS items (
    run_key TEXT NOT NULL REFERENCES runs(key), split TEXT NOT NULL, task TEXT NOT NULL,
    filter TEXT NOT NULL, doc_id INTEGER NOT NULL, doc_hash TEXT, target TEXT, prediction TEXT,
    metrics TEXT NOT NULL, PRIMARY KEY (run_key, split, task, filter, doc_id));
CREATE INDEX IF NOT EXISTS items_by_task ON items (task, split, filter);
CREATE TABLE IF NOT EXISTS aggregations (
    task TEXT NOT NULL, metric TEXT NOT NULL, aggregation TEXT NOT NULL,
    higher_is_better INTEGER, PRIMARY KEY (task, metric));
"""


class Store:
    """The sweep's results database. Every public write is one transaction."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a finished run survives a power cut
        self.db.execute("PRAGMA foreign_keys=ON")
        with self.tx():
            for statement in _statements(SCHEMA):
                self.db.execute(statement)
            self.db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def register(self, sweep: Sweep) -> None:
        """Record the plan: new keys as pending; finished ones untouched."""
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('sweep', ?)", (sweep.name,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('sweep_file', ?)", (str(sweep.path),))
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('sweep_config', ?)",
                (json.dumps(_sweep_summary(sweep), sort_keys=True),),
            )
            for r in sweep.runs:
                db.execute(
                    "INSERT OR IGNORE INTO runs (key, sweep, recipe, mixture, seed, job, components,"
                    " spec, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                    (r.key, r.sweep, r.recipe, r.mixture, r.seed, r.job,
                     json.dumps(r.components, sort_keys=True), json.dumps(r.to_dict(), sort_keys=True)),
                )

    def status(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        rows = self.db.execute("SELECT key, status FROM runs").fetchall()
        out = {r["key"]: r["status"] for r in rows}
        return out if keys is None else {k: out.get(k, "pending") for k in keys}

    def mark_running(self, spec: RunSpec) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE runs SET status='running', attempts=attempts+1, started_at=?, host=?, error=NULL "
                "WHERE key=? AND status != 'done'",
                (_now(), socket.gethostname(), spec.key),
            )

    def mark_failed(self, spec: RunSpec, error: str) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE runs SET status='failed', error=?, finished_at=? WHERE key=? AND status != 'done'",
                (error[-4000:], _now(), spec.key),
            )

    def record(self, spec: RunSpec, result: dict[str, Any]) -> None:
        """A finished run with its scores and items, all or nothing."""
        with self.tx() as db:
            if db.execute("SELECT status FROM runs WHERE key=?", (spec.key,)).fetchone()["status"] == "done":
                return  # already recorded (e.g. a duplicate delivery): never twice
            for table in ("scores", "items"):
                db.execute(f"DELETE FROM {table} WHERE run_key=?", (spec.key,))  # noqa: S608
            for split, ev in result.get("evals", {}).items():
                db.executemany(
                    "INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(spec.key, split, s["task"], s["metric"], s["filter"], s["value"], s["stderr"])
                     for s in ev["scores"]],
                )
                db.executemany(
                    "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(spec.key, split, i["task"], i["filter"], i["doc_id"], i.get("doc_hash"),
                      i.get("target"), i.get("prediction"), json.dumps(i["metrics"]))
                     for i in ev["items"]],
                )
                for task, aggs in ev.get("aggregations", {}).items():
                    for metric, (agg, hib) in aggs.items():
                        db.execute(
                            "INSERT OR REPLACE INTO aggregations VALUES (?, ?, ?, ?)",
                            (task, metric, agg, None if hib is None else int(bool(hib))),
                        )
            db.execute(
                "UPDATE runs SET status='done', finished_at=?, seconds=?, model_dir=?, info=?, error=NULL "
                "WHERE key=?",
                (_now(), result.get("seconds"), result.get("model_dir"),
                 json.dumps(result.get("info", {}), sort_keys=True, default=str), spec.key),
            )

    def runs(self, status: str | None = None) -> list[sqlite3.Row]:
        q = "SELECT * FROM runs" + (" WHERE status=?" if status else "") + " ORDER BY recipe, mixture, seed"
        return self.db.execute(q, (status,) if status else ()).fetchall()

    def meta(self) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self.db.execute("SELECT key, value FROM meta")}


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _sweep_summary(sweep: Sweep) -> dict[str, Any]:
    return {
        "name": sweep.name,
        "description": sweep.description,
        "recipes": sweep.recipes,
        "mixtures": sweep.mixtures,
        "seeds": sweep.seeds,
        "base_eval": sweep.base_eval,
        "eval": sweep.eval,
        "job": sweep.job,
        **({"api_models": sweep.api_models} if sweep.api_models else {}),
    }


# --------------------------------------------------------------------------------------------
# Jobs: the one integration point with finbench.train / finbench.evaluate


def derived_recipe(spec: RunSpec) -> Path:
    """The run's own recipe file: the sweep's recipe with this run's mixture and seed.

    Its file name carries the run key, so `finbench.train` gives each run its own folder
    (runs/<recipe>-<key>/) and its DONE.json guard never mixes two runs.
    """
    from finbench import train as TR

    data = yaml.safe_load(Path(spec.recipe_path).read_text(encoding="utf-8"))
    data["seed"] = spec.seed
    if spec.mixture != BASE:
        data["mixture"] = spec.mixture
    stem = Path(spec.recipe_path).stem
    out = TR.runs_dir() / "_sweep_recipes" / f"{stem}-{spec.key[:12]}.yaml"
    text = f"# generated by finbench sweep {spec.sweep!r} for {spec.label}\n" + yaml.safe_dump(
        data, sort_keys=False
    )
    if not out.is_file() or out.read_text(encoding="utf-8") != text:
        TR._write_atomic(out, text)
    return out


def run_job(spec_dict: dict[str, Any]) -> dict[str, Any]:
    """Run one sweep run (train, then evaluate on each split) and return everything to store.

    Plain dict in, plain dict out: the same function runs in-process (local executor) and on a
    Ray worker. Nothing here touches the store.
    """
    from finbench import evaluate as E
    from finbench import recipes as R
    from finbench import train as TR

    spec = RunSpec.from_dict(spec_dict)
    if spec.api:  # an API model: scored over HTTP, nothing trained
        from finbench import api_models as AM

        return AM.run_api_job(spec_dict)
    t0 = time.perf_counter()
    recipe_file = derived_recipe(spec)
    if spec.job == "train_eval":
        TR.train(str(recipe_file), echo=False, merge=False)  # LoRA runs are scored as base + adapter
        target, info = _trained_target(spec)
    else:  # eval_only: the recipe's base model with its tokenizer's own chat template
        recipe = R.load(recipe_file)
        info = {"recipe_file": str(recipe_file), "host": socket.gethostname()}
        target = E.Target(
            model_dir=R.resolve_base_model(recipe.data["base_model"]),
            out_dir=TR.run_dir_for(recipe) / "eval-base",
            settings=recipe.eval,
            seed=spec.seed,
        )
    return _score(spec, target, info, t0)


def _trained_target(spec: RunSpec) -> tuple[Any, dict[str, Any]]:
    """The finished training run of `spec` as an eval Target, plus its run metadata."""
    from finbench import evaluate as E
    from finbench import recipes as R
    from finbench import train as TR

    recipe_file = derived_recipe(spec)
    info = {"recipe_file": str(recipe_file), "host": socket.gethostname(),
            "train": TR.read_done(TR.run_dir_for(R.load(recipe_file)))}
    return E.target_for_recipe(str(recipe_file)), info


def _score(spec: RunSpec, target: Any, info: dict[str, Any], t0: float, lm: Any = None) -> dict[str, Any]:
    """Evaluate `target` on every split of the sweep; the result dict the store records."""
    ev = spec.eval
    evals = {}
    for split in ev["splits"]:
        tasks = eval_tasks(ev, split)
        out_dir = target.out_dir.parent / f"{target.out_dir.name}-{split}"
        evaluate_split(target, out_dir, split, tasks, ev, lm=lm)
        evals[split] = collect(out_dir, tasks)
    return {
        "key": spec.key,
        "model_dir": target.model_dir,
        "evals": evals,
        "info": info,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def eval_tasks(ev: dict[str, Any], split: str) -> list[str]:
    """Tasks scored on `split`: finbench's on every split; `general` ones (lm-eval built-ins such
    as MMLU, GSM8K, IFEval, which have no dev split) on test only, where the report compares them."""
    return list(ev["tasks"]) + (list(ev.get("general", [])) if split == "test" else [])


def evaluate_split(target: Any, out_dir: Path, split: str, tasks: list[str], ev: dict[str, Any],
                   lm: Any = None) -> None:
    """Score `target` on one split of `tasks` into out_dir (results.json + samples_*.jsonl).

    The sweep's eval settings are the run's: they replace the recipe's own eval block, so a
    `limit: null` sweep scores every row of dev and test alike.
    """
    from dataclasses import replace

    from finbench import evaluate as E

    settings = {**target.settings, **{k: ev[k] for k in ("backend", "limit", "num_fewshot", "batch_size")}}
    E.evaluate(replace(target, out_dir=out_dir, settings=settings), tasks=tasks, lm=lm, split=split)


def _aggregation_names(task: str) -> dict[str, tuple[str, bool | None]]:
    """metric -> (dotted aggregation function or lm-eval aggregation name, higher_is_better)."""
    from finbench import tasks as T

    info = T.discover().get(task)
    out: dict[str, tuple[str, bool | None]] = {}
    if info is None:
        return out
    for m in info.config.get("metric_list", []) or []:
        agg = m.get("aggregation")
        if isinstance(agg, str):
            # `!function` left unresolved reads '<yaml dir>/<module.function>'
            out[str(m["metric"])] = (Path(agg).name, m.get("higher_is_better"))
    return out


def collect(out_dir: Path, tasks: list[str]) -> dict[str, Any]:
    """Scores and per-item predictions from an eval folder written by finbench.evaluate."""
    from finbench import evaluate as E

    results = json.loads((out_dir / "results.json").read_text(encoding="utf-8"))
    scores = []
    for row in E.flat_rows(results):
        name, filt = row["metric"].split(",", 1)
        value = row["value"]
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        se = row["stderr"]
        scores.append({"task": row["task"], "metric": name, "filter": filt, "value": float(value),
                       "stderr": float(se) if isinstance(se, int | float) else None})
    items = []
    aggs = {}
    for samples in sorted(out_dir.glob("samples_*.jsonl")):
        task = samples.stem.removeprefix("samples_")
        aggs[task] = _aggregation_names(task)
        with samples.open(encoding="utf-8") as fh:
            for line in fh:
                s = json.loads(line)
                metrics = {m: s[m] for m in s.get("metrics", []) if m in s}
                if len(metrics) > 1 and len({json.dumps(v) for v in metrics.values()}) == 1:
                    # classification logs one (group, gold, pred) item under every metric: store once
                    metrics = {ANY_METRIC: next(iter(metrics.values()))}
                fr = s.get("filtered_resps")
                items.append({
                    "task": task, "filter": s.get("filter", "none"), "doc_id": int(s["doc_id"]),
                    "doc_hash": (s.get("doc_hash") or "")[:16] or None, "target": _text(s.get("target")),
                    "prediction": _text(fr[0] if isinstance(fr, list) and fr else fr),
                    "metrics": metrics,
                })
    return {"scores": scores, "items": items, "aggregations": aggs}


def _text(v: Any) -> str | None:
    return None if v is None else v if isinstance(v, str) else json.dumps(v)


# --------------------------------------------------------------------------------------------
# Multi-LoRA serving: the LoRA runs of one base model are scored through one vLLM engine.
# Phase 1 trains them (any executor; a run's DONE.json is its record); phase 2 runs one job per
# group that starts one engine and scores every run of the group (finbench.evaluate.LoRAEngine).

GROUP = "_lora_group"  # in a group job's spec.eval: the member specs (plain dicts)


def lora_groups(sweep: Sweep, store: Store, *, log: Callable[[str], None] = print) -> list[list[RunSpec]]:
    """The unfinished LoRA runs that share an engine, grouped by base model and tokenizer setup.

    `share_engine: auto` shares when the sweep's backend resolves to vLLM here and at least two
    runs share a base model. On vLLM's CPU build LoRA only works for generation (FIELD-NOTES:
    loglikelihood + LoRA fails), so auto does not share there when a task is multiple choice.
    """
    if sweep.share_engine is False or sweep.job != "train_eval":
        return []
    from finbench import evaluate as E
    from finbench import recipes as R
    from finbench import tasks as T

    backend = sweep.eval["backend"]
    if backend == "hf":
        return []
    if sweep.share_engine == "auto":
        if E.choose_backend(backend) != "vllm":
            return []
        import torch

        if not torch.cuda.is_available():
            known = T.discover()
            tasks = list(sweep.eval["tasks"]) + list(sweep.eval.get("general", []))
            if any(known.get(t) is None or known[t].config.get("output_type") != "generate_until"
                   for t in tasks):
                log("share_engine: auto: vLLM on CPU serves LoRA for generation only; scoring runs one by one")
                return []
    status = store.status(r.key for r in sweep.runs)
    groups: dict[str, list[RunSpec]] = {}
    recipes: dict[str, Any] = {}  # a recipe serves every mixture x seed: validate it once
    for spec in sweep.runs:
        if spec.job != "train_eval" or spec.api or status[spec.key] == "done":
            continue
        if spec.recipe_path not in recipes:
            recipes[spec.recipe_path] = R.load(spec.recipe_path)
        recipe = recipes[spec.recipe_path]
        if recipe.method != "lora":
            continue
        d = recipe.data
        gkey = json.dumps([d["base_model"], d.get("chat_template"), d.get("special_tokens"), d.get("tokens")],
                          sort_keys=True, default=str)
        groups.setdefault(gkey, []).append(spec)
    minimum = 1 if sweep.share_engine is True else 2
    return [g for g in groups.values() if len(g) >= minimum]


def train_job(spec_dict: dict[str, Any]) -> dict[str, Any]:
    """Phase 1: train one run (a finished run is not trained again)."""
    from finbench import train as TR

    spec = RunSpec.from_dict(spec_dict)
    t0 = time.perf_counter()
    TR.train(str(derived_recipe(spec)), echo=False, merge=False)
    return {"key": spec.key, "trained": True, "seconds": round(time.perf_counter() - t0, 2)}


def group_spec(specs: list[RunSpec]) -> RunSpec:
    """One spec that carries a whole group (so any executor can run it as one job)."""
    head = specs[0]
    return RunSpec(**{**head.to_dict(), "eval": {**head.eval, GROUP: [s.to_dict() for s in specs]}})


def lora_group_job(spec_dict: dict[str, Any]) -> dict[str, Any]:
    """Phase 2: score every trained run of one group through one vLLM engine.

    Returns {"results": {key: run result}, "errors": {key: message}}. If vLLM cannot serve LoRA
    for this model, each run is scored on its own (merged model), as without sharing.
    """
    from finbench import evaluate as E

    specs = [RunSpec.from_dict(d) for d in spec_dict["eval"][GROUP]]
    t_start = time.perf_counter()
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    members = []
    for spec in specs:
        try:
            members.append((spec, *_trained_target(spec)))
        except Exception as err:
            errors[spec.key] = f"{type(err).__name__}: {err}"
    engine = None
    if members:
        try:
            engine = E.LoRAEngine(members[0][1], max_lora_rank=max(t.lora_r or 16 for _, t, _ in members),
                                  batch_size=members[0][0].eval["batch_size"])
        except Exception as err:  # the model has no LoRA support in vLLM: score one by one
            print(f"share_engine: vLLM cannot serve these adapters ({type(err).__name__}: {err}); "
                  "scoring each run on its own", file=sys.stderr)
    engine_s = round(time.perf_counter() - t_start, 2)
    for spec, target, info in members:
        t0 = time.perf_counter()
        try:
            lm = engine.serve(target) if engine else None
            info["engine"] = {"shared": engine is not None, "runs": len(members), "start_s": engine_s}
            results[spec.key] = _score(spec, target, info, t0, lm=lm)
        except Exception as err:
            errors[spec.key] = f"{type(err).__name__}: {err}\n{traceback.format_exc()}"
    return {"key": spec_dict["key"], "results": results, "errors": errors,
            "seconds": round(time.perf_counter() - t_start, 2)}


class _PhaseStore:
    """The store as the executors see it during the shared-engine phases.

    Status and failures go to the real store (for every member of a group job); results go to
    `on_result`, because a training result or a group result is not one run's record.
    """

    def __init__(self, store: Store, on_result: Callable[[RunSpec, dict[str, Any]], None], *,
                 starts: bool = True) -> None:
        self.store, self.on_result, self.starts = store, on_result, starts

    @staticmethod
    def _members(spec: RunSpec) -> list[RunSpec]:
        return [RunSpec.from_dict(d) for d in spec.eval.get(GROUP, [])] or [spec]

    def status(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        return self.store.status(keys)

    def mark_running(self, spec: RunSpec) -> None:
        if self.starts:  # the scoring phase continues the attempt the training phase started
            for m in self._members(spec):
                self.store.mark_running(m)

    def mark_failed(self, spec: RunSpec, error: str) -> None:
        for m in self._members(spec):
            self.store.mark_failed(m, error)

    def record(self, spec: RunSpec, result: dict[str, Any]) -> None:
        self.on_result(spec, result)


def run_shared(groups: list[list[RunSpec]], sweep: Sweep, store: Store, execute: Callable[..., Any],
               log: Callable[[str], None] = print) -> dict[str, int]:
    """Train the grouped runs, then score each group through one engine; record each run."""
    from dataclasses import replace

    counts = {"done": 0, "failed": 0, "skipped": 0}
    trained: set[str] = set()
    runs = [s for g in groups for s in g]
    log(f"share_engine: {len(runs)} LoRA run(s) in {len(groups)} group(s): training, then one vLLM engine per group")
    execute(replace(sweep, runs=runs), _PhaseStore(store, lambda spec, _r: trained.add(spec.key)), train_job)
    heads = [group_spec([s for s in g if s.key in trained]) for g in groups if any(s.key in trained for s in g)]
    counts["failed"] += len(runs) - len(trained)

    def on_group(head: RunSpec, result: dict[str, Any]) -> None:
        by_key = {m.key: m for m in _PhaseStore._members(head)}
        for key, res in result["results"].items():
            store.record(by_key[key], res)
            counts["done"] += 1
        for key, error in result["errors"].items():
            store.mark_failed(by_key[key], error)
            counts["failed"] += 1
            log(f"  failed {by_key[key].label}: {error.splitlines()[0][:300]}")

    if heads:
        execute(replace(sweep, runs=heads), _PhaseStore(store, on_group, starts=False), lora_group_job)
    return counts


# --------------------------------------------------------------------------------------------
# Executors

Job = Callable[[dict[str, Any]], dict[str, Any]]


def pending(sweep: Sweep, store: Store) -> list[RunSpec]:
    st = store.status(r.key for r in sweep.runs)
    return [r for r in sweep.runs if st[r.key] != "done"]


def run_local(sweep: Sweep, store: Store, job: Job = run_job, *, log: Callable[[str], None] = print) -> dict[str, int]:
    todo = pending(sweep, store)
    counts = {"done": 0, "failed": 0, "skipped": len(sweep.runs) - len(todo)}
    for i, spec in enumerate(todo, 1):
        log(f"[{i}/{len(todo)}] {spec.key} {spec.label}")
        store.mark_running(spec)
        try:
            result = job(spec.to_dict())
        except Exception as err:  # one failed run must not stop the sweep; it is retried on resume
            store.mark_failed(spec, f"{type(err).__name__}: {err}\n{traceback.format_exc()}")
            log(f"  failed: {type(err).__name__}: {err}")
            counts["failed"] += 1
            continue
        store.record(spec, result)
        counts["done"] += 1
    return counts


def connect_ray(address: str | None, *, runtime_env: dict[str, Any] | None = None) -> Any:
    """Start a local Ray cluster (address None) or connect to one; a clear error when unreachable."""
    try:
        import ray
    except ImportError as err:
        raise SweepError("executor ray needs the ray package: pip install 'ray[default]'") from err
    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and address != "auto":
        check_reachable(address)  # ray.init retries an unreachable GCS for minutes
    try:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False,
                 include_dashboard=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as err:
        raise SweepError(
            f"ray: cannot reach the cluster at {address!r} ({type(err).__name__}: {err}); "
            "start it (`ray start --head`) or fix --address / RAY_ADDRESS"
        ) from err
    return ray


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A TCP connect to a Ray address (host:port, ray://host:port, http://host:port)."""
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise SweepError(f"ray: address {address!r}: expected HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as err:
        raise SweepError(
            f"ray: cluster at {address!r} is not reachable ({type(err).__name__}: {err}); "
            "start it (`ray start --head`) or fix --address / RAY_ADDRESS. Nothing was submitted"
        ) from err


def _runtime_env() -> dict[str, Any]:
    keep = ("FINBENCH_DATA_DIR", "FINBENCH_RUNS_DIR", "FINBENCH_CACHE", "FINBENCH_MIXTURES_DIR",
            "FINBENCH_TASKS_DIR", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HOME",
            "TOKENIZERS_PARALLELISM", "AXOLOTL_DO_NOT_TRACK", "PYTHONPATH")
    return {"env_vars": {k: os.environ[k] for k in keep if k in os.environ}}


def run_ray(sweep: Sweep, store: Store, job: Job = run_job, *, address: str | None = None,
            log: Callable[[str], None] = print) -> dict[str, int]:
    todo = pending(sweep, store)
    counts = {"done": 0, "failed": 0, "skipped": len(sweep.runs) - len(todo)}
    if not todo:
        return counts
    ray = connect_ray(address or sweep.ray.get("address"), runtime_env=_runtime_env())
    remote = ray.remote(
        num_cpus=sweep.ray.get("num_cpus", 1), num_gpus=sweep.ray.get("num_gpus", 0), max_retries=0
    )(job)
    inflight: dict[Any, RunSpec] = {}
    for spec in todo:
        store.mark_running(spec)
        inflight[remote.remote(spec.to_dict())] = spec
    log(f"ray: submitted {len(inflight)} run(s) to {ray.get_runtime_context().gcs_address}")
    while inflight:
        ready, _ = ray.wait(list(inflight), num_returns=1)
        for ref in ready:
            spec = inflight.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as err:
                store.mark_failed(spec, f"{type(err).__name__}: {err}")
                log(f"  failed {spec.key} {spec.label}: {type(err).__name__}: {str(err)[:300]}")
                counts["failed"] += 1
                continue
            store.record(spec, result)  # the driver is the only writer
            counts["done"] += 1
            log(f"  done {spec.key} {spec.label} ({result.get('seconds')} s)")
    return counts


def run_sweep(name_or_path: str | Sweep, executor: str = "local", *, address: str | None = None,
              job: Job = run_job, log: Callable[[str], None] = print) -> dict[str, int]:
    sweep = name_or_path if isinstance(name_or_path, Sweep) else load_sweep(name_or_path)
    if executor == "ray":  # reachability is checked before anything is recorded or submitted
        if pending_count(sweep):
            connect_ray(address or sweep.ray.get("address"), runtime_env=_runtime_env())
    elif executor == "slurm":  # sbatch on PATH, controller up, slurm: options accepted
        if pending_count(sweep):
            from finbench import slurm as SL

            SL.check_slurm(sweep.slurm)
    elif executor != "local":
        raise SweepError(f"unknown executor {executor!r}; expected local, ray or slurm")
    def execute(sw: Sweep, store: Any, jb: Job) -> dict[str, int]:
        if executor == "ray":
            return run_ray(sw, store, jb, address=address, log=log)
        if executor == "slurm":
            from finbench import slurm as SL

            return SL.run_slurm(sw, store, jb, log=log)
        return run_local(sw, store, jb, log=log)

    from dataclasses import replace

    with driver_lock(sweep.store), Store(sweep.store) as store:
        store.register(sweep)
        groups = lora_groups(sweep, store, log=log) if job is run_job else []
        if not groups:
            return execute(sweep, store, job)
        shared = {s.key for g in groups for s in g}
        counts = execute(replace(sweep, runs=[r for r in sweep.runs if r.key not in shared]), store, job)
        for k, v in run_shared(groups, sweep, store, execute, log).items():
            counts[k] += v
        return counts


@contextmanager
def driver_lock(store_path: Path) -> Iterator[None]:
    """One driver per store: a second `sweep run` would start the same pending runs twice.

    An OS file lock, so a killed driver releases it with its process.
    """
    import fcntl

    store_path.parent.mkdir(parents=True, exist_ok=True)
    lock = store_path.with_name(store_path.name + ".lock")
    with open(lock, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise SweepError(
                f"{store_path}: another `finbench sweep run` is using this store; wait for it to end"
            ) from err
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def pending_count(sweep: Sweep) -> int:
    if not sweep.store.is_file():
        return len(sweep.runs)
    with Store(sweep.store) as store:
        return len(pending(sweep, store))


# --------------------------------------------------------------------------------------------
# CLI


def _cmd_plan(args: argparse.Namespace) -> int:
    sweep = load_sweep(args.sweep)
    status = {}
    if sweep.store.is_file():
        with Store(sweep.store) as store:
            status = store.status()
    if args.json:
        print(json.dumps([{**r.to_dict(), "status": status.get(r.key, "pending")} for r in sweep.runs],
                         indent=1))
        return 0
    for r in sweep.runs:
        seed = "-" if r.api else r.seed  # API models are not trained: no seed
        print(f"{r.key}  {status.get(r.key, 'pending'):<8} {r.recipe:<22} {r.mixture:<36} seed={seed} job={r.job}")
    done = sum(status.get(r.key) == "done" for r in sweep.runs)
    print(f"# {len(sweep.runs)} runs = {len(sweep.recipes)} recipes x "
          f"{len(sweep.mixtures)} mixtures x {len(sweep.seeds)} seeds"
          f"{' + 1 base-model run per recipe' if sweep.base_eval else ''}"
          f"{f' + {len(sweep.api_models)} API-model run(s)' if sweep.api_models else ''}; "
          f"{done} done; store {sweep.store}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    counts = run_sweep(args.sweep, args.executor, address=args.address)
    print(f"# done {counts['done']}, failed {counts['failed']}, skipped (finished before) {counts['skipped']}")
    return 1 if counts["failed"] else 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="plan and run sweeps (recipes/sweeps/*.yaml)")
    ssub = p.add_subparsers(dest="sweep_command", required=True)
    pl = ssub.add_parser("plan", help="list the runs of a sweep with their keys and status")
    pl.add_argument("sweep", help="sweep name (recipes/sweeps/NAME.yaml) or path")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=_cmd_plan)
    r = ssub.add_parser("run", help="run the unfinished runs of a sweep")
    r.add_argument("sweep")
    r.add_argument("--executor", choices=["local", "ray", "slurm"], default="local")
    r.add_argument("--address", default=None, help="Ray cluster address (default: RAY_ADDRESS or a local cluster)")
    r.set_defaults(func=_cmd_run)


def main(argv: list[str] | None = None) -> int:
    """`python -m finbench.sweep plan|run SWEEP` (the handlers `finbench sweep` uses)."""
    parser = argparse.ArgumentParser(prog="finbench")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sweep", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except ValueError as err:  # SweepError, RecipeError, MixtureError: one clear line
        print(f"finbench: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
