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

import argparse
import contextlib
import hashlib
import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from finbench.core import settings
from finbench.core.files import did_you_mean, write_atomic
from finbench.sweep.executors.base import Counts, Executor, Job, Log, RunStore, new_counts, pending
from finbench.sweep.model import RunSpec, Sweep, SweepError, err, now

SLURM_KEYS = ("partition", "account", "time", "cpus_per_task", "gpus", "mem", "max_parallel", "extra")
# the driver's environment that a run needs on the compute node, written into the batch script
# (a site may set SBATCH_EXPORT=NONE). Secrets such as OPENAI_API_KEY are never written to disk:
# they reach the task only through sbatch's default --export=ALL.
ENV_PREFIXES = ("FINBENCH_", "HF_", "TRANSFORMERS_", "AXOLOTL_")
ENV_NAMES = ("PYTHONPATH", "TOKENIZERS_PARALLELISM")
DEFAULT_JOB = "finbench.sweep:run_job"
CMD_TIMEOUT_S = 60
# squeue lists finished jobs for a while on some versions/configurations: they are gone for us
ENDED_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
                "DEADLINE", "OUT_OF_MEMORY"}
MAX_POLL_ERRORS = 30  # consecutive squeue failures before the driver gives up (the job keeps running)


# --------------------------------------------------------------------------------------------
# The sweep file's `slurm:` block


# Upper bounds of the numeric options (beyond them a value is a typo): Slurm's own limits or more.
SLURM_MAX = {"cpus_per_task": 4096, "gpus": 64, "max_parallel": 100_000, "time": 10**7, "mem": 10**9}


def parse_config(where: str, cfg: Any) -> dict[str, Any]:
    """Validate a sweep's `slurm:` block (None: no options) and return it as a plain dict."""
    if cfg is None:
        return {}
    if not isinstance(cfg, dict):
        raise err(where, "slurm", f"expected a mapping with keys from {list(SLURM_KEYS)}, got {cfg!r}")
    for k in cfg:
        if k not in SLURM_KEYS:
            hint = did_you_mean(k, SLURM_KEYS, n=1, quote=False)
            raise err(where, f"slurm.{k}", f"unknown key.{hint} Expected one of {list(SLURM_KEYS)}")

    def pos_int(k: str, minimum: int = 1) -> None:
        v, most = cfg.get(k), SLURM_MAX[k]
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not minimum <= v <= most):
            raise err(where, f"slurm.{k}", f"expected an integer in [{minimum}, {most}], got {v!r}")

    for k in ("partition", "account"):
        v = cfg.get(k)
        if v is not None and (not isinstance(v, str) or not re.fullmatch(r"[\w.,-]+", v)):
            raise err(where, f"slurm.{k}", f"expected a {k} name, got {v!r}")
    pos_int("cpus_per_task")
    pos_int("gpus", 0)
    pos_int("max_parallel")
    t = cfg.get("time")
    if t is not None and not (
        (isinstance(t, int) and not isinstance(t, bool) and 0 < t <= SLURM_MAX["time"])
        or (isinstance(t, str) and re.fullmatch(r"(\d+-)?\d+(:\d{1,2}){0,2}", t))
    ):
        raise err(where, "slurm.time", f"expected minutes (at most {SLURM_MAX['time']}) or [D-]HH:MM:SS, got {t!r}")
    mem = cfg.get("mem")
    if mem is not None and not (
        (isinstance(mem, int) and not isinstance(mem, bool) and 0 < mem <= SLURM_MAX["mem"])
        or (isinstance(mem, str) and re.fullmatch(r"\d+[KMGT]?", mem))
    ):
        raise err(where, "slurm.mem", f"expected megabytes (at most {SLURM_MAX['mem']}) or a size such as 16G, "
                                      f"got {mem!r}")
    extra = cfg.get("extra", [])
    if not isinstance(extra, list) or not all(isinstance(a, str) and a.startswith("-") for a in extra):
        raise err(where, "slurm.extra", f"expected a list of sbatch options such as ['--qos=x'], got {extra!r}")
    return dict(cfg)


def sbatch_options(cfg: dict[str, Any]) -> list[str]:
    """The `slurm:` block as sbatch options (the same for --test-only and the real submission)."""
    out = []
    if cfg.get("partition"):
        out.append(f"--partition={cfg['partition']}")
    if cfg.get("account"):
        out.append(f"--account={cfg['account']}")
    if cfg.get("time") is not None:
        out.append(f"--time={cfg['time']}")
    if cfg.get("cpus_per_task"):
        out.append(f"--cpus-per-task={cfg['cpus_per_task']}")
    if cfg.get("gpus"):
        out.append(f"--gres=gpu:{cfg['gpus']}")
    if cfg.get("mem") is not None:
        out.append(f"--mem={cfg['mem']}")
    return out + list(cfg.get("extra", []))


# --------------------------------------------------------------------------------------------
# Checks before anything is recorded or submitted


