"""The one interface every executor implements; `executors/__init__.py` holds the registry.

An executor takes the sweep's pending runs and a job function, runs the job on each run
somewhere (this process, a Ray cluster, a Slurm array) and hands each result to the store as it
arrives: the driver is the store's only writer. A new executor is one module with a subclass of
`Executor` and one line in `REGISTRY`; `finbench sweep run --executor` lists the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Protocol

from finbench.sweep.model import RunSpec, Sweep

Job = Callable[[dict[str, Any]], dict[str, Any]]  # RunSpec.to_dict() -> RunResult.to_dict()
Log = Callable[[str], None]
Counts = dict[str, int]  # done, failed, skipped (finished before)


class RunStore(Protocol):
    """What an executor needs of the store (a Store, or a shared-engine phase's view of it)."""

    def status(self, keys: Iterable[str] | None = None) -> dict[str, str]: ...
    def mark_running(self, spec: RunSpec) -> None: ...
    def mark_failed(self, spec: RunSpec, error: str) -> None: ...
    def record(self, spec: RunSpec, result: Any) -> None: ...


class Executor:
    """Runs a sweep's pending runs. Subclasses set `name` and implement `execute`."""

    name: ClassVar[str]
    config_key: ClassVar[str | None] = None  # the executor's own block in the sweep file, if any

    def parse_config(self, where: str, cfg: Any) -> dict[str, Any]:
        """Validate the executor's sweep-file block (None: absent) into a plain dict."""
        return {}

    def options(self, sweep: Sweep) -> dict[str, Any]:
        """The sweep's validated block for this executor ({} without one)."""
        return sweep.executor_options.get(self.config_key or "", {})

    def check(self, sweep: Sweep, *, address: str | None = None) -> None:
        """Fail with a SweepError before anything is recorded or submitted (cluster unreachable...)."""

    def execute(self, sweep: Sweep, store: RunStore, job: Job, *, address: str | None = None,
                log: Log = print) -> Counts:
        raise NotImplementedError


def pending(sweep: Sweep, store: RunStore) -> list[RunSpec]:
    st = store.status(r.key for r in sweep.runs)
    return [r for r in sweep.runs if st[r.key] != "done"]


def new_counts(sweep: Sweep, todo: list[RunSpec]) -> Counts:
    return {"done": 0, "failed": 0, "skipped": len(sweep.runs) - len(todo)}
