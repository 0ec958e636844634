"""Sweeps: plan expansion, strict validation, the SQLite store, resume after a real kill, Ray.

The jobs here are real but cheap: `eval_only` scores the tiny random model of the `tiny_cpu`
recipe with lm-eval on four FPB fixture rows per split (real generation, parsing and scoring).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import store_rows

from finbench import sweep as SW

ROOT = Path(__file__).resolve().parents[2]


def _write_sweep(tmp: Path, name: str = "t", **over) -> Path:
    spec = {
        "description": "test sweep",
        "recipes": ["tiny_cpu"],
        "mixtures": ["demo", "paper55/fpb"],
        "seeds": [1, 2],
        "job": "eval_only",
        "eval": {"tasks": ["fpb"], "splits": ["dev", "test"], "limit": 4, "backend": "hf", "batch_size": 4},
        "store": str(tmp / f"{name}.sqlite"),
    }
    spec.update(over)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


# -------------------------------------------------------------------------- plan and validation


def test_paper55_plan_is_4_models_x_55_mixtures_x_3_seeds() -> None:
    from finbench import mixtures as M
    sw = SW.load_sweep("paper55")
    design = M.generate_design(M.MIXTURES_DIR / "designs" / "paper55.yaml")
    assert len(design) == 55
    assert sw.mixtures == [f"paper55/{m}" for m in design]
    assert sw.recipes == ["phi3_cocktail", "llama31_8b_cocktail", "mistral_7b_cocktail", "qwen25_7b_cocktail"]
    trained = [r for r in sw.runs if r.job == "train_eval"]
    assert len(trained) == 55 * 4 * 3 == 660
    assert len([r for r in sw.runs if r.mixture == SW.BASE]) == 4  # one untrained base per recipe
    assert len({r.key for r in sw.runs}) == len(sw.runs)
    assert {(r.recipe, r.mixture, r.seed) for r in trained} == {
        (rc, m, s) for rc in sw.recipes for m in sw.mixtures for s in (1, 2, 3)
    }
    single = next(r for r in trained if r.mixture == "paper55/fpb")
    assert single.components == {"fpb": "fpb"}
    # keys are content hashes: the same sweep loaded again gives the same keys
    assert [r.key for r in SW.load_sweep("paper55").runs] == [r.key for r in sw.runs]


def test_key_follows_recipe_content_not_its_name(tmp_path) -> None:
    src = (ROOT / "recipes" / "tiny_cpu.yaml").read_text()
    (tmp_path / "a.yaml").write_text(src)
    (tmp_path / "b.yaml").write_text(src.replace("learning_rate: 1.0e-3", "learning_rate: 2.0e-3"))
    base = dict(mixtures=["demo"], seeds=[1], eval={"tasks": ["fpb"]})
    ka = SW.load_sweep(str(_write_sweep(tmp_path, "s1", recipes=[str(tmp_path / "a.yaml")], **base))).runs[0].key
    kb = SW.load_sweep(str(_write_sweep(tmp_path, "s2", recipes=[str(tmp_path / "b.yaml")], **base))).runs[0].key
    (tmp_path / "c.yaml").write_text(src)
    kc = SW.load_sweep(str(_write_sweep(tmp_path, "s3", recipes=[str(tmp_path / "c.yaml")], **base))).runs[0].key
    assert ka != kb and ka == kc


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"recipes": ["tiny_cpu", "no_such_recipe"]}, r"t\.yaml: recipes: 'no_such_recipe': unknown recipe"),
        ({"mixtures": ["demo", "no_such_mixture"]}, r"t\.yaml: mixtures: 'no_such_mixture': unknown mixture"),
        ({"mixtures": ["paper55/nope"]}, r"mixtures: 'paper55/nope'.*no member 'nope'"),
        ({"mixtures": {"design": "nodesign"}}, r"mixtures\.design: no design file"),
        ({"seeds": [1, 1]}, r"seeds: expected a list of distinct"),
        ({"eval": {"tasks": ["fbp"]}}, r"eval\.tasks: unknown finbench task 'fbp'\. Did you mean fpb"),
        ({"eval": {"tasks": ["fpb"], "splits": ["valid"]}}, r"eval\.splits"),
        ({"job": "train"}, r"job: expected one of"),
        ({"seed": 3}, r"t\.yaml: seed: unknown key"),
    ],
)
def test_bad_sweep_files_are_named_precisely(tmp_path, over, match) -> None:
    path = _write_sweep(tmp_path, **over)
    with pytest.raises(SW.SweepError, match=match):
        SW.load_sweep(str(path))
    assert not (tmp_path / "t.sqlite").exists()  # nothing recorded


def test_unknown_sweep_name() -> None:
    with pytest.raises(SW.SweepError, match="unknown sweep 'nope'.*Known: .*mini"):
        SW.load_sweep("nope")


def test_unreachable_ray_cluster_fails_before_anything_is_submitted(tmp_path) -> None:
    path = _write_sweep(tmp_path)
    t0 = time.monotonic()
    with pytest.raises(SW.SweepError, match=r"ray: cluster at '127\.0\.0\.1:1' is not reachable"):
        SW.run_sweep(str(path), "ray", address="127.0.0.1:1")
    assert time.monotonic() - t0 < 30
    assert not (tmp_path / "t.sqlite").exists()
    with pytest.raises(SW.SweepError, match="expected HOST:PORT"):
        SW.check_reachable("ray://nohostport")
    with pytest.raises(SW.SweepError, match="unknown executor 'pbs'; expected local, ray or slurm"):
        SW.run_sweep(str(path), "pbs")


def test_cli_plan(tmp_path, capsys) -> None:
    path = _write_sweep(tmp_path)
    assert SW.main(["plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("pending") == 4 and "# 4 runs = 1 recipes x 2 mixtures x 2 seeds" in out
    assert SW.main(["plan", str(_write_sweep(tmp_path, "bad", recipes=["nope"]))]) == 2
    assert "recipes: 'nope'" in capsys.readouterr().err


def test_run_recipe_trains_the_runs_mixture_and_seed(tmp_path, monkeypatch) -> None:
    from finbench.train import checks
    from finbench.train import run as TR
    monkeypatch.setenv("FINBENCH_RUNS_DIR", str(tmp_path / "runs"))
    sw = SW.load_sweep(str(_write_sweep(tmp_path, job="train_eval")))
    spec = next(r for r in sw.runs if r.mixture == "paper55/fpb" and r.seed == 2)
    recipe = SW.run_recipe(SW.RunSpec.from_dict(json.loads(json.dumps(spec.to_dict()))))  # as a worker gets it
    checks.validate(recipe.data, recipe.path)  # the derived mapping is a valid recipe like any other
    assert recipe.data["mixture"] == "paper55/fpb" and recipe.data["seed"] == 2
    assert TR.run_dir_for(recipe).name == f"tiny_cpu-{spec.key[:12]}"  # one run folder per key
    assert TR.check_mixture(recipe).name == "paper55/fpb"
    assert SW.run_recipe(spec) == recipe  # stable
    assert recipe.text().startswith(f"# generated by finbench sweep 't' for {spec.label}\n")
    assert not (tmp_path / "runs" / "_sweep_recipes").exists()  # a value, never a file to read back


# -------------------------------------------------------------------------- store


def _fake_result(spec: SW.RunSpec) -> dict:
    items = [{"task": "fpb", "filter": "tolerant", "doc_id": i, "doc_hash": f"h{i}", "target": "neutral",
              "prediction": "neutral", "metrics": {"*": ["", "neutral", "neutral"]}} for i in range(3)]
    return {"evals": {"test": {"scores": [{"task": "fpb", "metric": "score", "filter": "tolerant",
                                           "value": 1.0, "stderr": None}],
                               "items": items,
                               "aggregations": {"fpb": {"score": ["eval_plugins.metrics.score", True]}}}},
            "seconds": 0.1, "model_dir": "/m"}


def test_store_records_a_run_once_and_atomically(tmp_path) -> None:
    sw = SW.load_sweep(str(_write_sweep(tmp_path)))
    with SW.Store(sw.store) as st:
        st.register(sw)
        spec = sw.runs[0]
        st.mark_running(spec)
        bad = _fake_result(spec)
        bad["evals"]["test"]["items"].append(dict(bad["evals"]["test"]["items"][0]))  # duplicate item
        with pytest.raises(sqlite3.IntegrityError):
            st.record(spec, bad)
        assert st.status()[spec.key] == "running"  # rolled back: no scores, no items
        assert st.db.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0
        st.record(spec, _fake_result(spec))
        st.record(spec, _fake_result(spec))  # a second delivery is ignored
        st.register(sw)  # re-registering keeps finished runs
        assert st.status()[spec.key] == "done"
        assert st.db.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 3
        assert st.db.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 1
        assert st.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -------------------------------------------------------------------------- real runs


@pytest.mark.slow
def test_local_sweep_killed_mid_way_resumes_with_nothing_lost_or_duplicated(sweep_env, recipe_parses) -> None:
    path = _write_sweep(sweep_env)
    sw = SW.load_sweep(str(path))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "finbench.sweep", "run", str(path)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if sw.store.is_file():
                try:
                    if any(r["status"] == "done" for r in store_rows(sw.store)):
                        break
                except sqlite3.OperationalError:
                    pass  # tables not created yet
            assert proc.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("no run finished within 240 s")
        os.killpg(proc.pid, signal.SIGKILL)  # the way a preempted node dies: no clean-up
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    before = {r["key"]: (r["status"], r["attempts"]) for r in store_rows(sw.store)}
    finished_before = {k for k, (s, _) in before.items() if s == "done"}
    assert 1 <= len(finished_before) < 4
    assert any(s == "running" for s, _ in before.values())  # killed mid-run

    ran = []

    def counting_job(spec):
        ran.append(spec["key"])
        return SW.run_job(spec)

    recipe_parses.clear()
    counts = SW.run_sweep(str(path), "local", job=counting_job, log=lambda _: None)
    assert counts == {"done": 4 - len(finished_before), "failed": 0, "skipped": len(finished_before)}
    assert recipe_parses == [ROOT / "recipes" / "tiny_cpu.yaml"]  # once, by the sweep: runs get values
    assert not (sweep_env / "runs" / "_sweep_recipes").exists()
    assert not set(ran) & finished_before and len(ran) == len(set(ran))
    rows = store_rows(sw.store)
    assert sorted(r["key"] for r in rows) == sorted(r.key for r in sw.runs)  # each run exactly once
    assert all(r["status"] == "done" for r in rows)
    assert all(r["attempts"] == 1 for r in rows if r["key"] in finished_before)
    db = sqlite3.connect(sw.store)
    try:
        per_run = db.execute("SELECT run_key, split, filter, COUNT(*) FROM items GROUP BY 1, 2, 3").fetchall()
        assert len(per_run) == 4 * 2 * 2 and {n for *_, n in per_run} == {4}  # 4 docs per split/filter
        scores = db.execute("SELECT run_key, split, value FROM scores WHERE task='fpb' AND metric='score' "
                            "AND filter='tolerant'").fetchall()
        assert len(scores) == 8 and all(0.0 <= v <= 1.0 for *_, v in scores)
        aggs = dict(db.execute("SELECT metric, aggregation FROM aggregations WHERE task='fpb'").fetchall())
        assert aggs["score"] == "eval_plugins.metrics.score"
        # per-item values recompute the stored corpus score with the task's own aggregation
        from eval_plugins.metrics import score

        key, split, value = scores[0]
        items = [tuple(json.loads(m)["*"]) for (m,) in db.execute(
            "SELECT metrics FROM items WHERE run_key=? AND split=? AND task='fpb' AND filter='tolerant' "
            "ORDER BY doc_id", (key, split))]
        assert score(items) == pytest.approx(value)
        # dev was really scored on the dev split: its documents differ from test's
        dev_h = {h for (h,) in db.execute("SELECT doc_hash FROM items WHERE run_key=? AND split='dev'", (key,))}
        test_h = {h for (h,) in db.execute("SELECT doc_hash FROM items WHERE run_key=? AND split='test'", (key,))}
        assert len(dev_h) == len(test_h) == 4 and not dev_h & test_h
    finally:
        db.close()
    # and the report renders from this real store (demo contains fpb: compared with paper55/fpb)
    from finbench.report import build as RP
    md = RP.build_report(sw.store, sweep_env / "report", resamples=200).read_text()
    assert "| paper55/fpb |" in md and "cocktail effect" in md
    png = (sweep_env / "report" / "cocktail_effect_tiny_cpu.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    # a third run has nothing left to do
    assert SW.run_sweep(str(path), "local", job=counting_job, log=lambda _: None)["skipped"] == 4


@pytest.mark.slow
def test_ray_executor_runs_real_jobs_on_a_local_cluster(sweep_env) -> None:
    ray = pytest.importorskip("ray")
    path = _write_sweep(sweep_env, "r", seeds=[7], eval={"tasks": ["fpb"], "splits": ["test"], "limit": 4,
                                                         "backend": "hf", "batch_size": 4},
                        ray={"num_cpus": 1})
    sw = SW.load_sweep(str(path))
    try:
        counts = SW.run_sweep(str(path), "ray", log=lambda _: None)
        assert counts == {"done": 2, "failed": 0, "skipped": 0}
        assert ray.is_initialized()
    finally:
        ray.shutdown()
    rows = store_rows(sw.store)
    assert len(rows) == 2 and all(r["status"] == "done" and r["attempts"] == 1 for r in rows)
    db = sqlite3.connect(sw.store)
    try:
        hosts = db.execute("SELECT info FROM runs").fetchall()
        assert all(json.loads(h)["recipe_file"] for (h,) in hosts)
        assert db.execute("SELECT COUNT(*) FROM items WHERE split='test'").fetchone()[0] == 2 * 2 * 4
    finally:
        db.close()


def test_finbench_cli_runs_sweep_and_report(tmp_path, capsys) -> None:
    from finbench import cli
    path = _write_sweep(tmp_path)
    assert cli.main(["sweep", "plan", str(path)]) == 0
    assert "# 4 runs" in capsys.readouterr().out
    assert cli.main(["sweep", "run", str(path), "--executor", "ray", "--address", "127.0.0.1:1"]) == 2
    assert "not reachable" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path / "missing.sqlite")]) == 2
    assert "no sweep store" in capsys.readouterr().err


def test_one_driver_per_store(tmp_path) -> None:
    sw = SW.load_sweep(str(_write_sweep(tmp_path)))
    with SW.driver_lock(sw.store):
        with pytest.raises(SW.SweepError, match="another `finbench sweep run` is using this store"):
            SW.run_sweep(sw, "local", job=lambda spec: pytest.fail("must not run"), log=lambda _: None)
    counts = SW.run_sweep(sw, "local", job=_fake_job, log=lambda _: None)
    assert counts == {"done": 4, "failed": 0, "skipped": 0}


def _fake_job(spec: dict) -> dict:
    return _fake_result(SW.RunSpec.from_dict(spec))


def test_failed_run_is_recorded_and_retried(tmp_path) -> None:
    sw = SW.load_sweep(str(_write_sweep(tmp_path)))
    calls = []

    def flaky(spec: dict) -> dict:
        calls.append(spec["key"])
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return _fake_job(spec)

    assert SW.run_sweep(sw, "local", job=flaky, log=lambda _: None) == {"done": 3, "failed": 1, "skipped": 0}
    with SW.Store(sw.store) as st:
        failed = [r for r in st.runs() if r["status"] == "failed"]
        assert len(failed) == 1 and "out of memory" in failed[0]["error"]
    assert SW.run_sweep(sw, "local", job=flaky, log=lambda _: None) == {"done": 1, "failed": 0, "skipped": 3}
    assert calls[-1] == calls[1]  # only the failed run ran again


def test_a_new_executor_is_one_class_and_one_registry_line(tmp_path, monkeypatch) -> None:
    """An executor with its own sweep-file block, registered at run time like a new module would be."""
    from finbench import cli
    from finbench.sweep.executors import REGISTRY
    from finbench.sweep.executors.base import Executor, new_counts, pending

    class NewestFirst(Executor):
        name = "newest_first"
        config_key = "newest_first"
        ran: list[str] = []

        def parse_config(self, where, cfg):
            if cfg is not None and not isinstance(cfg, dict):
                raise SW.SweepError(f"{where}: newest_first: expected a mapping, got {cfg!r}")
            return dict(cfg or {})

        def execute(self, sweep, store, job, *, address=None, log=print):
            todo = pending(sweep, store)
            counts = new_counts(sweep, todo)
            for spec in reversed(todo[: self.options(sweep).get("max_runs", len(todo))]):
                store.mark_running(spec)
                store.record(spec, job(spec.to_dict()))
                self.ran.append(spec.key)
                counts["done"] += 1
            return counts

    monkeypatch.setitem(REGISTRY, "newest_first", NewestFirst())
    with pytest.raises(SW.SweepError, match="newest_first: expected a mapping"):
        SW.load_sweep(str(_write_sweep(tmp_path, "bad", newest_first=[1])))
    sw = SW.load_sweep(str(_write_sweep(tmp_path, newest_first={"max_runs": 3})))
    assert sw.executor_options["newest_first"] == {"max_runs": 3}
    assert SW.run_sweep(sw, "newest_first", job=_fake_job, log=lambda _: None) == {
        "done": 3, "failed": 0, "skipped": 0}
    assert NewestFirst.ran == [r.key for r in sw.runs[:3]][::-1]
    with SW.Store(sw.store) as st:
        assert sorted(st.status().values()) == ["done", "done", "done", "pending"]
    args = cli.build_parser().parse_args(["sweep", "run", "t", "--executor", "newest_first"])
    assert args.executor == "newest_first"
