"""FinBen end to end on hub-shaped mirrors of the project's fixture rows: stock `lm_eval --tasks
finben` from another directory with a tiny random model, `finbench tasks`, and the finben_cocktail
mixture build (same prompt for training and evaluation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import finben_mirror_layouts as FL  # noqa: E402
import hub_mirror_layouts as L  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    root = FL.build(tmp_path_factory.mktemp("finben-mirror"))
    L.openorca(root, (5, 7))
    L.orcamath(root, 9)
    return root


@pytest.fixture
def env(mirror, tmp_path) -> dict[str, str]:
    out = {**os.environ, "FINBENCH_HUB_MIRROR": str(mirror), "FINBENCH_CACHE": str(tmp_path / "cache"),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out.pop("FINBENCH_DATA_DIR", None)
    return out


@pytest.mark.slow
def test_stock_lm_eval_runs_the_finben_group_offline(env, tiny_llama, tmp_path):
    out = tmp_path / "out"
    cmd = [str(BIN / "lm_eval"), "--model", "hf", "--model_args", f"pretrained={tiny_llama}", "--device", "cpu",
           "--tasks", "finben", "--limit", "2", "--batch_size", "8",
           # a random model never stops early: a short budget keeps the run to seconds
           "--gen_kwargs", "max_gen_toks=8", "--output_path", str(out)]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(next(out.rglob("results_*.json")).read_text())
    results = data["results"]
    tasks = [n for n in results if n.startswith("finben_")]
    assert len(tasks) == 34 and "finben" in results
    assert not any(n == "finbench" or n in ("fpb", "tfns") for n in results)  # finbench untouched
    for name in tasks:
        res = results[name]
        assert data["n-samples"][name]["effective"] == 2, name
        assert "score,none" in res and "score_category,none" in res, (name, sorted(res))
    assert "rmse,none" in results["finben_tsa"] and "rmse_signed,none" in results["finben_tsa"]
    for name in ("finben_fpb", "finben_fomc", "finben_german"):
        assert 0.0 <= results[name]["missing,none"] <= 1.0
    assert "entity_f1,none" in results["finben_finer_ord"] and "rouge1,none" in results["finben_ectsum"]
    assert "score,none" in results["finben"]
    cfg = data["configs"]["finben_fpb"]
    assert cfg["num_fewshot"] == 0 and cfg["doc_to_text"] == "query"


def test_finbench_tasks_lists_every_finben_task(env):
    proc = subprocess.run([sys.executable, "-m", "finbench.cli", "tasks"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    listed = {n for n in FL.specs()}
    assert all(f"finben_{n}" in proc.stdout for n in listed) and len(listed) == 34


@pytest.mark.slow
def test_finben_cocktail_builds_from_the_mirror(mirror, monkeypatch, tmp_path):
    from finbench import mixtures as M
    from finbench.data import tasks as T
    L.use_mirror(monkeypatch, mirror, tmp_path / "cache")
    res = M.build("finben_cocktail", tmp_path / "out", progress=False)
    manifest = json.loads(res.manifest.read_text())
    comps = manifest["components"]
    train_tasks = sorted(n for n, i in T.discover().items() if n.startswith("finben_") and not i.eval_only)
    assert len(train_tasks) == 16
    assert sorted(c["source"]["task"] for c in comps.values() if c["source"].get("task")) == train_tasks
    assert all(c["rows_taken"] == 4 for c in comps.values() if c["source"].get("task"))  # all, none dropped
    rows = [json.loads(line) for line in res.jsonl.read_text().splitlines()]
    assert len(rows) == res.summary["rows"] > 0
    # the training prompt is FinBen's query, the target its answer: the task's own prompt
    users = [m["content"] for r in rows for m in r["messages"] if m["role"] == "user"]
    assert any(u.startswith("Synthetic fpb train") for u in users)
    again = M.build("finben_cocktail", tmp_path / "out2", progress=False)
    assert again.jsonl.read_bytes() == res.jsonl.read_bytes()  # deterministic
