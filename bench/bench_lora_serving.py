"""Multi-LoRA serving: one vLLM engine for all LoRA runs of a sweep vs one engine per run.

Takes the finished LoRA runs of a sweep store (e.g. after `make replicate`), and scores each on the
sweep's eval tasks (test split) twice, side by side in one process:
  shared   - finbench.eval.engines.LoRAEngine: one engine, each run a LoRA request (what sweeps do);
  per_run  - finbench.eval.evaluate.evaluate(backend="vllm"): a new engine per run (base + adapter).
Both arms must give the same answers; the scores are also set against the hf backend's scores of
the same runs in the store (merged models). Run with the vLLM venv:

    .venv-vllm/bin/python bench/bench_lora_serving.py --sweep mini --runs 4

Writes bench/results/lora_serving.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sqlite3
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _runs(store: Path, limit: int) -> list[tuple[str, str, dict]]:
    db = sqlite3.connect(store)
    try:
        rows = db.execute(
            "SELECT key, mixture, seed, info, spec FROM runs WHERE status='done' AND job='train_eval' ORDER BY key"
        ).fetchall()
        out = []
        for key, mixture, seed, info, spec in rows:
            info = json.loads(info)
            if (info.get("train") or {}).get("adapter_dir"):
                hf = dict(db.execute(
                    "SELECT task, value FROM scores WHERE run_key=? AND split='test' AND metric='score' "
                    "AND filter='tolerant'", (key,)).fetchall())
                out.append((key, f"{mixture} seed {seed}", {"spec": json.loads(spec), "hf": hf}))
        return out[:limit]
    finally:
        db.close()


def _answers(out_dir: Path, tasks: list[str]) -> dict[str, list]:
    answers = {}
    for task in tasks:
        rows = [json.loads(line) for line in (out_dir / f"samples_{task}.jsonl").read_text().splitlines()]
        answers[task] = sorted((r["doc_id"], r["filter"], r["filtered_resps"]) for r in rows)
    return answers


def main() -> None:
    from finbench import sweep as SW
    from finbench.eval import engines as EN
    from finbench.eval import evaluate as E
    from finbench.eval.vllm_compat import ensure_vllm_metadata

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sweep", default="mini")
    ap.add_argument("--runs", type=int, default=4, help="how many LoRA runs to score")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "lora_serving.json")
    args = ap.parse_args()
    ensure_vllm_metadata()
    sweep = SW.load_sweep(args.sweep)
    ev = sweep.eval
    tasks = list(ev["tasks"])
    os.environ.setdefault("FINBENCH_DATA_DIR", str(ROOT / "runs" / "replicate-data"))
    runs = _runs(sweep.store, args.runs)
    if len(runs) < 2:
        raise SystemExit(f"{sweep.store}: fewer than 2 finished LoRA runs; run the sweep first")
    work = ROOT / "runs" / "bench-lora-serving"
    targets = []
    for key, label, meta in runs:
        t = E.target_for_recipe(SW.run_recipe(SW.RunSpec.from_dict(meta["spec"])))  # the run's recipe value
        targets.append((key, label, meta, t))
    kw = dict(tasks=tasks, limit=ev["limit"], batch_size=ev["batch_size"])

    t0 = time.perf_counter()
    engine = EN.LoRAEngine(targets[0][3], max_lora_rank=max(t.lora_r or 16 for *_, t in targets),
                          batch_size=ev["batch_size"])
    start_s = time.perf_counter() - t0
    shared = {}
    for key, _, _, t in targets:
        t.out_dir = work / "shared" / key
        res = E.evaluate(t, lm=engine.serve(t), **kw)
        shared[key] = ({k: res["results"][k]["score,tolerant"] for k in tasks}, _answers(t.out_dir, tasks))
    shared_s = time.perf_counter() - t0
    try:  # free the engine's reserved memory before the per-run arm starts its engines
        engine.lm.model.llm_engine.engine_core.shutdown()
    except AttributeError:
        pass
    del engine
    gc.collect()

    t1 = time.perf_counter()
    per_run = {}
    for key, _, _, t in targets:
        t.out_dir = work / "per_run" / key
        res = E.evaluate(t, backend="vllm", **kw)  # make_lm: a new engine with this adapter
        per_run[key] = ({k: res["results"][k]["score,tolerant"] for k in tasks}, _answers(t.out_dir, tasks))
        gc.collect()
    per_run_s = time.perf_counter() - t1

    rows = []
    for key, label, meta, _ in targets:
        rows.append({"run": key, "label": label, "shared": shared[key][0], "per_run": per_run[key][0],
                     "hf_merged": meta["hf"], "same_answers": shared[key][1] == per_run[key][1]})
    summary = {
        "sweep": args.sweep, "runs": len(targets), "tasks": tasks, "limit": ev["limit"],
        "shared_s": round(shared_s, 1), "shared_engine_start_s": round(start_s, 1),
        "per_run_s": round(per_run_s, 1), "speedup": round(per_run_s / shared_s, 2), "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=1) + "\n")
    os.replace(tmp, args.out)
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}))
    for r in rows:
        print(f"{r['label']:<36} shared {r['shared']}  per_run {r['per_run']}  hf {r['hf_merged']}  "
              f"same answers: {r['same_answers']}")


if __name__ == "__main__":
    main()
