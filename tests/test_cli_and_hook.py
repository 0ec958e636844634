"""The `finbench` CLI and stock `lm_eval` finding our tasks without --include_path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from finbench import cli
from finbench.data.tasks import TASKS_DIR

BIN = Path(sys.executable).parent


def test_cli_data_prints_jsonl(fixture_data, capsys):
    assert cli.main(["data", "fpb", "--split", "test", "--train-messages"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 12 and {"id", "text", "label", "choices", "messages"} <= set(rows[0])


def test_cli_tasks_lists_sources_and_sizes(fixture_data, capsys):
    assert cli.main(["tasks", "--sizes", "--json"]) == 0
    rows = {r["task"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["fpb"]["train/dev/test"] == "32/4/12"
    assert rows["tfns"]["hub"].startswith("zeroshot/twitter-financial-news-sentiment@")


def test_cli_errors_are_one_clear_line(fixture_data, capsys, tmp_path, monkeypatch):
    assert cli.main(["data", "nope"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(tmp_path))
    assert cli.main(["data", "fpb"]) == 2
    err = capsys.readouterr().err
    assert "Sentences_50Agree.txt" in err and "Traceback" not in err


def _run(code: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_task_manager_finds_tasks_and_groups_from_any_directory(tmp_path):
    """A plain TaskManager() (what `lm_eval` builds) sees our tasks, groups and a new folder."""
    tasks = tmp_path / "tasks"
    shutil.copytree(TASKS_DIR, tasks, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "eval_plugins").symlink_to(TASKS_DIR.parent / "eval_plugins")  # shared templates
    new = tasks / "fpb_copy"
    shutil.copytree(tasks / "fpb", new)
    (new / "fpb.yaml").write_text((new / "fpb.yaml").read_text().replace("task: fpb", "task: fpb_copy"))
    (new / "fpb_mc.yaml").unlink()
    user = tmp_path / "user_tasks"
    user.mkdir()
    (user / "mine.yaml").write_text(
        "task: my_task\ndataset_path: x\noutput_type: generate_until\ndoc_to_text: q\ndoc_to_target: a\n"
    )
    env = {**os.environ, "FINBENCH_TASKS_DIR": str(tasks), "FINBENCH_CACHE": str(tmp_path / "cache")}
    code = (
        "import json; from lm_eval.tasks import TaskManager as TM; "
        f"tm = TM(include_path={str(user)!r}, include_defaults=False); "
        "g = tm.task_index['finbench'].cfg; "
        "print(json.dumps({'all': tm.all_tasks, 'finbench': g['task']}))"
    )
    proc = _run(code, env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"fpb", "fpb_mc", "fpb_copy", "my_task", "finbench", "finbench_sentiment"} <= set(out["all"])
    assert "fpb_copy" in out["finbench"] and "fpb_mc" not in out["finbench"]
    off = _run(
        code.replace("g = tm.task_index['finbench'].cfg; ", "").replace(", 'finbench': g['task']", ""),
        {**env, "FINBENCH_LMEVAL_HOOK": "0"},
        tmp_path,
    )
    assert "fpb" not in json.loads(off.stdout.strip().splitlines()[-1])["all"]


@pytest.mark.slow
def test_stock_lm_eval_cli_runs_finbench_from_another_directory(fixture_data, tiny_llama, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            str(BIN / "lm_eval"),
            "--model",
            "hf",
            "--model_args",
            f"pretrained={tiny_llama}",
            "--device",
            "cpu",
            "--tasks",
            "finbench_sentiment",
            "--limit",
            "3",
            "--apply_chat_template",
            "--output_path",
            str(out),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(next(out.rglob("results_*.json")).read_text())["results"]
    assert {"finbench_sentiment", "fpb", "fiqa_sa", "tfns"} <= set(results)
    assert "score,tolerant" in results["finbench_sentiment"]


def _finbench(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parent.parent
    return subprocess.run([sys.executable, "-m", "finbench.cli", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_cli_is_quiet_by_default_and_verbose_with_v(fixture_data):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("FINBENCH_VERBOSE", None)
    listed = _finbench("tasks", env=env)
    assert listed.returncode == 0 and "fpb" in listed.stdout
    assert not [line for line in (listed.stdout + listed.stderr).splitlines() if "warning" in line.lower()]
    # loading every task (--sizes): lm-eval's per-task `--metadata` hint and torchao's library
    # load failures are filtered; `-v` shows them again
    noise = ("Custom kwargs can be passed to `--metadata`", "For example --metadata=", "Failed to load ")
    sized = _finbench("tasks", "--sizes", env=env)
    assert sized.returncode == 0 and "32/4/12" in sized.stdout
    assert not [line for line in sized.stderr.splitlines() if any(n in line for n in noise)]
    loud = _finbench("-v", "tasks", "--sizes", env=env)
    assert loud.returncode == 0 and loud.stderr.count("Custom kwargs can be passed to `--metadata`") >= 10


def test_library_noise_filters_drop_only_the_listed_messages(monkeypatch, caplog):
    import logging

    from finbench.core import quiet
    quiet.install()
    quiet.install()  # idempotent
    assert sum(isinstance(f, quiet._DropNoise) for f in logging.getLogger("torchao").filters) == 1
    monkeypatch.delenv("FINBENCH_VERBOSE", raising=False)
    with caplog.at_level(logging.WARNING):
        logging.getLogger("torchao").warning("Failed to load /x/_C_mxfp8.so: no CUDA")
        logging.getLogger("torchao").warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]
    caplog.clear()
    monkeypatch.setenv("FINBENCH_VERBOSE", "1")
    with caplog.at_level(logging.WARNING):
        logging.getLogger("torchao").warning("Failed to load /x/_C_mxfp8.so: no CUDA")
    assert len(caplog.records) == 1
