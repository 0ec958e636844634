"""`--executor local`: the pending runs one after another in this process."""

from __future__ import annotations

import traceback

from finbench.sweep.executors.base import Counts, Executor, Job, Log, RunStore, new_counts, pending
from finbench.sweep.model import Sweep


def run_local(sweep: Sweep, store: RunStore, job: Job, *, log: Log = print) -> Counts:
    todo = pending(sweep, store)
    counts = new_counts(sweep, todo)
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


class LocalExecutor(Executor):
    name = "local"

    def execute(self, sweep: Sweep, store: RunStore, job: Job, *, address: str | None = None,
                log: Log = print) -> Counts:
        return run_local(sweep, store, job, log=log)
