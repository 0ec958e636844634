"""One Slurm array task on a compute node: `python -m finbench.slurm worker RUNS_FILE INDEX --job
MODULE:FUNCTION` runs the job on the run at INDEX and writes its result (or error) file into the
spool folder, where the driver (finbench/sweep/executors/slurm.py) picks it up.

The worker is a command-line boundary: it resolves the settings the batch script exported
(FINBENCH_SETTINGS; the separate FINBENCH_* variables of arrays queued before it existed) once.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from finbench.core import settings
from finbench.core.files import write_atomic

DEFAULT_JOB = "finbench.sweep:run_job"


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


def resolve_job(ref: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    mod, _, name = ref.partition(":")
    if not mod or not name or "<" in name:
        raise ValueError(f"expected module:function, got {ref!r}")
    obj: Any = importlib.import_module(mod)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


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
    with settings.use(settings.Settings.from_env()):  # the boundary: what the batch script exported
        return worker(args.runs_file, args.index, args.job)

