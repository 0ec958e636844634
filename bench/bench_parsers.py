"""Parser agreement with hand-labelled real model outputs (tests/fixtures/parser_gold/parser_gold.jsonl).

Each record is one real SmolLM2-135M-Instruct output (base model or a briefly LoRA-trained one;
tasks fpb, tfns, fiqa_sa, headline, twitter_topic and finqa; prompt styles `chat+prefix`, `chat`,
`plain+prefix` and `plain`) with the parse a careful reader gives it, labelled by hand (tests/fixtures/parser_gold/README.md
states the reading rules). This prints, for the label parser (classification tasks) and the
numeric reader (finqa), the share of records where the parser agrees with that reading, in
tolerant and strict mode, per task, and lists every disagreement. Goal: tolerant >= 99%, strict
100%. Writes bench/results/parsers.json.

Then the time per KB of every parser (`SCALING`: label parser, numeric reader, NER lines, FinBen
exact match, FinQA programs) on adversarial outputs (`ADVERSARIAL`: repeated prose, one long
whitespace run, digits, program calls, many short lines) from 1 KB to 1 MB, as a ratio to the 1 KB
run (issue 21: the numeric reader was quadratic, NER cubic in a whitespace run). Goal: no ratio
above MAX_RATIO (flat, or falling once eval_plugins.parsers.MAX_OUTPUT_CHARS caps the work).
Writes bench/results/parser_scaling.json. Takes about a minute; needs no model.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eval_plugins import finben_em as FE  # noqa: E402
from eval_plugins import finqa_program as P  # noqa: E402
from eval_plugins import ner as NER  # noqa: E402
from eval_plugins import numeric as N  # noqa: E402
from eval_plugins.parsers import MISSING, LabelParser  # noqa: E402

GOLD = ROOT / "tests" / "fixtures" / "parser_gold" / "parser_gold.jsonl"
OUT = ROOT / "bench" / "results" / "parsers.json"
SCALING_OUT = ROOT / "bench" / "results" / "parser_scaling.json"
GOALS = {"tolerant": 0.99, "strict": 1.0}
SIZES_KB = (1, 4, 16, 64, 256, 1024)
MAX_RATIO = 3.0  # time per KB at any size over time per KB at 1 KB: above this grows with the input
_LABELS = LabelParser(["positive", "negative", "neutral"])


def _swallow(fn: Callable[[str], object]) -> Callable[[str], object]:
    def run(text: str) -> object:
        try:
            return fn(text)
        except (ValueError, P.ProgramError):  # the reader's own "no answer": still timed
            return None

    return run


# Every parser a task scores with, called as the task's filter calls it.
SCALING: dict[str, Callable[[str], object]] = {
    "labels tolerant": _LABELS.tolerant,
    "labels strict": _LABELS.strict,
    "numeric tolerant": _swallow(N.extract),
    "numeric strict": _swallow(lambda t: N.extract(t, strict=True)),
    "numeric yes/no": _swallow(lambda t: N.extract(t, yes_no=True)),
    "numeric stated_number": N.stated_number,
    "ner tolerant": NER.parse_lines,
    "ner strict": lambda t: NER.parse_lines(t, strict=True),
    "finben exact match": lambda t: FE.exact_match(t, ["1234.5"]),
    "finqa program": _swallow(P.execute),
}


def _fill(unit: str, size: int, head: str = "", tail: str = "") -> str:
    body = unit * (max(size - len(head) - len(tail), 0) // len(unit) + 1)
    return head + body[: max(size - len(head) - len(tail), 0)] + tail


# name -> size in characters -> one output of that size, written to defeat a careless regex
ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "prose": lambda n: _fill("The answer is 1,234.5 million. From 2018 to 2019 it grew 3%. ", n),
    "whitespace run": lambda n: _fill(" ", n, head="Apple, organization", tail="x"),
    "digits": lambda n: _fill("1234567890", n, head="-$ (", tail=".5.5"),
    "program calls": lambda n: _fill("add(1, 2), ", n, head="divide(", tail=")"),
    "short lines": lambda n: _fill("a) positive or negative?\nAnswer: 5 - ", n),
}


def _seconds(fn: Callable[[str], object], text: str, budget: float = 0.05) -> float:
    """Seconds per call: repeated until `budget` seconds have passed, the best of 3 rounds."""
    best = math.inf
    for _ in range(3):
        calls, start = 0, time.perf_counter()
        while True:
            fn(text)
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= budget:
                break
        best = min(best, elapsed / calls)
    return best


def scaling(sizes_kb: tuple[int, ...] = SIZES_KB) -> dict[str, dict]:
    """{parser: {"us_per_kb": {kb: ...}, "ratio": {kb: ...}, "worst_input": name}}, the worst input
    being the one whose time per KB grows most (each ratio is that input's, vs its own 1 KB)."""
    out = {}
    for name, fn in SCALING.items():
        worst: dict = {}
        for input_name, make in ADVERSARIAL.items():
            per_kb = {kb: _seconds(fn, make(kb * 1024)) / kb * 1e6 for kb in sizes_kb}
            ratio = {kb: v / per_kb[sizes_kb[0]] for kb, v in per_kb.items()}
            if not worst or max(ratio.values()) > max(worst["ratio"].values()):
                worst = {"us_per_kb": per_kb, "ratio": ratio, "worst_input": input_name}
        out[name] = worst
    return out


def print_scaling(result: dict[str, dict]) -> bool:
    """The table; True when no parser's time per KB grows past MAX_RATIO."""
    sizes = list(next(iter(result.values()))["ratio"])
    print(f"time per KB vs the 1 KB run, worst of {len(ADVERSARIAL)} adversarial inputs "
          f"(goal: every ratio <= {MAX_RATIO:g})")
    print(f"  {'parser':24s}{'us/KB @1KB':>11s}" + "".join(f"{kb:>8d}K" for kb in sizes) + "  worst input")
    ok = True
    for name, res in result.items():
        ratios = "".join(f"{r:9.2f}" for r in res["ratio"].values())
        flag = max(res["ratio"].values()) <= MAX_RATIO
        ok &= flag
        print(f"  {name:24s}{res['us_per_kb'][sizes[0]]:11.1f}{ratios}  {res['worst_input']}"
              f"{'' if flag else '  GROWS'}")
    return ok


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
    from finbench.data.tasks import discover

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
    ap.add_argument("--scaling-out", type=Path, default=SCALING_OUT)
    ap.add_argument("--sizes-kb", type=int, nargs="+", default=list(SIZES_KB))
    ap.add_argument("--no-scaling", action="store_true", help="agreement only")
    ap.add_argument("--check", action="store_true", help="exit 1 when a parser's time per KB grows")
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
    from finbench.core.files import write_atomic

    write_atomic(args.out, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    if args.no_scaling:
        return 0
    table = scaling(tuple(args.sizes_kb))
    flat = print_scaling(table)
    print("time per KB flat up to 1 MB: " + ("yes" if flat else "NO (see GROWS)"))
    write_atomic(args.scaling_out, json.dumps(table, indent=2) + "\n")
    return 0 if flat or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
