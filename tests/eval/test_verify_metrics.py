"""`finbench verify-metrics` and the official semantics it checks.

The oracle files (../shared/oracles) hold predictions with the figures that the benchmarks'
official code gives for them; the project's own metric code must agree on every row for every
metric named after an official one. Unit tests pin each fixed bug and each official quirk.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from eval_plugins import finqa_metrics as FM
from eval_plugins import finqa_program as P
from eval_plugins import ner as NER
from finbench import cli
from finbench.eval import verify_metrics as V

ROOT = Path(__file__).resolve().parents[2]
ORACLES = ROOT.parent / "shared" / "oracles"
needs_oracles = pytest.mark.skipif(
    not (ORACLES / "tatqa_official.jsonl").is_file(), reason="../shared/oracles absent"
)


def _tatqa():
    spec = importlib.util.spec_from_file_location("tatqa_utils_v", ROOT / "tasks" / "tatqa" / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the oracle check ------------------------------------------------------------------------

# Where each lenient metric may differ from the official figure: the rules its README names.
DOCUMENTED = {
    ("finqa_programs_official.jsonl", "program_result_lenient"): {
        "upper_case_op",  # operations in any case
        "row_name_upper_case",  # row names matched without case / punctuation / spacing
        "table_op_paren_in_row_name",  # "(" in row names
        "table_op_then_arith",
        "table_sum_then_divide_100",
        "table_op_duplicate_row_name",
        "no_space_after_comma",  # whitespace around arguments ignored
        "trailing_space",
        "dollar_literal",  # "$ 5" literals
        "comma_in_number_literal",  # "," always separates arguments
        "table_op_on_reference",  # no "#n" row reuse
        "empty_program",  # an error, not "n/a" (both score 0)
        "accounting_negative_literal",
        "table_op_accounting_negative_cell",
    },
    ("finqa_answers_official.jsonl", "exact_match"): {
        "sentence",
        "trailing_period",
        "with_unit_word",
        "accounting_negative",
    },
}


@needs_oracles
def test_shared_oracles_agree_on_every_official_row(tmp_path: Path, capsys) -> None:
    out = tmp_path / "verify.json"
    assert cli.main(["verify-metrics", str(ORACLES), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "OK: every official-named metric agrees" in printed
    report = json.loads(out.read_text())
    assert report["ok"] is True
    files = report["files"]
    assert set(files) == {
        "tatqa_official.jsonl",
        "finqa_programs_official.jsonl",
        "finqa_answers_official.jsonl",
        "ner_seqeval.jsonl",
    }
    official = {(f, m): t for f, ms in files.items() for m, t in ms.items() if t["official"]}
    assert {m for _, m in official} >= {
        "exact_match",
        "f1",
        "program_result",
        "exe_acc",
        "precision",
        "recall",
    }
    for key, tally in official.items():
        assert tally["rows"] > 0 and tally["differing"] == 0 and tally["agreeing"] == tally["rows"], key
    assert files["tatqa_official.jsonl"]["exact_match"]["rows"] == 1264
    assert files["finqa_programs_official.jsonl"]["program_result"]["rows"] == 2000
    assert files["ner_seqeval.jsonl"]["corpus_f1"]["rows"] == 11  # 10 variants + ALL
    # The lenient metrics exist beside the official ones, and differ only where documented.
    lenient = {(f, m): t for f, ms in files.items() for m, t in ms.items() if t["kind"] == "lenient"}
    assert set(lenient) >= {
        ("tatqa_official.jsonl", "exact_match_intnorm"),
        ("tatqa_official.jsonl", "f1_intnorm"),
        ("finqa_programs_official.jsonl", "program_result_lenient"),
        ("finqa_answers_official.jsonl", "rounded_match"),
        ("finqa_answers_official.jsonl", "tolerant_match"),
    }
    assert all(t["differing"] > 0 for t in lenient.values())  # they are not the official figure
    for key, allowed in DOCUMENTED.items():
        assert set(lenient[key]["differing_by_variant"]) <= allowed, key


@needs_oracles
def test_tatqa_intnorm_differs_only_on_integers() -> None:
    tq = _tatqa()
    integer = re.compile(r"(?<![\d.])\d+(?![\d.])")
    differing = 0
    for line in (ORACLES / "tatqa_official.jsonl").read_text().splitlines():
        row = json.loads(line)
        q = {"answer_type": row["answer_type"], "answer": row["gold_answer"], "scale": row["gold_scale"]}
        doc = {
            "gold_answers": tq.gold_answers(q, "t"),
            "scale": row["gold_scale"],
            "answer_type": row["answer_type"],
        }
        official = tq.score(doc, row["pred"], row["pred_scale"])
        if official != tq.score(doc, row["pred"], row["pred_scale"], intnorm=True):
            differing += 1
            assert any(integer.search(span.replace(",", "")) for span in row["pred"]), row["row_id"]
    assert differing > 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "row 2: not JSON"),
        (
            '{"row_id": "x", "variant": "v", "gold_exe_ans": 1.0, "official_exe_match": 0.0}',
            "row 2: missing field 'pred'",
        ),
        (
            '{"row_id": "x", "variant": "v", "pred": 5, "gold_exe_ans": 1.0, "official_exe_match": 0.0}',
            "row 2: field 'pred' must be str",
        ),
        ('["a list"]', "row 2: expected a JSON object"),
    ],
)
def test_malformed_row_is_named_never_skipped(tmp_path: Path, capsys, line: str, message: str) -> None:
    good = '{"row_id": "a", "variant": "v", "pred": "5", "gold_exe_ans": 5.0, "official_exe_match": 1.0}'
    path = tmp_path / "finqa_answers_official.jsonl"
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(V.OracleError, match=re.escape(message)):
        V.verify(tmp_path)
    out = tmp_path / "out.json"
    assert cli.main(["verify-metrics", str(tmp_path), "--json", str(out)]) == 2
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and printed[0].startswith(f"error: {path}: {message}")
    assert not out.exists()  # nothing half-written


def test_official_difference_fails_the_run(tmp_path: Path, capsys) -> None:
    rows = [
        {"row_id": "a", "variant": "ok", "pred": "5", "gold_exe_ans": 5.0, "official_exe_match": 1.0},
        {"row_id": "b", "variant": "wrong", "pred": "5", "gold_exe_ans": 5.0, "official_exe_match": 0.0},
    ]
    (tmp_path / "finqa_answers_official.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli.main(["verify-metrics", str(tmp_path)]) == 1
    printed = capsys.readouterr().out
    assert "finqa_answers_official.jsonl exe_acc" in printed and "wrong: 1" in printed


# --- FinQA official semantics ----------------------------------------------------------------

TABLE = [
    ["", "2019", "2018"],
    ["revenue", "$ 100", "$ 80"],
    ["costs", "50", "40"],
    ["costs", "70", "60"],  # a repeated row name: the LAST row wins
    ["net ( loss )", "( 39.4 )", "5"],
    ["margin", "12.5%", "10%"],
]


@pytest.mark.parametrize(
    ("program", "expected"),
    [
        ("table_max(costs, none)", (0, 70.0)),  # last row, not the first (the fixed bug)
        ("table_sum(revenue, none)", (0, 180.0)),  # "$" stripped from cells
        ("table_average(margin, none)", (0, 0.1125)),  # "x%" cells are x/100
        ("table_max(net ( loss ), none)", (1, None)),  # "(" in a row name breaks tokenisation
        ("table_max(Costs, none)", (1, None)),  # exact, case-sensitive row names
        ("add(5, 3)", (0, 8.0)),
        ("add(5,3)", (1, None)),  # tokenised on ", "
        ("add(1,234, 5)", (0, 1239.0)),
        ("add(5, 3) ", (1, None)),  # a trailing space
        ("ADD(5, 3)", (1, None)),  # upper-case operation
        ("add($5, 3)", (1, None)),  # "$5" literal
        ("add(-19 ( 19 ), 1)", (1, None)),
        ("multiply(const_m1, 5%)", (0, -0.05)),
        ("divide(1, 3)", (0, 0.33333)),  # 5-decimal rounding
        ("divide(5, 0)", (1, None)),
        ("greater(5, 3)", (0, "yes")),
        ("greater(5, 3), add(#0, 1)", (1, None)),
        ("exp(-8, 0.5)", (1, None)),  # complex in Python: invalid
        ("add(#1, 2)", (1, None)),
        ("table_max(costs, none), table_sum(#0, none)", (0, 130.0)),  # "#n" reuses the row
        ("", (0, "n/a")),
    ],
)
def test_official_eval_program(program: str, expected: tuple) -> None:
    assert P.official_execute(program, TABLE) == expected


def test_lenient_interpreter_takes_the_last_row_too() -> None:
    assert P.execute("table_max(costs, none)", TABLE).value == 70.0


@pytest.mark.parametrize(
    ("text", "gold", "match"),
    [
        ("6.49", 6.0, False),  # the old "exact" said yes
        ("6", 6.0, True),
        ("14.136%", 0.14136, True),
        ("1.413600e-01", 0.14136, True),
        ("0.141363", 0.14136, True),  # rounds to the gold at 5 decimals
        ("0.14137", 0.14136, False),
        ("$5", 5.0, True),
        ("5 million", 5.0, False),
        ("(5)", -5.0, False),
        ("5.", 5.0, True),  # float("5.") is 5.0
        ("5.0.", 5.0, False),
    ],
)
def test_official_bare_answer_rule(text: str, gold: float, match: bool) -> None:
    assert P.official_match(text, gold, None) is match


def test_exe_acc_under_the_official_filter() -> None:
    doc = {"exe_ans": repr(130.0), "table": TABLE, "golds": ["130"], "label": "130"}
    (marked,) = FM.OfficialFilter().apply([[" table_max(costs, none), table_sum(#0, none)\n"]], [doc])
    assert FM.process_results(doc, marked) == {"exe_acc": 1.0}
    assert FM.process_results(doc, [FM.OFFICIAL + "Answer: 130"]) == {"exe_acc": 0.0}
    assert FM.process_results({**doc, "exe_ans": "yes"}, [FM.OFFICIAL + "greater(5, 3)"]) == {"exe_acc": 1.0}


# --- TAT-QA integer rule ---------------------------------------------------------------------


def test_tatqa_official_integer_rule() -> None:
    tq = _tatqa()
    count = {"gold_answers": ["1"], "scale": "", "answer_type": "count"}
    # "The 1": not a number as a whole, so "1" is normalised alone, as the int 1 -> "1", while
    # the gold goes through "%.4f" -> "1.0": the official code scores 0.
    assert tq.score(count, ["The 1"], "") == {"exact_match": 0.0, "f1": 0.0}
    assert tq.score(count, ["The 1"], "", intnorm=True) == {"exact_match": 1.0, "f1": 1.0}
    assert tq.score(count, ["1"], "") == {"exact_match": 1.0, "f1": 1.0}
    assert tq.score(count, [], "") == {"exact_match": 0.0, "f1": 0.0}  # empty prediction
    assert tq.to_number("2018") == 2018 and isinstance(tq.to_number("2018"), int)
    assert isinstance(tq.to_number("2018.0"), float)
    out = tq.process_results({**count, "id": "q"}, ["The 1"])
    assert (out["exact_match"], out["exact_match_intnorm"]) == (0.0, 1.0)


# --- NER: the papers' own F1 definitions -----------------------------------------------------


def test_finben_tags_follow_pixiu_process_text() -> None:
    tokens = "Apple Inc sued Applebee and Apple".split()
    out = "Apple Inc, organization\nApple, organization"
    # Substring search: "Apple" also hits "Applebee"; an occurrence ending at the last word
    # tags nothing (upstream finds no word start after it).
    assert NER.finben_tags(out, tokens) == ["B-ORG", "I-ORG", "O", "B-ORG", "O", "O"]
    assert NER.finben_tags("Apple Inc, company", tokens)[:2] == ["B-company", "I-company"]


def test_fingpt_tags_first_lowercase_occurrence_only() -> None:
    tokens = "apple sued Apple and APPLE".split()
    assert NER.fingpt_tags(tokens, [("Apple", "organization")]) == ["B-ORG", "O", "O", "O", "O"]
    twice = [("Apple", "organization"), ("APPLE", "organization")]
    assert NER.fingpt_tags(tokens, twice) == ["B-ORG", "O", "B-ORG", "O", "O"]


def test_paper_metrics_are_reported_beside_seqeval() -> None:
    tokens = "Bank pays John in Texas today".split()
    tags = ["I-ORG", "O", "I-PER", "O", "I-LOC", "O"]
    doc = {"id": "d", "tokens": tokens, "tags": tags}
    filtered = NER.NerFilter().one("Bank, organization\nJohn, person\nTexas, location", doc)
    out = NER.process_results(doc, [filtered])
    assert NER.f1([out["f1"]]) == 1.0
    assert NER.finben_entity_f1([out["finben_entity_f1"]]) == 1.0
    assert NER.fingpt_entity_f1([out["fingpt_entity_f1"]]) == 1.0
    last = {"id": "e", "tokens": tokens[:5], "tags": tags[:5]}  # Texas is now the last word
    out = NER.process_results(last, [NER.NerFilter().one("Texas, location", last)])
    assert NER.f1([out["f1"]]) == 0.5 and NER.finben_entity_f1([out["finben_entity_f1"]]) == 0.0
