"""The sweep file's `slurm:` block (validated, then turned into sbatch options) and the checks made
before anything is recorded or submitted; the executor is finbench/sweep/executors/slurm.py."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from typing import Any

from finbench.core.files import did_you_mean
from finbench.sweep.model import SweepError, err

SLURM_KEYS = ("partition", "account", "time", "cpus_per_task", "gpus", "mem", "max_parallel", "extra")
CMD_TIMEOUT_S = 60
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
