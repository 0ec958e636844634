"""`finbench verify-metrics DIR`: the project's own metric code against official-code oracle figures.

DIR holds any of these files (the format is described beside a published set of them):
`tatqa_official.jsonl` (TAT-QA `tatqa_metric.py` EM/F1 of a structured prediction),
`finqa_programs_official.jsonl` (FinQA `eval_program` flag/result and execution match),
`finqa_answers_official.jsonl` (FinQA `str_to_num` + 5-decimal equality of bare answers),
`ner_seqeval.jsonl` + `ner_seqeval_summary.json` (seqeval entity P/R/F1 on a placement).
Each row is scored with the same functions the lm-eval tasks call, and each (file, metric) gets
rows / agreeing / differing, the differing rows grouped by the row's variant. Metrics named after
an official one must agree on every row (else exit 1); the lenient named metrics are reported
with their difference counts, each rule named in its task README. A malformed row stops the run
with one line naming the file and row number; nothing is skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from finbench.core import settings
from finbench.core.files import write_atomic


class OracleError(ValueError):
    """A malformed oracle file or row (the message names the file and row)."""


@dataclass
class Tally:
    official: bool  # named after an official metric: must agree on every row
    rows: int = 0
    check: bool = False  # an intermediate step compared for diagnosis (not a metric)
    differing: Counter = field(default_factory=Counter)

    def add(self, agrees: bool, variant: str) -> None:
        self.rows += 1
        if not agrees:
            self.differing[variant] += 1

    def as_dict(self) -> dict[str, Any]:
        n = sum(self.differing.values())
        return {
            "official": self.official,
            "kind": "official" if self.official else "check" if self.check else "lenient",
            "rows": self.rows,
            "agreeing": self.rows - n,
            "differing": n,
            "differing_by_variant": dict(sorted(self.differing.items())),
        }


Report = dict[str, dict[str, Tally]]  # file -> metric -> tally

# ---------------------------------------------------------------------------------------------
# Reading rows: every field checked, every failure named


NUM = (int, float)
Schema = dict[str, tuple[type, ...]]


def _rows(path: Path, schema: Schema, optional: Schema | None = None) -> Iterator[tuple[int, dict]]:
    """(row number, row) of a JSON Lines file whose rows all carry `schema`'s fields and types."""
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise OracleError(f"{path}: row {n}: not JSON ({err.msg})") from err
            if not isinstance(row, dict):
                raise OracleError(f"{path}: row {n}: expected a JSON object, got {type(row).__name__}")
            _check(path, n, row, schema, required=True)
            _check(path, n, row, optional or {}, required=False)
            yield n, row


def _check(path: Path, n: int, row: dict, schema: Schema, required: bool) -> None:
    for key, types in schema.items():
        if key not in row:
            if required:
                raise OracleError(f"{path}: row {n}: missing field {key!r}")
            continue
        value = row[key]
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            names = "/".join(t.__name__ for t in types)
            raise OracleError(f"{path}: row {n}: field {key!r} must be {names}, got {type(value).__name__}")


def _str_list(path: Path, n: int, row: dict, key: str) -> list[str]:
    value = row[key]
    if not all(isinstance(v, str) for v in value):
        raise OracleError(f"{path}: row {n}: field {key!r} must be a list of strings")
    return value


