"""The README's commands as a new user runs them: GPU machines (a fake `nvidia-smi`), a fresh clone
offline with no data setting, `make eval` batch size on CPU."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")


def _stamp_hash() -> str:
    # As the Makefile computes it: sha256 of pyproject.toml + Makefile, first 12 hex digits.
    data = (ROOT / "pyproject.toml").read_bytes() + (ROOT / "Makefile").read_bytes()
    return hashlib.sha256(data).hexdigest()[:12]


def _installed_venv(tmp_path: Path, gpu: int) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / f".installed-{_stamp_hash()}-gpu{gpu}").touch()
    # A stand-in `finbench` that shows the environment the Makefile gives it.
    fb = venv / "bin" / "finbench"
    fb.write_text('#!/bin/sh\necho "ARGS $*"\necho "HF_HUB_OFFLINE=${HF_HUB_OFFLINE-unset}"\n'
                  'echo "FINBENCH_DATA_DIR=${FINBENCH_DATA_DIR-unset}"\n')
    fb.chmod(0o755)
    return venv


def _env(tmp_path: Path, gpu: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FINBENCH_", "MAKE"))}
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir(exist_ok=True)
    if gpu:
        smi = bin_dir / "nvidia-smi"
        smi.write_text('#!/bin/sh\necho "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-fake)"\n')
        smi.chmod(0o755)
    # PATH without any real nvidia-smi: keep only the folders of the tools make needs.
    tools = {Path(shutil.which(t)).parent for t in ("make", "bash", "cat", "sha256sum", "cut") if shutil.which(t)}
    env["PATH"] = os.pathsep.join([str(bin_dir), *sorted(map(str, tools))])
    return env


def _make(args: list[str], env: dict[str, str], dry: bool = True) -> str:
    cmd = ["make", "-s", *(["-n"] if dry else []), "-C", str(ROOT), *args]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


@needs_make
def test_gpu_machine_train_neither_reinstalls_nor_forces_offline(tmp_path):
    venv = _installed_venv(tmp_path, gpu=1)  # as `make install` left it on the GPU machine
    env = _env(tmp_path, gpu=True)
    dry = _make(["train", "RECIPE=phi3_cocktail", f"VENV={venv}"], env)
    assert dry.strip() == f"{venv}/bin/finbench train phi3_cocktail", dry  # no pip, no stamp
    assert "HF_HUB_OFFLINE" not in dry
    ran = _make(["train", "RECIPE=phi3_cocktail", f"VENV={venv}"], env, dry=False)
    assert "HF_HUB_OFFLINE=unset" in ran and "FINBENCH_DATA_DIR=unset" in ran
    env["HF_HUB_OFFLINE"] = "1"  # a user's own setting is kept
    assert "HF_HUB_OFFLINE=1" in _make(["train", "RECIPE=phi3_cocktail", f"VENV={venv}"], env, dry=False)


@needs_make
def test_cpu_machine_uses_the_cpu_stamp_and_tiny_cpu_uses_fixtures(tmp_path):
    venv = _installed_venv(tmp_path, gpu=0)
    env = _env(tmp_path, gpu=False)
    ran = _make(["train", "RECIPE=tiny_cpu", f"VENV={venv}"], env, dry=False)
    assert f"FINBENCH_DATA_DIR={ROOT}/tests/fixtures/data" in ran and "HF_HUB_OFFLINE=1" in ran
    env["FINBENCH_DATA_DIR"] = "/data/raw"  # the user's data wins
    ran = _make(["train", "RECIPE=tiny_cpu", f"VENV={venv}"], env, dry=False)
    assert "FINBENCH_DATA_DIR=/data/raw" in ran and "HF_HUB_OFFLINE=unset" in ran


@needs_make
def test_make_eval_integer_batch_on_cpu_and_batch_size_setting(tmp_path):
    venv = _installed_venv(tmp_path, gpu=0)
    env = _env(tmp_path, gpu=False)
    assert "--batch-size 8" in _make(["eval", "MODEL=builtin:smollm2", f"VENV={venv}"], env)
    assert "--batch-size 2" in _make(["eval", "MODEL=builtin:smollm2", "BATCH_SIZE=2", f"VENV={venv}"], env)
    gpu_venv = _installed_venv(tmp_path / "g", gpu=1)
    assert "--batch-size auto" in _make(["eval", "MODEL=x", f"VENV={gpu_venv}"], _env(tmp_path / "g", gpu=True))


def test_fresh_clone_offline_data_command_is_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINBENCH_", "HF_"))}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(ROOT))
    res = subprocess.run(
        [sys.executable, "-m", "finbench.cli", "data", "fpb", "--limit", "1"],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert "takala/financial_phrasebank" in lines[0]
    assert "FINBENCH_DATA_DIR" in lines[0] and "FINBENCH_HUB_MIRROR" in lines[0]


@pytest.mark.parametrize(
    "env,expected",
    [({}, "sample"), ({"FINBENCH_HUB_MIRROR": "/m"}, "hub"), ({"FINBENCH_DATA_DIR": "/d", "FINBENCH_HUB_MIRROR": "/m"}, "dir")],
)
def test_demo_data_choice_and_no_outside_folder(monkeypatch, tmp_path, capsys, env, expected):
    from finbench import demo
    for key in ("FINBENCH_DATA_DIR", "FINBENCH_HUB_MIRROR", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    choice, s = demo.choose_data("auto")
    assert choice == expected
    assert capsys.readouterr().out.startswith("data: ")
    assert s.offline == (expected != "hub")  # the settings value the demo runs under (and forwards)
    assert s.forwarded_env().get("HF_HUB_OFFLINE") == ("1" if expected != "hub" else None)
    assert "HF_HUB_OFFLINE" not in os.environ  # the environment is left as it was
    # Without a user data folder: the shipped sample where it has the dataset, else the fixtures.
    origin = demo.overlay_data_dir(tmp_path, ["fpb", "tfns"], sample=True)
    assert origin == {"fpb": "fixtures", "tfns": "shipped sample (real rows)"}
    assert (tmp_path / "twitter_financial_news_sentiment").resolve() == demo.SAMPLES / "twitter_financial_news_sentiment"
    assert "shared" not in (ROOT / "finbench" / "demo.py").read_text()
