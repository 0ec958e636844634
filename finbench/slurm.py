"""Kept so that Slurm array jobs already queued keep working: their batch scripts run
`python -m finbench.slurm worker RUNS_FILE INDEX --job MODULE:FUNCTION`.

The Slurm executor lives in finbench/sweep/executors/slurm.py (the driver), slurm_config.py (the
`slurm:` block and the checks) and slurm_worker.py (the array task, whose `main` is the boundary
that resolves the settings the batch script exported).
"""

from __future__ import annotations

import sys

from finbench.sweep.executors.slurm import (  # noqa: F401  (the names this module always had)
    DEFAULT_JOB,
    SLURM_KEYS,
    _error_path,
    _job_ref,
    _log_path,
    _result_path,
    batch_script,
    check_slurm,
    in_queue,
    job_name,
    main,
    parse_config,
    resolve_job,
    run_id,
    run_slurm,
    sbatch_options,
    spool_dir,
    worker,
)

if __name__ == "__main__":
    sys.exit(main())
