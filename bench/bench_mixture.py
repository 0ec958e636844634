"""Benchmark the mixture builder on the paper cocktail's shape (about 79k rows).

What is built, per size (the full size is the study's; "half" halves every count and the
OpenOrca-sized source, to show how time grows with rows):

- real finance tasks from the raw files under FINBENCH_DATA_DIR (required): headline 10k (of 53k train rows),
  FPB 5k (upsampled from 3,270), FiQA-SA standing in for Twitter-sentiment 5k (upsampled from 355:
  our TFNS sample lacks its validation file);
- synthetic local sources for the finance tasks without raw data here, one per input format:
  NER-cls 5k (sharegpt JSONL), ConvFinQA 2k and FinQA 2k (messages JSONL, ~2 kB table contexts),
  Twitter topics 2.5k (alpaca JSONL);
- a synthetic OpenOrca-sized Parquet source (1M rows, OpenOrca's columns, ~110 words a row),
  sampled at 1.0x the finance total, and a synthetic Orca-Math source (200k rows) at 0.5x;
- the contamination guard over every dev/test item of the real tasks (headline alone has 20k).

Each build runs in a fresh subprocess so peak RSS (ru_maxrss) is that build's own. Synthetic data
is generated once (seeded) into a temp folder and is not timed. Prints the figures and writes them
to bench/results/mixture.json. Run: `.venv/bin/python bench/bench_mixture.py [--sizes half,full]`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "mixture.json"
FULL = {"openorca_rows": 1_000_000, "orcamath_rows": 200_000, "scale": 1.0}
HALF = {"openorca_rows": 500_000, "orcamath_rows": 100_000, "scale": 0.5}
COUNTS = {  # the study's finance counts (31,500 in all)
    "headline": 10000, "fpb": 5000, "ner_cls": 5000, "convfinqa": 2000, "finqa": 2000,
    "twitter_topic": 2500, "tfns": 5000,
}


def _words(rng: random.Random, vocab: list[str], lo: int, hi: int) -> str:
    return " ".join(rng.choices(vocab, k=rng.randint(lo, hi)))


def make_sources(folder: Path, openorca_rows: int, orcamath_rows: int) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(7)
    vocab = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9)))
             for _ in range(20000)]
    out: dict[str, Path] = {}
    oo = folder / f"openorca-{openorca_rows}.parquet"
    if not oo.exists():
        writer = None
        systems = ["", "You are an AI assistant. You will be given a task.",
                   "You are a helpful assistant, who always provide explanation."]
        for start in range(0, openorca_rows, 50_000):
            n = min(50_000, openorca_rows - start)
            cols = {
                "id": [f"flan.{start + i}" for i in range(n)],
                "system_prompt": [systems[(start + i) % 3] for i in range(n)],
                "question": [_words(rng, vocab, 20, 120) for _ in range(n)],
                "response": [_words(rng, vocab, 5, 80) for _ in range(n)],
            }
            table = pa.table(cols)
            writer = writer or pq.ParquetWriter(oo, table.schema)
            writer.write_table(table)
        writer.close()
    out["openorca"] = oo
    om = folder / f"orcamath-{orcamath_rows}.parquet"
    if not om.exists():
        q = [_words(rng, vocab, 15, 60) + " ?" for _ in range(orcamath_rows)]
        a = [_words(rng, vocab, 20, 90) for _ in range(orcamath_rows)]
        pq.write_table(pa.table({"question": q, "answer": a}), om)
    out["orcamath"] = om

    def jsonl(name: str, n: int, make) -> Path:
        path = folder / f"{name}.jsonl"
        if not path.exists():
            with path.open("w", encoding="utf-8") as fh:
                for i in range(n):
                    fh.write(json.dumps(make(i)) + "\n")
        return path

    out["ner_cls"] = jsonl("ner_cls", 13000, lambda i: {"conversations": [
        {"from": "human", "value": "What is the entity type of 'X' in: " + _words(rng, vocab, 10, 40)},
        {"from": "gpt", "value": rng.choice(["person", "organization", "location"])}]})
    table_ctx = lambda: " | ".join(_words(rng, vocab, 3, 6) for _ in range(60))  # noqa: E731
    for name, n in (("convfinqa", 3000), ("finqa", 6000)):
        out[name] = jsonl(name, n, lambda i: {"messages": [
            {"role": "user", "content": table_ctx() + "\nQuestion: " + _words(rng, vocab, 8, 20)},
            {"role": "assistant", "content": str(rng.randint(1, 999))}]})
    out["twitter_topic"] = jsonl("twitter_topic", 17000, lambda i: {
        "instruction": "What is the topic of this tweet?", "input": _words(rng, vocab, 8, 30),
        "output": rng.choice(["Earnings", "M&A", "Macro", "Stock Movement"])})
    return out


def mixture_yaml(srcs: dict[str, Path], scale: float) -> dict:
    c = {k: max(1, round(v * scale)) for k, v in COUNTS.items()}
    finance = list(COUNTS)
    comps = {
        "headline": {"task": "headline", "count": c["headline"]},
        "fpb": {"task": "fpb", "count": c["fpb"]},
        "tfns": {"task": "fiqa_sa", "count": c["tfns"]},
        "ner_cls": {"dataset": {"file": str(srcs["ner_cls"]), "format": "sharegpt"},
                    "count": c["ner_cls"]},
        "convfinqa": {"dataset": {"file": str(srcs["convfinqa"]), "format": "messages"},
                      "count": c["convfinqa"]},
        "finqa": {"dataset": {"file": str(srcs["finqa"]), "format": "messages"},
                  "count": c["finqa"]},
        "twitter_topic": {"dataset": {"file": str(srcs["twitter_topic"]), "format": "alpaca"},
                          "count": c["twitter_topic"]},
        "openorca": {"dataset": {"file": str(srcs["openorca"]), "format": {
            "system": "system_prompt", "user": "question", "assistant": "response"}},
            "relative_to": list(finance), "factor": 1.0},
        "orcamath": {"dataset": {"file": str(srcs["orcamath"]), "format": {
            "user": "question", "assistant": "answer"}}, "relative_to": list(finance),
            "factor": 0.5},
    }
    return {"seed": 42, "contamination": {"mode": "drop", "tasks": ["fpb", "headline", "fiqa_sa"]},
            "components": comps}


CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from finbench import mixtures as M
mix = M.load_mixture(sys.argv[1])
res = M.build(mix, sys.argv[2], force=True, progress=False)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
rss = ru.ru_maxrss / 1024
print(json.dumps({"wall_s": round(wall, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
                  "peak_rss_mb": round(rss, 1), "rows": res.summary["rows"],
                  "components": {k: {x: v[x] for x in ("rows_in_source", "rows_requested",
                  "rows_taken", "upsampling_factor")} for k, v in res.summary["components"].items()},
                  "eval_items": res.summary["contamination"]["eval_items"],
                  "dropped": res.summary["contamination"]["dropped"],
                  "jsonl_mb": round(res.jsonl.stat().st_size / 2**20, 1),
                  "timings_s": res.summary["timings_s"]}))
"""


