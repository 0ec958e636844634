"""Where a sweep's runs execute: one module per executor behind `base.Executor`, and the registry.

A new executor is one new module here and one line below; `finbench sweep run --executor` offers
every name in REGISTRY, and a sweep file may carry a block named by the executor's `config_key`.
"""

from __future__ import annotations

from finbench.sweep.executors import local, ray, slurm
from finbench.sweep.executors.base import Executor

REGISTRY: dict[str, Executor] = {
    "local": local.LocalExecutor(),
    "ray": ray.RayExecutor(),
    "slurm": slurm.SlurmExecutor(),
}
