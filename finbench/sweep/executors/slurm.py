"""`--executor slurm`: the pending runs as ONE `sbatch` job array, the driver records.

`finbench sweep run SWEEP --executor slurm` (on a login node, or anywhere `sbatch` reaches the
cluster; the project folder must be on a file system the compute nodes share):

1. `check_slurm` fails with a clear SweepError before anything is recorded or submitted when
   `sbatch`/`squeue`/`scontrol` are missing, `scontrol ping` says the controller is down, or
   `sbatch --test-only` rejects the sweep's `slurm:` resources (bad partition, too many CPUs...).
2. Each pending run's RunSpec is written to the spool folder beside the store
   (`<store dir>/<store stem>.slurm/<run id>.json`, run id = `<run key>-<hash of spec and job>`),
   the run ids of this submission to `array-N.runs`, and one array job
   `--array=0-(N-1)[%max_parallel]` is submitted (`array-N.sbatch`). Task i runs
   `python -m finbench.slurm worker array-N.runs i --job MODULE:FUNCTION` in the project root:
   the job function (default finbench.sweep.run_job) on run i, writing `<run id>.result.json`
   (or `<run id>.error.txt`) atomically. Its stdout/stderr go to `logs/<jobid>_<i>.log`.
3. The driver polls `squeue -h -j JOBID` (no accounting database needed) and records each result
   file as it appears: the driver is the store's only writer. A task that leaves the queue without
   a result (time limit, node failure, scancel) is marked failed, naming its log file.

Resume: a killed driver loses nothing. Result files already in the spool are recorded without
resubmitting, and an array job of an earlier driver that is still queued or running (kept in
`jobs.json`) is adopted and waited for instead of being submitted again.

The sweep file's optional `slurm:` block sets the resources of every array task:

    slurm:
      partition: gpu           # default: the cluster's default partition
      account: myproject
      time: "04:00:00"         # per run: [D-]HH:MM:SS, or minutes
      cpus_per_task: 8
      gpus: 1                  # --gres=gpu:1
      mem: 64G                 # or megabytes as an integer
      max_parallel: 16         # --array=...%16: at most 16 runs at once
      extra: ["--qos=normal"]  # any other sbatch options, passed as given
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from finbench.core import settings
from finbench.sweep.executors.base import Counts, Executor, Job, Log, RunStore, new_counts, pending
from finbench.sweep.executors.slurm_config import (  # noqa: F401  (names this module always had)
    SLURM_KEYS,
    _run,
    check_slurm,
    parse_config,
    sbatch_options,
)
from finbench.sweep.executors.slurm_worker import (  # noqa: F401  (names this module always had)
    DEFAULT_JOB,
    _error_path,
    _log_path,
    _result_path,
    _write_atomic,
    main,
    resolve_job,
    spool_dir,
    worker,
)
from finbench.sweep.model import RunSpec, Sweep, SweepError, now

# squeue lists finished jobs for a while on some versions/configurations: they are gone for us
ENDED_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
                "DEADLINE", "OUT_OF_MEMORY"}
MAX_POLL_ERRORS = 30  # consecutive squeue failures before the driver gives up (the job keeps running)


# --------------------------------------------------------------------------------------------
# Spool folder (helpers in slurm_worker.py, which the compute nodes import)


def _read_jobs(spool: Path) -> list[dict[str, Any]]:
    path = spool / "jobs.json"
    if not path.is_file():
        return []
    try:
        jobs = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise SweepError(f"{path}: not valid JSON ({error}); delete it if no earlier array job still runs") from error
    return jobs if isinstance(jobs, list) else []


def _job_ref(job: Callable[..., Any] | str) -> str:
    """`module:function` of the job, checked to import back to the same function."""
    if isinstance(job, str):
        ref = job
    else:
        ref = f"{_public_module(job)}:{getattr(job, '__qualname__', '')}"
    try:
        found = resolve_job(ref)
    except (ImportError, AttributeError, ValueError) as error:
        raise SweepError(
            f"slurm: job {ref!r} cannot run on a compute node: it must be a module-level function "
            f"importable there ({type(error).__name__}: {error})"
        ) from error
    if not isinstance(job, str) and found is not job and _code_site(found) != _code_site(job):
        raise SweepError(f"slurm: job {ref!r} does not import back to the same function")
    return ref


def _public_module(job: Callable[..., Any]) -> str:
    """The shortest importable module that exports `job` (`finbench.sweep`, not
    `finbench.sweep.jobs`): job refs in spool files outlive a move of the code inside a package."""
    mod = getattr(job, "__module__", "") or ""
    if mod == "__main__":  # the driver runs as `python -m package.module`: its real module name
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        mod = spec.name if spec is not None else mod
    parts = mod.split(".")
    for i in range(1, len(parts)):
        module = sys.modules.get(".".join(parts[:i]))
        if module is not None and getattr(module, getattr(job, "__qualname__", ""), None) is job:
            return ".".join(parts[:i])
    return mod


def _code_site(fn: Any) -> tuple[str, int] | None:
    code = getattr(fn, "__code__", None)
    return None if code is None else (code.co_filename, code.co_firstlineno)


def _env_exports() -> list[str]:
    """The driver's settings as ONE value (FINBENCH_SETTINGS) plus the library variables it carries,
    written into the batch script (a site may set SBATCH_EXPORT=NONE). Secrets such as
    OPENAI_API_KEY or HF_TOKEN are never written to disk: they reach the task only through
    sbatch's default --export=ALL."""
    env = settings.current().forwarded_env()
    lines = [f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items())]
    # the driver's interpreter first on PATH: console scripts of its venv (axolotl, ...) resolve
    lines.append(f"export PATH={shlex.quote(str(Path(sys.executable).parent))}:\"$PATH\"")
    return lines