def real_data_dir() -> Path:
    return Path(os.environ["FINBENCH_DATA_DIR"]).resolve()  # main() skips when it is unset


def run_size(label: str, size: dict, work: Path) -> dict:
    import yaml

    srcs = make_sources(work, size["openorca_rows"], size["orcamath_rows"])
    spec = mixture_yaml(srcs, size["scale"])
    path = work / f"bench_{label}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    env = {**os.environ, "FINBENCH_DATA_DIR": str(real_data_dir()), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), str(work / "out")],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"build {label} failed")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["openorca_source_rows"] = size["openorca_rows"]
    out["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="half,full")
    ap.add_argument("--work", default=None, help="folder for synthetic sources (default: temp)")
    args = ap.parse_args()
    if not os.environ.get("FINBENCH_DATA_DIR"):
        print("skip: FINBENCH_DATA_DIR is not set (real finance raw files needed)")
        return 0
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-mixture-"))
    work.mkdir(parents=True, exist_ok=True)
    sizes = {"half": HALF, "full": FULL}
    results = {}
    for label in args.sizes.split(","):
        t = time.perf_counter()
        make_sources(work, sizes[label]["openorca_rows"], sizes[label]["orcamath_rows"])
        gen = time.perf_counter() - t
        r = run_size(label, sizes[label], work)
        r["synthetic_generation_s"] = round(gen, 1)
        results[label] = r
        print(f"{label}: {r['rows']} rows from a {r['openorca_source_rows']:,}-row OpenOrca source: "
              f"{r['wall_s']} s wall ({r['cpu_s']} s CPU), peak RSS {r['peak_rss_mb']} MB, {r['eval_items']} eval items guarded, "
              f"{r['dropped']} contaminated rows dropped")
    if len(results) == 2:
        a, b = results.values()
        print(f"wall ratio {b['wall_s'] / a['wall_s']:.2f}, CPU ratio {b['cpu_s'] / a['cpu_s']:.2f} "
              f"for row ratio {b['rows'] / a['rows']:.2f}")
    record = {
        "benchmark": "mixture build, paper cocktail shape",
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "goal": {"wall_s": 60, "peak_rss_mb": 2048},
        "results": results,
        "self_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
