"""The settings as one value: read from the environment in one place, set at a boundary, forwarded
to child processes and executors as FINBENCH_SETTINGS, never written back into os.environ."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from finbench.core import settings
from finbench.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_from_env_reads_every_variable_and_defaults_under_the_repository(tmp_path) -> None:
    env = {"FINBENCH_DATA_DIR": str(tmp_path / "raw"), "FINBENCH_HUB_MIRROR": str(tmp_path / "mirror"),
           "FINBENCH_RUNS_DIR": str(tmp_path / "runs"), "FINBENCH_TASKS_DIR": str(tmp_path / "tasks"),
           "FINBENCH_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1", "FINBENCH_VERBOSE": "yes",
           "FINBENCH_JUDGE_URL": "http://judge:8000/v1", "FINBENCH_JUDGE_MODEL": "m",
           "FINBENCH_VLLM_CPU_MEMORY": "0.5", "HF_HOME": "/h", "HF_TOKEN": "hf_secret",
           "TOKENIZERS_PARALLELISM": "false", "OPENAI_API_KEY": "sk-x", "NODE_RANK": "3", "HOME": "/root"}
    s = Settings.from_env(env)
    assert (s.data_dir, s.hub_mirror, s.runs_dir, s.tasks_dir, s.cache_dir) == (
        tmp_path / "raw", tmp_path / "mirror", tmp_path / "runs", tmp_path / "tasks", tmp_path / "cache")
    assert s.offline and s.verbose and s.vllm_cpu_memory == 0.5
    assert (s.judge_url, s.judge_model, s.node_rank, s.master_port) == ("http://judge:8000/v1", "m", "3", "29500")
    # library variables travel; secrets and unrelated variables do not
    assert s.library == {"HF_HOME": "/h", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    d = Settings.from_env({})
    assert (d.tasks_dir, d.recipes_dir, d.mixtures_dir, d.sweeps_dir) == (
        ROOT / "tasks", ROOT / "recipes", ROOT / "mixtures", ROOT / "recipes" / "sweeps")
    assert d.runs_dir == (ROOT / "runs").resolve() and d.data_dir is None and not d.offline and not d.verbose


def test_json_round_trip_is_exact_and_deterministic_without_per_process_fields(tmp_path) -> None:
    s = Settings.from_env({"FINBENCH_DATA_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1", "HF_HOME": "/h",
                           "NODE_RANK": "1", "MASTER_ADDR": "head", "FINBENCH_VERBOSE": "1"})
    text = s.to_json()
    assert text == Settings.from_json(text).to_json() and Settings.from_json(text) == s
    raw = json.loads(text)
    assert raw["data_dir"] == str(tmp_path) and raw["library_env"] == [["HF_HOME", "/h"], ["HF_HUB_OFFLINE", "1"]]
    assert not {"node_rank", "master_addr", "master_port"} & set(raw)  # each node keeps its own
    with pytest.raises(ValueError, match=r"FINBENCH_SETTINGS: expected an object with keys from .*'datadir'"):
        Settings.from_json('{"datadir": "/x"}')
    with pytest.raises(ValueError, match="FINBENCH_SETTINGS: not valid JSON"):
        Settings.from_json("{")


def test_a_forwarded_value_wins_over_the_separate_variables_but_not_per_node_ones(tmp_path) -> None:
    sent = dataclasses.replace(Settings.from_env({}), data_dir=tmp_path / "overlay", offline=True)
    env = {"FINBENCH_DATA_DIR": "/stale", "NODE_RANK": "2", **sent.forwarded_env()}
    got = Settings.from_env(env)
    assert got.data_dir == tmp_path / "overlay" and got.offline and got.node_rank == "2"
    assert env["HF_HUB_OFFLINE"] == env["HF_DATASETS_OFFLINE"] == "1"  # the libraries' own switches


def test_use_sets_the_value_and_without_one_the_environment_is_read_at_the_call(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(tmp_path / "a"))
    assert settings.data_dir() == tmp_path / "a"
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(tmp_path / "b"))  # changed after import: seen
    assert settings.data_dir() == tmp_path / "b"
    outer = settings.current()
    with settings.use(dataclasses.replace(outer, data_dir=tmp_path / "c", verbose=True)):
        assert settings.data_dir() == tmp_path / "c" and settings.verbose()
        with settings.use(dataclasses.replace(settings.current(), data_dir=None)):
            assert settings.data_dir() is None
        assert settings.data_dir() == tmp_path / "c"
    assert settings.data_dir() == tmp_path / "b" and os.environ["FINBENCH_DATA_DIR"] == str(tmp_path / "b")


def test_a_child_process_resolves_the_forwarded_value(tmp_path) -> None:
    """What train/run.py gives Axolotl and what a Slurm/Ray worker gets: one value, resolved there."""
    s = dataclasses.replace(Settings.from_env(), data_dir=tmp_path / "overlay", verbose=True, offline=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FINBENCH_", "HF_"))}
    base["PYTHONPATH"] = str(ROOT)
    code = ("from finbench.core import settings as S; import os; s = S.current(); "
            "print(s.data_dir, s.verbose, s.offline, os.environ['HF_HUB_OFFLINE'])")
    out = subprocess.run([sys.executable, "-c", code], env=s.child_env(base), capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout.split()
    assert out == [str(tmp_path / "overlay"), "True", "True", "1"]


def test_the_cli_boundary_does_not_write_the_environment(fixture_data, monkeypatch, capsys) -> None:
    from finbench import cli
    monkeypatch.delenv("FINBENCH_VERBOSE", raising=False)
    seen = {}
    real = cli._cmd_tasks

    def spy(args):
        seen["verbose"], seen["data_dir"] = settings.verbose(), settings.data_dir()
        return real(args)

    monkeypatch.setattr(cli, "_cmd_tasks", spy)
    assert cli.main(["-v", "tasks", "--json"]) == 0
    assert seen == {"verbose": True, "data_dir": fixture_data}
    assert "FINBENCH_VERBOSE" not in os.environ and not settings._STACK


def test_slurm_batch_script_exports_one_value_and_no_secret(monkeypatch, tmp_path) -> None:
    from finbench.sweep.executors import slurm
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    with settings.use(dataclasses.replace(Settings.from_env(), data_dir=tmp_path / "d", offline=True)):
        script = slurm.batch_script("s", tmp_path, tmp_path / "array-1.runs", 2, {}, slurm.DEFAULT_JOB)
    exports = dict(line.removeprefix("export ").split("=", 1) for line in script.splitlines()
                   if line.startswith("export "))
    assert Settings.from_json(shlex.split(exports["FINBENCH_SETTINGS"])[0]).data_dir == tmp_path / "d"
    assert exports["HF_HUB_OFFLINE"] == "1" and "secret" not in script
    assert not [k for k in exports if k.startswith("FINBENCH_") and k != "FINBENCH_SETTINGS"]


def test_ray_workers_get_the_value_and_the_task_entry_resolves_it(monkeypatch, tmp_path) -> None:
    from finbench.sweep.executors import ray as RX
    s = dataclasses.replace(Settings.from_env(), data_dir=tmp_path / "d", offline=True)
    env = RX.runtime_env(s)["env_vars"]
    assert Settings.from_json(env["FINBENCH_SETTINGS"]) == s and env["HF_DATASETS_OFFLINE"] == "1"
    monkeypatch.setenv("NODE_RANK", "5")
    got = RX.task_entry(lambda spec: {"data_dir": settings.data_dir(), "rank": settings.current().node_rank,
                                      **spec}, {"k": 1}, s.to_json())
    assert got == {"data_dir": tmp_path / "d", "rank": "5", "k": 1}


def test_a_bad_settings_variable_is_one_line_at_the_boundary(monkeypatch, capsys) -> None:
    from finbench import cli
    with pytest.raises(ValueError, match=r"FINBENCH_VLLM_CPU_MEMORY: expected a share in \(0, 1\].*'lots'"):
        Settings.from_env({"FINBENCH_VLLM_CPU_MEMORY": "lots"})
    monkeypatch.setenv("FINBENCH_VLLM_CPU_MEMORY", "0")
    assert cli.main(["tasks"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["finbench: error: FINBENCH_VLLM_CPU_MEMORY: expected a share in (0, 1], such as 0.3, got '0'"]
