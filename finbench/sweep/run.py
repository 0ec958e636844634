"""`run_sweep`: register the plan, then hand the pending runs to an executor.

LoRA runs that share a base model go through the shared-engine phases (engine.py) on the same
executor; every other run is one job (`jobs.run_job`) per run.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from finbench.sweep import engine
from finbench.sweep.executors import REGISTRY
from finbench.sweep.executors.base import Counts, Executor, Job, Log, pending
from finbench.sweep.jobs import run_job
from finbench.sweep.load import load_sweep
from finbench.sweep.model import Sweep, SweepError
from finbench.sweep.store import Store


def get_executor(name: str) -> Executor:
    if name not in REGISTRY:
        names = list(REGISTRY)
        expected = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
        raise SweepError(f"unknown executor {name!r}; expected {expected}")
    return REGISTRY[name]


def run_sweep(name_or_path: str | Sweep, executor: str = "local", *, address: str | None = None,
              job: Job = run_job, log: Log = print) -> Counts:
    sweep = name_or_path if isinstance(name_or_path, Sweep) else load_sweep(name_or_path)
    ex = get_executor(executor)
    if pending_count(sweep):  # reachability is checked before anything is recorded or submitted
        ex.check(sweep, address=address)

    def execute(sw: Sweep, store: Any, jb: Job) -> Counts:
        return ex.execute(sw, store, jb, address=address, log=log)

    with driver_lock(sweep.store), Store(sweep.store) as store:
        store.register(sweep)
        groups = engine.lora_groups(sweep, store, log=log) if job is run_job else []
        if not groups:
            return execute(sweep, store, job)
        shared = {s.key for g in groups for s in g}
        counts = execute(replace(sweep, runs=[r for r in sweep.runs if r.key not in shared]), store, job)
        for k, v in engine.run_shared(groups, sweep, store, execute, log).items():
            counts[k] += v
        return counts


@contextmanager
def driver_lock(store_path: Path) -> Iterator[None]:
    """One driver per store: a second `sweep run` would start the same pending runs twice.

    An OS file lock, so a killed driver releases it with its process.
    """
    store_path.parent.mkdir(parents=True, exist_ok=True)
    lock = store_path.with_name(store_path.name + ".lock")
    with open(lock, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise SweepError(
                f"{store_path}: another `finbench sweep run` is using this store; wait for it to end"
            ) from error
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def pending_count(sweep: Sweep) -> int:
    if not sweep.store.is_file():
        return len(sweep.runs)
    with Store(sweep.store) as store:
        return len(pending(sweep, store))
