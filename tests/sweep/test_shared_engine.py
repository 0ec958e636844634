"""Multi-LoRA serving in sweeps: the LoRA runs of one base model are scored through one engine.

The sweep-level test here trains two real `tiny_cpu` LoRA runs with Axolotl and scores them in one
group job. vLLM is not in the default venv, so the group job takes its documented fallback (each
run scored on its own with the hf backend): what is checked is the orchestration (train phase,
one group job, each run recorded once, resume). vLLM serving many adapters through one engine is
checked against hf + peft in tests/eval/test_vllm.py (opt-in, `.venv-vllm`).
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from finbench import sweep as SW

ROOT = Path(__file__).resolve().parents[2]
HAS_AXOLOTL = importlib.util.find_spec("axolotl") is not None


def _sweep(tmp: Path, **over) -> Path:
    spec = {
        "description": "shared engine",
        "recipes": ["tiny_cpu"],
        "mixtures": ["paper55/fpb", "paper55/fpb+tfns"],
        "seeds": [3],
        "job": "train_eval",
        "share_engine": True,
        "eval": {"tasks": ["fpb"], "splits": ["test"], "limit": 4, "backend": "auto", "batch_size": 4},
        "store": str(tmp / "s.sqlite"),
    }
    spec.update(over)
    path = tmp / "s.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def test_share_engine_is_validated(sweep_env) -> None:
    with pytest.raises(SW.SweepError, match=r"share_engine: expected auto, true or false, got 'yes'"):
        SW.load_sweep(str(_sweep(sweep_env, share_engine="yes")))


def test_grouping_rules(sweep_env) -> None:
    sw = SW.load_sweep(str(_sweep(sweep_env)))
    with SW.Store(sw.store) as store:
        store.register(sw)
        groups = SW.lora_groups(sw, store, log=lambda _: None)
        assert [[s.mixture for s in g] for g in groups] == [["paper55/fpb", "paper55/fpb+tfns"]]
        # hf never shares; auto shares only when the backend resolves to vLLM here
        sw.eval = {**sw.eval, "backend": "hf"}
        assert SW.lora_groups(sw, store, log=lambda _: None) == []
        sw.eval = {**sw.eval, "backend": "auto"}
        sw.share_engine = "auto"
        expect_vllm = importlib.util.find_spec("vllm") is not None
        assert bool(SW.lora_groups(sw, store, log=lambda _: None)) == expect_vllm
        sw.share_engine = False
        assert SW.lora_groups(sw, store, log=lambda _: None) == []
    # a group travels as one spec (so any executor runs it as one job) and unpacks to its members
    head = SW.group_spec(groups[0])
    assert [m.key for m in SW._PhaseStore._members(head)] == [s.key for s in groups[0]]
    assert SW.RunSpec.from_dict(json.loads(json.dumps(head.to_dict()))) == head


@pytest.mark.slow
@pytest.mark.skipif(not HAS_AXOLOTL, reason="needs Axolotl (make install)")
def test_sweep_trains_then_scores_each_group_in_one_job(sweep_env, recipe_parses) -> None:
    path = _sweep(sweep_env)
    calls: list[list[str]] = []
    real_group_job = SW.engine.lora_group_job

    def counting_group_job(spec_dict):
        calls.append([d["key"] for d in spec_dict[SW.GROUP]])
        return real_group_job(spec_dict)

    SW.engine.lora_group_job = counting_group_job
    try:
        logs: list[str] = []
        counts = SW.run_sweep(str(path), "local", log=logs.append)
    finally:
        SW.engine.lora_group_job = real_group_job
    assert counts == {"done": 2, "failed": 0, "skipped": 0}
    # the recipe was parsed once (by the sweep) and each run's recipe passed as a value
    assert recipe_parses == [ROOT / "recipes" / "tiny_cpu.yaml"]
    assert not (sweep_env / "runs" / "_sweep_recipes").exists()
    sw = SW.load_sweep(str(path))
    assert calls == [[r.key for r in sw.runs]]  # both runs scored by ONE group job
    assert any("2 LoRA run(s) in 1 group(s)" in line for line in logs)
    db = sqlite3.connect(sw.store)
    try:
        rows = db.execute("SELECT key, status, attempts, info FROM runs ORDER BY key").fetchall()
        assert [(r[1], r[2]) for r in rows] == [("done", 1), ("done", 1)]
        for _, _, _, info in rows:
            info = json.loads(info)
            assert info["train"]["adapter_dir"] and info["engine"]["runs"] == 2
            # no vLLM here: the documented fallback scored each run on its own
            assert info["engine"]["shared"] is (importlib.util.find_spec("vllm") is not None)
        n = db.execute("SELECT COUNT(*) FROM items WHERE split='test' AND filter='tolerant'").fetchone()[0]
        assert n == 2 * 4
        scores = db.execute("SELECT COUNT(*) FROM scores WHERE metric='score'").fetchone()[0]
        assert scores >= 2
    finally:
        db.close()
    # finished runs are skipped; nothing is trained or scored again
    assert SW.run_sweep(str(path), "local", log=lambda _: None) == {"done": 0, "failed": 0, "skipped": 2}


def test_group_specs_spooled_by_older_versions_still_load(sweep_env) -> None:
    """A Slurm array queued before the group became a RunSpec field kept it in eval["_lora_group"]."""
    sw = SW.load_sweep(str(_sweep(sweep_env)))
    head = SW.group_spec(sw.runs)
    old = head.to_dict()
    old["eval"] = {**old["eval"], "_lora_group": old.pop(SW.GROUP)}
    assert SW.RunSpec.from_dict(old) == head and head.members == sw.runs
    assert SW.GROUP not in sw.runs[0].to_dict()  # a plain run's dict (its spool name) is unchanged
