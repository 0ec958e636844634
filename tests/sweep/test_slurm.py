"""Slurm executor: real job arrays on a single-node Slurm (`bash tests/slurm/setup_local_slurm.sh`).

Tests that need the cluster skip with the reason when `sbatch` is absent or the controller does not
answer. The real jobs are the cheap `eval_only` runs of tests/sweep/test_sweeps.py: the tiny random model of
the `tiny_cpu` recipe scored by lm-eval on four FPB fixture rows (real generation and scoring).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import store_rows

from finbench import slurm as SL
from finbench import sweep as SW

ROOT = Path(__file__).resolve().parents[2]
SETUP = "bash tests/slurm/setup_local_slurm.sh"


def _slurm_unavailable() -> str | None:
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return f"sbatch/scontrol not on PATH (a local single-node Slurm: `{SETUP}` as root)"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return "`scontrol ping` did not answer within 30 s"
    if ping.returncode != 0 or "is UP" not in ping.stdout:
        first = (ping.stdout + ping.stderr).strip().splitlines()[:1]
        return f"the Slurm controller does not answer `scontrol ping` ({first}): run `{SETUP}`"
    return None


UNAVAILABLE = _slurm_unavailable()
needs_slurm = pytest.mark.skipif(UNAVAILABLE is not None, reason=UNAVAILABLE or "")


def _write_sweep(tmp: Path, name: str = "s", **over) -> Path:
    spec = {
        "description": "slurm test sweep",
        "recipes": ["tiny_cpu"],
        "mixtures": ["demo", "paper55/fpb"],
        "seeds": [7],
        "job": "eval_only",
        "eval": {"tasks": ["fpb"], "splits": ["test"], "limit": 4, "backend": "hf", "batch_size": 4},
        "slurm": {"cpus_per_task": 1, "time": "00:20:00"},
        "store": str(tmp / f"{name}.sqlite"),
    }
    spec.update(over)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


# Jobs for the array tasks (imported by the worker as test_slurm:NAME: PYTHONPATH has tests/sweep/).


def fake_job(spec: dict) -> dict:
    items = [{"task": "fpb", "filter": "tolerant", "doc_id": i, "doc_hash": f"h{i}", "target": "neutral",
              "prediction": "neutral", "metrics": {"*": ["", "neutral", "neutral"]}} for i in range(3)]
    return {"key": spec["key"], "seconds": 0.0, "model_dir": "/m", "info": {"host": os.uname().nodename},
            "evals": {"test": {"scores": [{"task": "fpb", "metric": "score", "filter": "tolerant",
                                           "value": 1.0, "stderr": None}], "items": items,
                               "aggregations": {}}}}


def broken_job(spec: dict) -> dict:
    if spec["mixture"] == "demo":
        raise RuntimeError("out of memory (on purpose)")
    os.kill(os.getpid(), signal.SIGKILL)  # dies like a node failure: no result, no error file
    raise AssertionError("unreachable")


# -------------------------------------------------------------------------- without a cluster


def test_runs_a_killed_driver_submitted_but_never_marked_count_one_attempt(tmp_path) -> None:
    # The driver writes jobs.json, then marks its runs running; a SIGKILL between the two left rows
    # pending with 0 attempts though their array task ran. The next driver claims them, once.
    from finbench.sweep.executors import slurm as SX
    from finbench.sweep.executors.base import pending
    from finbench.sweep.store import Store

    sw = SW.load_sweep(str(_write_sweep(tmp_path)))
    store = Store(sw.store)
    store.register(sw)
    todo = pending(sw, store)
    first, second = todo
    store.mark_running(second)  # the killed driver got this far for one of the two
    driver = SX._Driver(sw, store, todo, "test_slurm:fake_job", lambda _m: None)
    jobs = [{"job_id": "1", "runs": list(driver.by_id)}]
    for _ in range(2):  # a second restart claims nothing more
        driver.claim_submitted(jobs)
    rows = {r["key"]: r for r in store_rows(sw.store)}
    assert {k: (r["status"], r["attempts"]) for k, r in rows.items()} == {
        first.key: ("running", 1), second.key: ("running", 1)}


def test_slurm_block_is_validated_with_did_you_mean(tmp_path) -> None:
    for block, match in [
        ({"partiton": "gpu"}, r"s\.yaml: slurm\.partiton: unknown key\. Did you mean partition\?"),
        ({"gpus": -1}, r"slurm\.gpus: expected an integer in \[0, 64\]"),
        ({"time": "four hours"}, r"slurm\.time: expected minutes \(at most \d+\) or \[D-\]HH:MM:SS"),
        ({"mem": "lots"}, r"slurm\.mem: expected megabytes \(at most \d+\) or a size"),
        ({"extra": "--qos=x"}, r"slurm\.extra: expected a list of sbatch options"),
        ({"partition": "a b"}, r"slurm\.partition: expected a partition name"),
    ]:
        with pytest.raises(SW.SweepError, match=match):
            SW.load_sweep(str(_write_sweep(tmp_path, slurm=block)))
    cfg = {"partition": "gpu", "account": "proj", "time": "1-02:00:00", "cpus_per_task": 8, "gpus": 2,
           "mem": "64G", "max_parallel": 3, "extra": ["--qos=low"]}
    sw = SW.load_sweep(str(_write_sweep(tmp_path, slurm=cfg)))
    assert sw.slurm == cfg
    assert SL.sbatch_options(cfg) == ["--partition=gpu", "--account=proj", "--time=1-02:00:00",
                                      "--cpus-per-task=8", "--gres=gpu:2", "--mem=64G", "--qos=low"]
    script = SL.batch_script("s", tmp_path / "s.slurm", tmp_path / "s.slurm" / "array-1.keys", 5, cfg,
                             SL.DEFAULT_JOB)
    assert "#SBATCH --array=0-4%3" in script and "#SBATCH --gres=gpu:2" in script
    assert f"cd {ROOT}" in script and f"{sys.executable} -m finbench.slurm worker" in script
    assert '"$SLURM_ARRAY_TASK_ID" --job finbench.sweep:run_job' in script


def test_missing_sbatch_fails_before_anything_is_submitted(tmp_path, monkeypatch, capsys) -> None:
    path = _write_sweep(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no Slurm client commands
    with pytest.raises(SW.SweepError, match=r"slurm: `sbatch`, `squeue`, `scontrol` not found on PATH.*"
                                            r"Nothing was submitted"):
        SW.run_sweep(str(path), "slurm", job=lambda spec: pytest.fail("must not run"))
    assert not (tmp_path / "s.sqlite").exists() and not (tmp_path / "s.slurm").exists()
    assert SW.main(["run", str(path), "--executor", "slurm"]) == 2  # the CLI: one clear line
    assert "not found on PATH" in capsys.readouterr().err


def test_job_must_be_importable_on_the_compute_node(tmp_path) -> None:
    with pytest.raises(SW.SweepError, match="must be a module-level function"):
        SL._job_ref(lambda spec: spec)
    with pytest.raises(SW.SweepError, match="No module named 'no_such_module'"):
        SL._job_ref("no_such_module:run")
    assert SL._job_ref(SW.run_job) == "finbench.sweep:run_job"


@pytest.mark.skipif(shutil.which("scontrol") is None, reason=f"scontrol not installed (`{SETUP}`)")
def test_unreachable_controller_fails_before_anything_is_submitted(tmp_path, monkeypatch) -> None:
    conf = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))
    if not conf.is_file():
        pytest.skip(f"no slurm.conf at {conf} to derive an unreachable controller from")
    # the same cluster, but its controller on a port nothing listens on
    lines = [ln for ln in conf.read_text().splitlines() if not ln.startswith("SlurmctldPort=")]
    (tmp_path / "slurm.conf").write_text("\n".join([*lines, "SlurmctldPort=7999"]) + "\n")
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "slurm.conf"))
    path = _write_sweep(tmp_path)
    t0 = time.monotonic()
    with pytest.raises(SW.SweepError, match=r"slurm: the controller is not reachable: `scontrol ping` said "
                                            r"'Slurmctld\(primary\) at .* is DOWN'.*Nothing was submitted"):
        SW.run_sweep(str(path), "slurm", job=lambda spec: pytest.fail("must not run"))
    assert time.monotonic() - t0 < 60
    assert not (tmp_path / "s.sqlite").exists() and not (tmp_path / "s.slurm").exists()


# -------------------------------------------------------------------------- on the cluster


@needs_slurm
def test_bad_partition_is_rejected_by_the_controller_before_submission(tmp_path) -> None:
    path = _write_sweep(tmp_path, slurm={"partition": "no_such_partition"})
    with pytest.raises(SW.SweepError, match=r"sbatch --test-only .*--partition=no_such_partition.*"
                                            r"invalid partition"):
        SW.run_sweep(str(path), "slurm", job=lambda spec: pytest.fail("must not run"))
    assert not (tmp_path / "s.sqlite").exists()


@needs_slurm
def test_failed_and_killed_tasks_are_marked_failed_naming_the_log_then_retried(
        sweep_env, monkeypatch) -> None:
    # the worker imports test_slurm (tests/sweep/), its conftest helper (tests/) and this finbench
    here = (Path(__file__).resolve().parent, ROOT / "tests", ROOT)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(map(str, here)))
    path = _write_sweep(sweep_env)
    sw = SW.load_sweep(str(path))
    logs: list[str] = []
    counts = SW.run_sweep(sw, "slurm", job="test_slurm:broken_job", log=logs.append)
    assert counts == {"done": 0, "failed": 2, "skipped": 0}
    rows = {r["key"]: r for r in store_rows(sw.store)}
    by_mix = {r.mixture: rows[r.key] for r in sw.runs}
    spool = SL.spool_dir(sw.store)
    raised = by_mix["demo"]["error"]
    assert "RuntimeError: out of memory (on purpose)" in raised and "log: " in raised
    log_file = Path(raised.rsplit("log: ", 1)[1].strip())
    assert log_file.parent == spool / "logs" and "out of memory (on purpose)" in log_file.read_text()
    killed = by_mix["paper55/fpb"]["error"]
    assert "left the queue without a result" in killed and str(spool / "logs") in killed
    # a second sweep run retries exactly the failed runs, as a new array job
    counts = SW.run_sweep(sw, "slurm", job="test_slurm:fake_job", log=logs.append)
    assert counts == {"done": 2, "failed": 0, "skipped": 0}
    assert all(r["status"] == "done" and r["attempts"] == 2 for r in store_rows(sw.store))
    assert len(json.loads((spool / "jobs.json").read_text())) == 2
    assert SW.run_sweep(sw, "slurm", job="test_slurm:fake_job", log=logs.append)["skipped"] == 2


@needs_slurm
@pytest.mark.slow
def test_slurm_job_array_runs_real_eval_jobs(sweep_env) -> None:
    path = _write_sweep(sweep_env)
    sw = SW.load_sweep(str(path))
    logs: list[str] = []
    counts = SW.run_sweep(str(path), "slurm", log=logs.append)
    assert counts == {"done": 2, "failed": 0, "skipped": 0}, logs
    jobs = json.loads((SL.spool_dir(sw.store) / "jobs.json").read_text())
    assert len(jobs) == 1 and sorted(r.split("-")[0] for r in jobs[0]["runs"]) == sorted(r.key for r in sw.runs)
    rows = store_rows(sw.store)
    assert len(rows) == 2 and all(r["status"] == "done" and r["attempts"] == 1 for r in rows)
    assert all(json.loads(r["info"])["recipe_file"] for r in rows)
    db = sqlite3.connect(sw.store)
    try:
        assert db.execute("SELECT COUNT(*) FROM items WHERE split='test'").fetchone()[0] == 2 * 2 * 4
        scores = db.execute("SELECT value FROM scores WHERE task='fpb' AND metric='score'").fetchall()
        assert len(scores) == 2 * 2 and all(0.0 <= v <= 1.0 for (v,) in scores)
    finally:
        db.close()
    task_logs = sorted((SL.spool_dir(sw.store) / "logs").glob(f"{jobs[0]['job_id']}_*.log"))
    assert len(task_logs) == 2 and all("result written" in p.read_text() for p in task_logs)


@needs_slurm
@pytest.mark.slow
def test_killed_driver_resumes_without_resubmitting(sweep_env) -> None:
    """Kill the driver for real after it submitted; its array job runs on. The next driver records
    the finished run's result from disk and adopts the still-running array task."""
    path = _write_sweep(sweep_env, slurm={"cpus_per_task": 1, "max_parallel": 1})  # one task at a time
    sw = SW.load_sweep(str(path))
    spool = SL.spool_dir(sw.store)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "finbench.sweep", "run", str(path), "--executor", "slurm"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (spool / "jobs.json").is_file():
            assert proc.poll() is None, "the driver ended before it submitted"
            assert time.monotonic() < deadline, "no submission within 120 s"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    (job,) = json.loads((spool / "jobs.json").read_text())
    first, second = job["runs"]  # run ids: <run key>-<hash of spec and job>
    deadline = time.monotonic() + 300
    while not SL._result_path(spool, first).is_file():  # the array runs on without its driver
        err = SL._error_path(spool, first)
        assert not err.is_file(), err.read_text()
        assert time.monotonic() < deadline, "array task 0 wrote no result within 300 s"
        time.sleep(1)
    assert SL.in_queue(job["job_id"]), "task 1 should still be queued or running (max_parallel 1)"
    # The killed driver recorded no result. It writes jobs.json before marking its runs running, so
    # a kill in between leaves a row pending; the next driver counts that attempt (attempts == 1 below).
    assert {r["status"] for r in store_rows(sw.store)} <= {"pending", "running"}

    logs: list[str] = []
    counts = SW.run_sweep(str(path), "slurm", log=logs.append, job=SW.run_job)
    assert counts == {"done": 2, "failed": 0, "skipped": 0}, logs
    assert f"  {first.split('-')[0]}: result from an earlier submission" in logs
    assert any(f"adopted 1 run(s) of array job {job['job_id']}" in m for m in logs), logs
    assert len(json.loads((spool / "jobs.json").read_text())) == 1  # nothing resubmitted
    rows = store_rows(sw.store)
    assert sorted(r["key"] for r in rows) == sorted(r.key for r in sw.runs)
    assert all(r["status"] == "done" and r["attempts"] == 1 for r in rows)
    db = sqlite3.connect(sw.store)
    try:
        assert db.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 2 * 2 * 4
    finally:
        db.close()