def batch_script(sweep_name: str, spool: Path, runs_file: Path, n: int, cfg: dict[str, Any], job_ref: str) -> str:
    array = f"0-{n - 1}" + (f"%{cfg['max_parallel']}" if cfg.get("max_parallel") else "")
    directives = [
        f"--job-name={job_name(sweep_name)}",
        f"--array={array}",
        f"--output={spool / 'logs' / '%A_%a.log'}",
        "--open-mode=append",
        *sbatch_options(cfg),
    ]
    command = [sys.executable, "-m", "finbench.slurm", "worker", str(runs_file)]
    lines = [
        "#!/bin/bash",
        *(f"#SBATCH {shlex.quote(d)}" for d in directives),
        "# generated by finbench.slurm: one array task = one sweep run",
        "set -eu",
        f"cd {shlex.quote(str(settings.ROOT))}",
        *_env_exports(),
        "export PYTHONUNBUFFERED=1",
        f'exec {shlex.join(command)} "$SLURM_ARRAY_TASK_ID" --job {shlex.quote(job_ref)}',
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Driver


def _submit(script: Path) -> str:
    res = _run(["sbatch", "--parsable", str(script)])
    if res.returncode != 0:
        raise SweepError(f"slurm: `sbatch --parsable {script}` failed: {(res.stderr or res.stdout).strip()}")
    job_id = res.stdout.strip().split(";")[0]
    if not job_id.isdigit():
        raise SweepError(f"slurm: sbatch printed {res.stdout.strip()!r}, expected a job id")
    return job_id


def job_name(sweep_name: str) -> str:
    return "finbench-" + re.sub(r"[^\w.-]", "_", sweep_name)


def in_queue(job_id: str, name: str | None = None) -> bool | None:
    """True while any task of the array is pending/running; False once gone; None: squeue failed.

    With `name`, a job of that id but another name (ids restart after a controller's state is
    wiped) counts as gone.
    """
    res = _run(["squeue", "-h", "-r", "-j", job_id, "-o", "%T %j"])
    if res.returncode != 0:
        # a job purged from the controller's memory (MinJobAge) is "Invalid job id"
        return False if "Invalid job id" in res.stderr else None
    for line in res.stdout.splitlines():
        state, _, jname = line.strip().partition(" ")
        if state not in ENDED_STATES and (name is None or jname == name):
            return True
    return False


def run_id(spec: RunSpec, job_ref: str) -> str:
    """The spool name of one run under one job function: `<run key>-<hash of spec and job>`.

    A result on disk is reused only for the very same spec and job (e.g. a shared-engine sweep's
    training phase and scoring phase submit the same key with different jobs). The recipe's mapping
    (`recipe_data`) is left out: the run key already hashes the recipe file, and leaving it out keeps
    the names that spools written before recipes travelled as values already have.
    """
    given = {k: v for k, v in spec.to_dict().items() if k != "recipe_data"}
    blob = json.dumps({"job": job_ref, "spec": given}, sort_keys=True, default=str)
    return f"{spec.key}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


class _Driver:
    """One `run_slurm` call: the spool folder, the runs in flight and what became of them."""

    def __init__(self, sweep: Sweep, store: RunStore, todo: list[RunSpec], job_ref: str, log: Log) -> None:
        self.sweep, self.store, self.log, self.job_ref = sweep, store, log, job_ref
        self.spool = spool_dir(sweep.store)
        (self.spool / "logs").mkdir(parents=True, exist_ok=True)
        self.by_id = {run_id(s, job_ref): s for s in todo}
        self.inflight: dict[str, tuple[str, int]] = {}  # run id -> (array job id, task index)
        self.name = job_name(sweep.name)
        self.counts = new_counts(sweep, todo)

    def finish(self, rid: str, where: tuple[str, int] | None) -> bool:
        """Record the result or error file of `rid` if there is one; True when the run is settled."""
        spec = self.by_id[rid]
        res_p, err_p = _result_path(self.spool, rid), _error_path(self.spool, rid)
        logf = _log_path(self.spool, *where) if where else None
        if res_p.is_file():
            result = json.loads(res_p.read_text(encoding="utf-8"))
            if result.get("key", spec.key) != spec.key:
                raise SweepError(f"{res_p}: holds the result of run {result.get('key')!r}, not {spec.key!r}")
            self.store.record(spec, result)
            self.counts["done"] += 1
            self.log(f"  done {spec.key} {spec.label} ({result.get('seconds')} s)")
            return True
        if err_p.is_file():
            msg = err_p.read_text(encoding="utf-8", errors="replace")
            self.store.mark_failed(spec, f"{msg}\nlog: {logf}" if logf else msg)
            self.counts["failed"] += 1
            last = (msg.strip().splitlines() or [""])[-1]
            self.log(f"  failed {spec.key} {spec.label}: {last[:300]} (log: {logf})")
            return True
        return False

    def claim_submitted(self, jobs: list[dict[str, Any]]) -> None:
        """Runs an earlier driver submitted but was killed before marking (it writes jobs.json first,
        so a submitted array is never lost): their attempt happened, so mark them running once."""
        status = self.store.status()  # one read, not one per run (a key not in it is pending)
        for rid in sorted({r for entry in jobs for r in entry["runs"] if r in self.by_id}):
            spec = self.by_id[rid]
            if any(status.get(m.key, "pending") == "pending" for m in spec.members):
                self.store.mark_running(spec)

    def record_earlier_results(self) -> None:
        """Results left by an earlier (killed) driver's array tasks: record, never resubmit."""
        for rid in list(self.by_id):
            if _result_path(self.spool, rid).is_file():
                self.log(f"  {self.by_id[rid].key}: result from an earlier submission")
                self.finish(rid, None)
                del self.by_id[rid]

    def adopt(self, jobs: list[dict[str, Any]]) -> None:
        """Array jobs of an earlier driver still queued or running: wait for their runs."""
        for entry in jobs:
            live = [r for r in entry["runs"] if r in self.by_id and r not in self.inflight]
            if live and in_queue(str(entry["job_id"]), self.name) is not False:
                for r in live:
                    self.inflight[r] = (str(entry["job_id"]), entry["runs"].index(r))
                self.log(f"slurm: adopted {len(live)} run(s) of array job {entry['job_id']} (still in the queue)")

    def submit(self, jobs: list[dict[str, Any]]) -> None:
        """The runs neither finished nor in the queue, as ONE array job."""
        new = [r for r in self.by_id if r not in self.inflight]
        if not new:
            return
        spool = self.spool
        for r in new:
            _write_atomic(spool / f"{r}.json", json.dumps(self.by_id[r].to_dict(), sort_keys=True, indent=1))
            with contextlib.suppress(FileNotFoundError):
                _error_path(spool, r).unlink()  # a retry starts clean
        n = len(jobs) + 1
        runs_file = spool / f"array-{n}.runs"
        _write_atomic(runs_file, "\n".join(new) + "\n")
        script = spool / f"array-{n}.sbatch"
        _write_atomic(script, batch_script(self.sweep.name, spool, runs_file, len(new), dict(self.sweep.slurm),
                                           self.job_ref))
        job_id = _submit(script)
        jobs.append({"job_id": job_id, "job": self.job_ref, "runs": new, "runs_file": runs_file.name,
                     "submitted": now()})
        _write_atomic(spool / "jobs.json", json.dumps(jobs, indent=1))
        for i, r in enumerate(new):
            self.store.mark_running(self.by_id[r])
            self.inflight[r] = (job_id, i)
        self.log(f"slurm: submitted array job {job_id} with {len(new)} run(s); logs in {spool / 'logs'}")

    def settle_gone(self, jid: str) -> None:
        """Array job `jid` left the queue: a task of it without a result has failed."""
        for r in [r for r, where in self.inflight.items() if where[0] == jid]:
            if not self.finish(r, self.inflight[r]):  # no result written before the task left the queue
                spec, task = self.by_id[r], f"{jid}_{self.inflight[r][1]}"
                logf = _log_path(self.spool, *self.inflight[r])
                self.store.mark_failed(spec, f"slurm: array task {task} left the queue without a result "
                                             f"(time limit, node failure, scancel?); log: {logf}")
                self.counts["failed"] += 1
                self.log(f"  failed {spec.key} {spec.label}: no result from task {task} (log: {logf})")
            del self.inflight[r]

    def poll(self, poll_s: float) -> None:
        """Record results as they land, polling the spool and `squeue` (backing off to `poll_s`)."""
        errors, delay = 0, 1.0
        while self.inflight:
            landed = [r for r, where in self.inflight.items() if self.finish(r, where)]
            for r in landed:
                del self.inflight[r]
            if not self.inflight:
                break
            delay = 1.0 if landed else min(delay * 1.5, max(poll_s, 1.0))
            states = {jid: in_queue(jid, self.name) for jid in {jid for jid, _ in self.inflight.values()}}
            if any(st is None for st in states.values()):
                errors += 1
                if errors >= MAX_POLL_ERRORS:
                    raise SweepError(
                        f"slurm: squeue failed {errors} times in a row; the array job(s) "
                        f"{sorted(states)} may still run: `finbench sweep run` again adopts them"
                    )
            else:
                errors = 0
            for jid in [j for j, st in states.items() if st is False]:
                self.settle_gone(jid)
            if self.inflight:
                time.sleep(delay)


def run_slurm(sweep: Sweep, store: RunStore, job: Callable[..., Any] | str = DEFAULT_JOB, *,
              log: Log = print, poll_s: float = 15.0) -> Counts:
    """Run the sweep's pending runs as one Slurm job array; record results as they appear.

    `store` needs status/mark_running/mark_failed/record (a Store or the shared-engine phase
    store); the spool folder follows `sweep.store`. Polls the spool folder and `squeue` every
    second at first, backing off to every `poll_s`.
    """
    todo = pending(sweep, store)
    if not todo:
        return new_counts(sweep, todo)
    driver = _Driver(sweep, store, todo, _job_ref(job), log)
    jobs = _read_jobs(driver.spool)
    driver.claim_submitted(jobs)
    driver.record_earlier_results()
    driver.adopt(jobs)
    driver.submit(jobs)
    try:
        driver.poll(poll_s)
    except KeyboardInterrupt:
        ids = sorted({jid for jid, _ in driver.inflight.values()})
        log(f"slurm: interrupted; array job(s) {ids} keep running: `finbench sweep run` again adopts "
            f"them, `scancel {' '.join(ids)}` stops them")
        raise
    return driver.counts


class SlurmExecutor(Executor):
    name = "slurm"
    config_key = "slurm"

    def parse_config(self, where: str, cfg: Any) -> dict[str, Any]:
        return parse_config(where, cfg)

    def check(self, sweep: Sweep, *, address: str | None = None) -> None:
        check_slurm(sweep.slurm)  # sbatch on PATH, controller up, slurm: options accepted

    def execute(self, sweep: Sweep, store: RunStore, job: Job, *, address: str | None = None,
                log: Log = print) -> Counts:
        return run_slurm(sweep, store, job, log=log)





if __name__ == "__main__":
    sys.exit(main())
