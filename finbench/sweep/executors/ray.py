"""`--executor ray`: the pending runs as Ray tasks; only the driver writes to the store.

`ray.init()` starts a local cluster, or connects to `--address`/RAY_ADDRESS/the sweep's
`ray: {address}`. On a real cluster, submit the driver itself with Ray Jobs:

    ray job submit --address http://HEAD:8265 --working-dir . -- finbench sweep run SWEEP --executor ray

The sweep's `ray:` block sets each run's resources: `{num_cpus: 1, num_gpus: 0, address: ...}`.
"""

from __future__ import annotations

import math
import os
import socket
from typing import Any
from urllib.parse import urlsplit

from finbench.core import settings
from finbench.core.files import did_you_mean
from finbench.sweep.executors.base import Counts, Executor, Job, Log, RunStore, new_counts, pending
from finbench.sweep.model import Sweep, SweepError, err

RAY_KEYS = {"num_cpus", "num_gpus", "address"}


MAX_RESOURCES = {"num_cpus": 1024, "num_gpus": 64}  # per run; beyond this a value is a typo


def parse_config(where: str, cfg: Any) -> dict[str, Any]:
    cfg = {} if cfg is None else cfg
    if not isinstance(cfg, dict):
        raise err(where, "ray", f"expected a mapping with keys from {sorted(RAY_KEYS)}, got {cfg!r}")
    for k in cfg:
        if k not in RAY_KEYS:
            hint = did_you_mean(k, sorted(RAY_KEYS), n=1, quote=False)
            raise err(where, f"ray.{k}", f"unknown key.{hint} Expected one of {sorted(RAY_KEYS)}")
    for k, most in MAX_RESOURCES.items():
        v = cfg.get(k, 1 if k == "num_cpus" else 0)
        # Ray takes fractions of one CPU/GPU (several runs share it) and whole numbers above one.
        ok = (not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)
              and 0 <= v <= most and (v <= 1 or v == int(v)))
        if not ok:
            raise err(where, f"ray.{k}", f"expected a fraction in [0, 1] or a whole number up to {most}, got {v!r}")
    address = cfg.get("address")
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise err(where, "ray.address", f"expected HOST:PORT, ray://HOST:PORT or auto, got {address!r}")
    return dict(cfg)


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A TCP connect to a Ray address (host:port, ray://host:port, http://host:port)."""
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
    except OSError as error:
        raise SweepError(
            f"ray: cluster at {address!r} is not reachable ({type(error).__name__}: {error}); "
            "start it (`ray start --head`) or fix --address / RAY_ADDRESS. Nothing was submitted"
        ) from error


def connect_ray(address: str | None, *, runtime_env: dict[str, Any] | None = None) -> Any:
    """Start a local Ray cluster (address None) or connect to one; a clear error when unreachable."""
    try:
        import ray  # optional and heavy: only for this executor
    except ImportError as error:
        raise SweepError("executor ray needs the ray package: pip install 'ray[default]'") from error
    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or None  # Ray's own variable, as `ray start` prints it
    if address and address != "auto":
        check_reachable(address)  # ray.init retries an unreachable GCS for minutes
    try:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False,
                 include_dashboard=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as error:
        raise SweepError(
            f"ray: cannot reach the cluster at {address!r} ({type(error).__name__}: {error}); "
            "start it (`ray start --head`) or fix --address / RAY_ADDRESS"
        ) from error
    return ray


def runtime_env(s: settings.Settings | None = None) -> dict[str, Any]:
    """The workers' environment: the driver's settings (FINBENCH_SETTINGS) and the library variables
    they carry (read at the libraries' import on the worker, so they cannot wait for the task)."""
    return {"env_vars": (s or settings.current()).forwarded_env()}


def task_entry(job: Job, spec: dict[str, Any], settings_json: str) -> dict[str, Any]:
    """One Ray task, the worker's boundary: the job runs under the driver's settings value (the
    worker's own NODE_RANK/MASTER_ADDR, which are per machine)."""
    with settings.use(settings.Settings.from_env({**os.environ, settings.SETTINGS_ENV: settings_json})):
        return job(spec)


def run_ray(sweep: Sweep, store: RunStore, job: Job, *, address: str | None = None,
            log: Log = print) -> Counts:
    todo = pending(sweep, store)
    counts = new_counts(sweep, todo)
    if not todo:
        return counts
    s = settings.current()
    ray = connect_ray(address or sweep.ray.get("address"), runtime_env=runtime_env(s))
    remote = ray.remote(
        num_cpus=sweep.ray.get("num_cpus", 1), num_gpus=sweep.ray.get("num_gpus", 0), max_retries=0
    )(task_entry)
    inflight: dict[Any, Any] = {}
    for spec in todo:
        store.mark_running(spec)
        inflight[remote.remote(job, spec.to_dict(), s.to_json())] = spec
    log(f"ray: submitted {len(inflight)} run(s) to {ray.get_runtime_context().gcs_address}")
    while inflight:
        ready, _ = ray.wait(list(inflight), num_returns=1)
        for ref in ready:
            spec = inflight.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as error:
                store.mark_failed(spec, f"{type(error).__name__}: {error}")
                log(f"  failed {spec.key} {spec.label}: {type(error).__name__}: {str(error)[:300]}")
                counts["failed"] += 1
                continue
            store.record(spec, result)  # the driver is the only writer
            counts["done"] += 1
            log(f"  done {spec.key} {spec.label} ({result.get('seconds')} s)")
    return counts


class RayExecutor(Executor):
    name = "ray"
    config_key = "ray"

    def parse_config(self, where: str, cfg: Any) -> dict[str, Any]:
        return parse_config(where, cfg)

    def check(self, sweep: Sweep, *, address: str | None = None) -> None:
        connect_ray(address or sweep.ray.get("address"), runtime_env=runtime_env())

    def execute(self, sweep: Sweep, store: RunStore, job: Job, *, address: str | None = None,
                log: Log = print) -> Counts:
        return run_ray(sweep, store, job, address=address, log=log)