def _task_utils(name: str) -> ModuleType:
    """A task's utils.py, loaded by file path as lm-eval loads it."""
    path = settings.tasks_dir() / name / "utils.py"
    spec = importlib.util.spec_from_file_location(f"finbench_verify_{name}_utils", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------
# TAT-QA


TATQA_SCHEMA: Schema = {
    "answer_type": (str,),
    "gold_answer": (list, str, int, float),
    "gold_scale": (str,),
    "variant": (str,),
    "pred": (list,),
    "pred_scale": (str,),
    "official_em": NUM,
    "official_f1": NUM,
}


def verify_tatqa(path: Path) -> dict[str, Tally]:
    tq = _task_utils("tatqa")
    tallies = {m: Tally(official=m in ("exact_match", "f1")) for m in ("exact_match", "f1")}
    tallies |= {m: Tally(official=False) for m in ("exact_match_intnorm", "f1_intnorm")}
    for n, row in _rows(path, TATQA_SCHEMA):
        pred = _str_list(path, n, row, "pred")
        question = {
            "answer_type": row["answer_type"],
            "answer": row["gold_answer"],
            "scale": row["gold_scale"],
        }
        try:
            golds = tq.gold_answers(question, f"{path}: row {n}")
        except ValueError as err:
            raise OracleError(str(err)) from err
        doc = {"gold_answers": golds, "scale": row["gold_scale"], "answer_type": row["answer_type"]}
        official = tq.score(doc, pred, row["pred_scale"])
        lenient = tq.score(doc, pred, row["pred_scale"], intnorm=True)
        truth = {"exact_match": row["official_em"], "f1": row["official_f1"]}
        for metric, value in truth.items():
            tallies[metric].add(official[metric] == value, row["variant"])
            tallies[f"{metric}_intnorm"].add(lenient[metric] == value, row["variant"])
    return tallies


# ---------------------------------------------------------------------------------------------
# FinQA


PROGRAM_SCHEMA: Schema = {
    "table": (list,),
    "kind": (str,),
    "program": (str,),
    "official_invalid_flag": (int,),
    "official_result": (*NUM, str),
}
PROGRAM_OPTIONAL: Schema = {"gold_exe_ans": (*NUM, str), "official_exe_match": NUM}
ANSWER_SCHEMA: Schema = {"variant": (str,), "pred": (str,), "gold_exe_ans": NUM, "official_exe_match": NUM}


def _same(ours: Any, theirs: Any) -> bool:
    if isinstance(ours, str) or isinstance(theirs, str):
        return isinstance(ours, str) and ours == theirs
    if math.isnan(ours) and math.isnan(theirs):
        return True
    return ours == theirs


def _table(path: Path, n: int, row: dict) -> list[list[str]]:
    table = row["table"]
    if not all(isinstance(r, list) and all(isinstance(c, str) for c in r) for r in table):
        raise OracleError(f"{path}: row {n}: field 'table' must be a list of rows of strings")
    return table


def _lenient_result(program: str, table: list[list[str]]) -> Any:
    from eval_plugins import finqa_program as P

    try:
        value = P.execute(program, table).value
    except P.ProgramError:
        return "invalid"
    return value if isinstance(value, str) else round(value, 5)


def verify_finqa_programs(path: Path) -> dict[str, Tally]:
    from eval_plugins import finqa_program as P

    tallies = {"program_result": Tally(True), "exe_acc": Tally(True), "program_result_lenient": Tally(False)}
    for n, row in _rows(path, PROGRAM_SCHEMA, PROGRAM_OPTIONAL):
        table, kind = _table(path, n, row), row["kind"]
        if ("gold_exe_ans" in row) != ("official_exe_match" in row):
            raise OracleError(f"{path}: row {n}: 'gold_exe_ans' and 'official_exe_match' go together")
        flag, value = P.official_execute(row["program"], table)
        ours = "invalid" if flag else value
        tallies["program_result"].add(
            flag == row["official_invalid_flag"] and _same(ours, row["official_result"]), kind
        )
        tallies["program_result_lenient"].add(
            _same(_lenient_result(row["program"], table), row["official_result"]), kind
        )
        if "gold_exe_ans" in row:
            match = P.official_match(row["program"], row["gold_exe_ans"], table)
            tallies["exe_acc"].add(float(match) == row["official_exe_match"], kind)
    return tallies


def verify_finqa_answers(path: Path) -> dict[str, Tally]:
    from eval_plugins import finqa_metrics as FM
    from eval_plugins import numeric as N

    names = ("exact_match", "rounded_match", "tolerant_match")
    tallies = {"exe_acc": Tally(True)} | {name: Tally(False) for name in names}
    strict, tolerant = N.NumericFilter(strict=True), N.NumericFilter(strict=False)
    for _, row in _rows(path, ANSWER_SCHEMA):
        gold, truth, variant = row["gold_exe_ans"], row["official_exe_match"], row["variant"]
        doc = {"exe_ans": repr(float(gold)), "golds": [repr(float(gold))], "table": None}
        tallies["exe_acc"].add(FM.exe_acc(doc, row["pred"]) == truth, variant)
        # Our reading (the `tolerant` filter, or `strict` when it reads the answer too).
        filtered = strict.one(row["pred"], doc)
        if filtered.startswith(N.MISSING):
            filtered = tolerant.one(row["pred"], doc)
        scores = N.process_results(doc, [filtered])
        for name in names:
            tallies[name].add(scores[name] == truth, variant)
    return tallies


# ---------------------------------------------------------------------------------------------
# NER


NER_SCHEMA: Schema = {
    "tokens": (list,),
    "gold_io": (list,),
    "variant": (str,),
    "text": (str,),
    "pred_tags": (list,),
    "seqeval_padded": (dict,),
}
SEQEVAL = ("precision", "recall", "f1")


def _close(a: float, b: Any) -> bool:
    return isinstance(b, NUM) and abs(a - b) <= 1e-12


def _seqeval_figures(path: Path, where: str, figures: Any) -> dict[str, float]:
    if not isinstance(figures, dict) or not all(isinstance(figures.get(k), NUM) for k in SEQEVAL):
        raise OracleError(f"{path}: {where}: expected numbers {list(SEQEVAL)}")
    return figures


def verify_ner(path: Path, summary: Path | None) -> dict[str, Tally]:
    from eval_plugins import ner as NER

    tallies = {m: Tally(True) for m in SEQEVAL} | {"placement": Tally(False, check=True)}
    items: dict[str, list] = defaultdict(list)
    for n, row in _rows(path, NER_SCHEMA):
        tokens, gold = _str_list(path, n, row, "tokens"), _str_list(path, n, row, "gold_io")
        if len(tokens) != len(gold) or len(_str_list(path, n, row, "pred_tags")) != len(tokens):
            raise OracleError(f"{path}: row {n}: 'tokens', 'gold_io' and 'pred_tags' differ in length")
        truth = _seqeval_figures(path, f"row {n} field 'seqeval_padded'", row["seqeval_padded"])
        doc = {"id": f"row {n}", "tokens": tokens, "tags": gold}
        filtered = NER.NerFilter(strict=False).one(row["text"], doc)
        item = NER.process_results(doc, [filtered])["f1"]
        for metric in SEQEVAL:
            tallies[metric].add(_close(getattr(NER, metric)([item]), truth[metric]), row["variant"])
        placed = NER.io_to_iob2(json.loads(filtered)["tags"])
        tallies["placement"].add(placed == row["pred_tags"], row["variant"])
        items[row["variant"]].append(item)
        items["ALL"].append(item)
    if summary is not None:
        tallies |= _verify_ner_summary(summary, items)
    return tallies


def _verify_ner_summary(path: Path, items: dict[str, list]) -> dict[str, Tally]:
    from eval_plugins import ner as NER

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise OracleError(f"{path}: not JSON ({err.msg})") from err
    per_variant = data.get("per_variant") if isinstance(data, dict) else None
    if not isinstance(per_variant, dict):
        raise OracleError(f"{path}: missing object 'per_variant'")
    tallies = {f"corpus_{m}": Tally(True) for m in SEQEVAL}
    for variant, entry in sorted(per_variant.items()):
        if variant not in items:
            raise OracleError(f"{path}: per_variant {variant!r} has no rows in the jsonl file")
        where = f"per_variant {variant!r} 'padded'"
        truth = _seqeval_figures(path, where, entry.get("padded") if isinstance(entry, dict) else None)
        for metric in SEQEVAL:
            tallies[f"corpus_{metric}"].add(
                _close(getattr(NER, metric)(items[variant]), truth[metric]), variant
            )
    return tallies


# ---------------------------------------------------------------------------------------------
# The command


FILES: dict[str, Callable[[Path, Path], dict[str, Tally]]] = {
    "tatqa_official.jsonl": lambda p, _: verify_tatqa(p),
    "finqa_programs_official.jsonl": lambda p, _: verify_finqa_programs(p),
    "finqa_answers_official.jsonl": lambda p, _: verify_finqa_answers(p),
    "ner_seqeval.jsonl": lambda p, d: verify_ner(p, _present(d / "ner_seqeval_summary.json")),
}


def _present(path: Path) -> Path | None:
    return path if path.is_file() else None


def verify(folder: Path) -> Report:
    """Every oracle file present in `folder`, scored; raises OracleError on bad input."""
    folder = Path(folder)
    if not folder.is_dir():
        raise OracleError(f"{folder}: not a folder")
    present = {name: folder / name for name in FILES if (folder / name).is_file()}
    if not present:
        raise OracleError(f"{folder}: none of the oracle files {sorted(FILES)}")
    return {name: FILES[name](path, folder) for name, path in present.items()}


def failures(report: Report) -> list[str]:
    """`file metric` for each official-named metric that differs on some row."""
    return [
        f"{name} {metric}"
        for name, tallies in report.items()
        for metric, tally in tallies.items()
        if tally.official and tally.differing
    ]


def as_json(report: Report, folder: Path) -> dict[str, Any]:
    return {
        "dir": str(folder),
        "ok": not failures(report),
        "files": {name: {m: t.as_dict() for m, t in tallies.items()} for name, tallies in report.items()},
    }


def format_table(report: Report) -> str:
    lines = [
        f"{'file':32} {'metric':24} {'kind':8} {'rows':>6} {'agree':>6} {'differ':>6}  differing by variant"
    ]
    for name, tallies in report.items():
        for metric, tally in tallies.items():
            d = tally.as_dict()
            kind = "official" if tally.official else "check" if tally.check else "lenient"
            by = ", ".join(f"{v}: {c}" for v, c in d["differing_by_variant"].items()) or "-"
            lines.append(
                f"{name:32} {metric:24} {kind:8} {d['rows']:>6} {d['agreeing']:>6} {d['differing']:>6}  {by}"
            )
    return "\n".join(lines)


def _cmd(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    try:
        report = verify(folder)
    except (OracleError, OSError) as err:
        print(f"error: {err}")
        return 2
    print(format_table(report))
    if args.json:
        write_atomic(Path(args.json), json.dumps(as_json(report, folder), indent=2, sort_keys=True) + "\n")
    bad = failures(report)
    if bad:
        print(f"FAIL: official-named metrics differ: {'; '.join(bad)}")
        return 1
    print("OK: every official-named metric agrees on every row")
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify-metrics",
        help="score official-code oracle files with finbench's own metrics; exit 1 on any official difference",
    )
    p.add_argument(
        "dir", help="folder with tatqa_official.jsonl, finqa_*_official.jsonl, ner_seqeval.jsonl, ..."
    )
    p.add_argument("--json", metavar="OUT", help="also write the table as one JSON object to OUT")
    p.set_defaults(func=_cmd)
