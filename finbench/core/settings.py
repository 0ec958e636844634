"""Every path and environment setting the package reads, in one place, read when asked (not at import).

Tests and users change these variables at run time; reading them lazily keeps that working.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: tasks/, recipes/, mixtures/ ...

DATA_DIR_ENV = "FINBENCH_DATA_DIR"  # upstream raw files, one folder per dataset
HUB_MIRROR_ENV = "FINBENCH_HUB_MIRROR"  # DIR/<org>/<name>/... laid out as the hub serves them
RUNS_DIR_ENV = "FINBENCH_RUNS_DIR"
VERBOSE_ENV = "FINBENCH_VERBOSE"  # 1: library warnings are shown (`finbench -v` sets it)


def _path(env: str, default: Path) -> Path:
    value = os.environ.get(env)
    return Path(value).expanduser() if value else default


def tasks_dir() -> Path:
    return _path("FINBENCH_TASKS_DIR", ROOT / "tasks")


def recipes_dir() -> Path:
    return _path("FINBENCH_RECIPES_DIR", ROOT / "recipes")


def mixtures_dir() -> Path:
    return _path("FINBENCH_MIXTURES_DIR", ROOT / "mixtures")


def sweeps_dir() -> Path:
    return _path("FINBENCH_SWEEPS_DIR", ROOT / "recipes" / "sweeps")


def runs_dir() -> Path:
    return _path(RUNS_DIR_ENV, ROOT / "runs").resolve()


def cache_dir() -> Path:
    return _path("FINBENCH_CACHE", Path.home() / ".cache" / "finbench")


def data_dir() -> Path | None:
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser().resolve() if value else None


def hub_mirror() -> Path | None:
    value = os.environ.get(HUB_MIRROR_ENV)
    return Path(value).expanduser().resolve() if value else None


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in ("1", "true", "yes", "on")


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "0").strip().lower() in ("1", "true", "yes", "on")
