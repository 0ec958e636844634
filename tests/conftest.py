"""Shared test fixtures: fixture data, real shared data (skipped when absent), tiny models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DATA = ROOT / "tests" / "fixtures" / "data"
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"real upstream files not present at {SHARED_DATA}"
)


@pytest.fixture
def fixture_data(monkeypatch) -> Path:
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(FIXTURE_DATA))
    return FIXTURE_DATA


@pytest.fixture
def data_copy(tmp_path, monkeypatch) -> Path:
    """A writable copy of the fixture data as FINBENCH_DATA_DIR, with its own task cache."""
    import shutil

    root = tmp_path / "data"
    shutil.copytree(FIXTURE_DATA, root, ignore=shutil.ignore_patterns("*.parquet", "*.py"))
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(root))
    monkeypatch.setenv("FINBENCH_CACHE", str(tmp_path / "cache"))
    return root


@pytest.fixture
def sweep_env(tmp_path, monkeypatch) -> Path:
    """A sweep's world: fixture rows, a runs folder in tmp_path, the hub offline."""
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(FIXTURE_DATA))
    monkeypatch.setenv("FINBENCH_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tmp_path.chmod(0o755)  # Slurm's job processes read and write here
    return tmp_path


@pytest.fixture
def shared_data(monkeypatch) -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real upstream files not present at {SHARED_DATA}")
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(SHARED_DATA))
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    from finbench.train.models import tiny_model

    return tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama", arch="llama")


@pytest.fixture(scope="session")
def task_manager():
    from lm_eval.tasks import TaskManager

    from finbench.data.tasks import TASKS_DIR

    return TaskManager(include_path=str(TASKS_DIR), include_defaults=False)


def store_rows(path: Path) -> list:
    """A sweep store's `runs` rows (key, status, attempts, error, info), by key, read with plain sqlite3."""
    import sqlite3

    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT key, status, attempts, error, info FROM runs ORDER BY key").fetchall()
    finally:
        db.close()


@pytest.fixture
def recipe_parses(monkeypatch) -> list[Path]:
    """Every YAML parse of a file in recipes/ from now on (`finbench.data.raw.read_yaml` is the one
    entry point for our YAML files): a sweep parses each recipe once, when it is loaded."""
    from finbench.data import raw as D

    seen: list[Path] = []
    real = D.read_yaml
    recipes = (ROOT / "recipes").resolve()

    def counting(path, *args, **kwargs):
        if Path(path).resolve().parent == recipes:
            seen.append(Path(path).resolve())
        return real(path, *args, **kwargs)

    monkeypatch.setattr(D, "read_yaml", counting)
    return seen