def _run(cmd: list[str], timeout: float = CMD_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as error:
        raise SweepError(
            f"slurm: `{shlex.join(cmd)}` did not answer within {timeout:.0f} s: is the controller "
            "(slurmctld) reachable from here? Nothing was submitted"
        ) from error


def check_slurm(cfg: dict[str, Any] | None = None) -> None:
    """Raise a SweepError naming the failed command when Slurm cannot take the sweep's jobs."""
    missing = [c for c in ("sbatch", "squeue", "scontrol") if shutil.which(c) is None]
    if missing:
        raise SweepError(
            f"slurm: {', '.join(f'`{c}`' for c in missing)} not found on PATH: run on a node with the "
            "Slurm client commands (Debian: apt-get install slurm-client; a local test cluster: "
            "bash tests/slurm/setup_local_slurm.sh). Nothing was submitted"
        )
    ping = _run(["scontrol", "ping"])
    text = (ping.stdout + ping.stderr).strip()
    if ping.returncode != 0 or "is UP" not in text:
        text = text.splitlines()[0] if text else ""  # without the RESTORE ... banner
        raise SweepError(
            f"slurm: the controller is not reachable: `scontrol ping` said {text or f'exit {ping.returncode}'!r}. "
            "Check that slurmctld runs and that SLURM_CONF and munge are set up on this machine "
            "(a local test cluster: bash tests/slurm/setup_local_slurm.sh). Nothing was submitted"
        )
    if cfg is not None:  # the sweep's resources, validated by the controller itself
        cmd = ["sbatch", "--test-only", "--array=0-1", *sbatch_options(cfg), "--wrap", "true"]
        test = _run(cmd)
        if test.returncode != 0:
            raise SweepError(
                f"slurm: `{shlex.join(cmd)}` rejected the sweep's slurm: options: "
                f"{(test.stderr or test.stdout).strip()}. Nothing was submitted"
            )


# --------------------------------------------------------------------------------------------
# Spool folder: specs, keys lists, results, logs (the only state shared with the compute nodes)


def spool_dir(store_path: Path) -> Path:
    return store_path.with_name(store_path.stem + ".slurm")


def _write_atomic(path: Path, text: str) -> None:
    """Readable by the compute nodes (0644) and on disk before the driver reads it (fsync)."""
    write_atomic(path, text, fsync=True, mode=0o644)


def _result_path(spool: Path, rid: str) -> Path:
    return spool / f"{rid}.result.json"


def _error_path(spool: Path, rid: str) -> Path:
    return spool / f"{rid}.error.txt"


def _log_path(spool: Path, job_id: str, index: int) -> Path:
    return spool / "logs" / f"{job_id}_{index}.log"


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


def resolve_job(ref: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    mod, _, name = ref.partition(":")
    if not mod or not name or "<" in name:
        raise ValueError(f"expected module:function, got {ref!r}")
    obj: Any = importlib.import_module(mod)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _env_exports() -> list[str]:
    keep = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES) or k in ENV_NAMES}
    lines = [f"export {k}={shlex.quote(v)}" for k, v in sorted(keep.items())]
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
    worker = [sys.executable, "-m", "finbench.slurm", "worker", str(runs_file)]
    lines = [
        "#!/bin/bash",
        *(f"#SBATCH {shlex.quote(d)}" for d in directives),
        "# generated by finbench.slurm: one array task = one sweep run",
        "set -eu",
        f"cd {shlex.quote(str(settings.ROOT))}",
        *_env_exports(),
        "export PYTHONUNBUFFERED=1",
        f'exec {shlex.join(worker)} "$SLURM_ARRAY_TASK_ID" --job {shlex.quote(job_ref)}',
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
    training phase and scoring phase submit the same key with different jobs).
    """
    blob = json.dumps({"job": job_ref, "spec": spec.to_dict()}, sort_keys=True, default=str)
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
    driver.record_earlier_results()
    jobs = _read_jobs(driver.spool)
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


# --------------------------------------------------------------------------------------------
# Worker (one array task on a compute node)


def worker(runs_file: Path, index: int, job_ref: str = DEFAULT_JOB) -> int:
    """Run the run at `index` of `runs_file` (one run id a line) with the job `job_ref`."""
    ids = runs_file.read_text(encoding="utf-8").split()
    if not 0 <= index < len(ids):
        print(f"finbench.slurm: task {index} out of range for {runs_file} ({len(ids)} runs)", file=sys.stderr)
        return 2
    rid = ids[index]
    spool = runs_file.parent
    if _result_path(spool, rid).is_file():  # a requeued task whose run already finished
        print(f"finbench.slurm: {rid}: result already there")
        return 0
    try:
        spec = json.loads((spool / f"{rid}.json").read_text(encoding="utf-8"))
        print(f"finbench.slurm: {rid}: {spec['recipe']} x {spec['mixture']} x seed {spec['seed']} "
              f"({job_ref}) on {os.uname().nodename}, task {os.environ.get('SLURM_ARRAY_JOB_ID')}_{index}",
              flush=True)
        result = resolve_job(job_ref)(spec)
        text = json.dumps(result, sort_keys=True, default=str)
    except Exception as error:  # reported to the driver through the error file; exit 1 for Slurm
        tb = traceback.format_exc()
        print(tb, file=sys.stderr, flush=True)
        _write_atomic(_error_path(spool, rid), f"{type(error).__name__}: {error}\n{tb}")
        return 1
    _write_atomic(_result_path(spool, rid), text)
    print(f"finbench.slurm: {rid}: result written", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m finbench.slurm", description="Slurm array-task worker")
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("worker", help="run one array task: the run at INDEX of RUNS_FILE")
    w.add_argument("runs_file", type=Path)
    w.add_argument("index", type=int)
    w.add_argument("--job", default=DEFAULT_JOB, help="module:function (default %(default)s)")
    args = p.parse_args(argv)
    return worker(args.runs_file, args.index, args.job)


if __name__ == "__main__":
    sys.exit(main())
