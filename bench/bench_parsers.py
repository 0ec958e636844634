"""Parser agreement with hand-labelled real model outputs (tests/data/parser_gold.jsonl).

Each record is one real SmolLM2-135M-Instruct output (base model or a briefly LoRA-trained one;
tasks fpb, tfns, fiqa_sa, headline, twitter_topic and finqa; prompt styles `chat+prefix`, `chat`,
`plain+prefix` and `plain`) with the parse a careful reader gives it, labelled by hand (tests/data/README.md
states the reading rules). This prints, for the label parser (classification tasks) and the
numeric reader (finqa), the share of records where the parser agrees with that reading, in
tolerant and strict mode, per task, and lists every disagreement. Goal: tolerant >= 99%, strict
100%. Writes bench/results/parsers.json. Takes about a second; needs no model.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eval_plugins import numeric as N  # noqa: E402
from eval_plugins.parsers import MISSING, LabelParser  # noqa: E402

GOLD = ROOT / "tests" / "data" / "parser_gold.jsonl"
OUT = ROOT / "bench" / "results" / "parsers.json"
GOALS = {"tolerant": 0.99, "strict": 1.0}


def load(path: Path = GOLD) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _numeric_parse(record: dict, strict: bool) -> str:
    golds = [record["gold_answer"]] if isinstance(record.get("gold_answer"), str) else []
    try:
        return N.encode(N.extract(record["output"], strict=strict, yes_no=N.golds_are_yes_no(golds)))
    except (ValueError, N.P.ProgramError):
        return MISSING


def _same_numeric(got: str, want: str) -> bool:
    if got == want:
        return True
    a, b = N.decode(got), N.decode(want)
    if isinstance(a, N.Number) and isinstance(b, N.Number):
        return a.percent == b.percent and math.isclose(a.value, b.value, rel_tol=1e-9, abs_tol=1e-12)
    return False


@functools.cache
def task_parser(task: str) -> LabelParser:
    """The parser as the task's YAML configures it TODAY (labels, synonyms), so a synonym added
    to a task is measured here; the records keep the choices and synonyms they were made with."""
    from finbench.tasks import discover

    meta = discover()[task].config.get("metadata") or {}
    return LabelParser(meta["labels"], meta.get("synonyms") or {})


def parse(record: dict, mode: str) -> str:
    """The parser's reading of one record in `mode` ("tolerant" or "strict")."""
    if record["task"] == "finqa":
        return _numeric_parse(record, strict=mode == "strict")
    return task_parser(record["task"])(record["output"], strict=mode == "strict")


def agrees(record: dict, mode: str, got: str) -> bool:
    want = record[f"gold_{mode}"]
    return _same_numeric(got, want) if record["task"] == "finqa" else got == want


def agreement(records: list[dict]) -> dict:
    """{mode: {"agree", "total", "rate", "by_task": {...}, "disagreements": [...]}}."""
    out = {}
    for mode in GOALS:
        by_task: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        wrong = []
        for i, record in enumerate(records):
            got = parse(record, mode)
            ok = agrees(record, mode, got)
            by_task[record["task"]][0] += ok
            by_task[record["task"]][1] += 1
            if not ok:
                wrong.append(
                    {
                        "index": i,
                        "task": record["task"],
                        "style": record["prompt_style"],
                        "output": record["output"],
                        "gold": record[f"gold_{mode}"],
                        "parser": got,
                    }
                )
        agree = sum(a for a, _ in by_task.values())
        out[mode] = {
            "agree": agree,
            "total": len(records),
            "rate": agree / len(records) if records else math.nan,
            "by_task": {t: {"agree": a, "total": n} for t, (a, n) in sorted(by_task.items())},
            "disagreements": wrong,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gold", type=Path, default=GOLD)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    records = load(args.gold)
    result = agreement(records)
    sources = sorted({r["source_model"] for r in records})
    print(f"parser agreement with {len(records)} hand-labelled real outputs ({args.gold.name})")
    for source in sources:
        print(f"  source: {source} ({sum(r['source_model'] == source for r in records)})")
    for mode, res in result.items():
        goal = GOALS[mode]
        flag = "ok" if res["rate"] >= goal else "BELOW GOAL"
        print(f"{mode:9s} {res['agree']}/{res['total']} = {res['rate']:.2%} (goal >= {goal:.0%}: {flag})")
        print("          " + ", ".join(f"{t} {v['agree']}/{v['total']}" for t, v in res["by_task"].items()))
        for d in res["disagreements"]:
            print(
                f"  - #{d['index']} {d['task']}/{d['style']}: {d['output']!r}: gold {d['gold']!r}, parser {d['parser']!r}"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from finbench.files import write_atomic

    write_atomic(args.out, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
