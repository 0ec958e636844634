"""Issue 11 evaluation: TAT-QA (official EM / numeracy F1), FinanceBench open book, FinBen's strict
exact match for FinQA/ConvFinQA, and the published peer numbers file."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import pytest

from eval_plugins import finben_em as FE
from finbench.data import raw as D

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "data"
SHARED = ROOT.parent / "shared" / "data"


def _utils(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_utils_i11", ROOT / "tasks" / name / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TQ = _utils("tatqa")
FB = _utils("financebench")


def _meta(name: str) -> dict:
    from finbench.data.tasks import discover

    return dict(discover(ROOT / "tasks")[name].config["metadata"])


# --- task registry and groups ------------------------------------------------------------------


def test_new_tasks_are_discovered_and_grouped() -> None:
    from finbench.data.tasks import discover
    from finbench.eval.lmeval_hook import group_configs

    tasks = discover(ROOT / "tasks")
    assert tasks["tatqa"].kind == "numeric" and tasks["tatqa"].output_type == "generate_until"
    assert tasks["financebench_open"].kind == "knowledge"
    assert tasks["tatqa"].source["hub"] == {
        "path": "next-tat/TAT-QA",
        "revision": "b47dc5894185d2504b3aad7af4af13edd972eb54",
    }
    groups = group_configs(ROOT / "tasks")
    assert {"finqa", "convfinqa", "tatqa"} <= set(groups["finbench_numeric"]["task"])
    assert {"financebench", "financebench_open"} <= set(groups["finbench_knowledge"]["task"])
    assert "tatqa" in groups["finbench"]["task"]


# --- TAT-QA data -----------------------------------------------------------------------------


def test_tatqa_fixture_splits(fixture_data) -> None:
    first, second = TQ.load(**_meta("tatqa")), TQ.load(**_meta("tatqa"))
    assert {s: len(first[s]) for s in D.SPLITS} == {"train": 12, "dev": 6, "test": 13}
    for split in D.SPLITS:
        assert first[split].to_list() == second[split].to_list()
    row = next(r for r in first["test"] if r["id"] == "test-0-q1")
    assert row["target"] == "$ 300 thousand" and row["gold_answers"] == ["$ 300"]
    assert row["text"].startswith("|  | 2019 | 2018 |\n| Revenue | $ 300 | $ 240 |")
    assert "Delta Foods makes frozen dumplings." in row["text"]
    targets = {r["id"]: r["target"] for r in first["test"]}
    assert targets["test-0-q2"] == "-5 thousand"  # arithmetic, scale thousand
    assert targets["test-0-q3"] == "25%"  # arithmetic, scale percent
    assert targets["test-0-q4"] == "Revenue; Marketing"  # multi-span
    assert targets["test-0-q5"] == "2"  # count


def test_tatqa_without_train_file_scores_dev_and_test(tmp_path, monkeypatch, caplog) -> None:
    (tmp_path / "tatqa").mkdir()
    for name in ("tatqa_dataset_dev.json", "tatqa_dataset_test_gold.json"):
        (tmp_path / "tatqa" / name).write_text((FIXTURES / "tatqa" / name).read_text())
    with caplog.at_level(logging.WARNING):
        splits = TQ.read_raw(tmp_path)
    assert splits["train"] == [] and len(splits["dev"]) == 6 and len(splits["test"]) == 13
    assert "tatqa_dataset_train.json: absent" in caplog.text


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda c: c["questions"][0].update(answer_type="table-lookup"),
            r"answer_type 'table-lookup' is not one",
        ),
        (lambda c: c["questions"][0].update(scale="trillion"), r"scale 'trillion' is not one"),
        (lambda c: c["questions"][0].pop("answer"), r"missing key 'answer'"),
        (lambda c: c["questions"][0].update(answer="x"), r"span answer must be a non-empty list"),
        (lambda c: c.update(table=[["a"]]), r"'table' must be an object"),
    ],
)
def test_tatqa_bad_records_name_file_and_key(tmp_path, mutate, message) -> None:
    records = json.loads((FIXTURES / "tatqa" / "tatqa_dataset_dev.json").read_text())
    mutate(records[0])
    (tmp_path / "tatqa").mkdir()
    for name in TQ.RAW_FILES.values():
        (tmp_path / "tatqa" / name).write_text(json.dumps(records))
    with pytest.raises(D.DataError, match=message) as err:
        TQ.read_raw(tmp_path)
    assert "tatqa_dataset_train.json[0]" in str(err.value)


def test_tatqa_missing_eval_file_is_named(tmp_path) -> None:
    (tmp_path / "tatqa").mkdir()
    (tmp_path / "tatqa" / "tatqa_dataset_dev.json").write_text("[]")
    with pytest.raises(D.DataError, match=r"tatqa_dataset_test_gold.json: missing"):
        TQ.read_raw(tmp_path)


# --- TAT-QA metric (the official script's rules) ---------------------------------------------


def _doc(answer, kind: str, scale: str = "") -> dict:
    q = {"uid": "u", "question": "q", "answer": answer, "answer_type": kind, "scale": scale}
    return TQ.row_from_question(q, "ctx", "test")


@pytest.mark.parametrize(
    ("answer", "kind", "scale", "pred", "em", "f1"),
    [
        # a span with a scale: the number times the scale must match; the unit word alone is not enough
        (["$1,496.5"], "span", "million", "1,496.5 million", 1.0, 1.0),
        (["$1,496.5"], "span", "million", "$1,496.5", 0.0, 0.0),
        # arithmetic: rounded to 2 decimals, scale-aware; F1 = EM
        (-12.6, "arithmetic", "million", "-12.60 million", 1.0, 1.0),
        (-12.6, "arithmetic", "million", "-12.6", 0.0, 0.0),
        (-12.6, "arithmetic", "million", "-12.7 million", 0.0, 0.0),
        # percent: "12.5%", "12.5 percent" and a bare fraction 0.125 (add_percent_pred) all match
        (12.5, "arithmetic", "percent", "12.5%", 1.0, 1.0),
        (12.5, "arithmetic", "percent", "12.5 percent", 1.0, 1.0),
        (12.5, "arithmetic", "percent", "0.125", 1.0, 1.0),
        ("4", "count", "", "4", 1.0, 1.0),
        # multi-span: one sorted string, bag-of-tokens F1 (a set: "type" counts once):
        # gold {costplus, fixedprice, timeandmaterial, type}, pred {costplus, fixedprice, type}
        # -> P 1, R 3/4, F1 0.857 -> 0.86 (rounded to 2 decimals, as upstream)
        (
            ["fixed-price type", "cost-plus type", "time-and-material type"],
            "multi-span",
            "",
            "fixed-price type; cost-plus type",
            0.0,
            0.86,
        ),
        (
            ["fixed-price type", "cost-plus type"],
            "multi-span",
            "",
            "cost-plus type; fixed-price type",
            1.0,
            1.0,
        ),
        # articles and punctuation are ignored in spans
        (["the modified retrospective method"], "span", "", "Modified retrospective method.", 1.0, 1.0),
    ],
)
def test_tatqa_official_em_and_f1(answer, kind, scale, pred, em, f1) -> None:
    out = TQ.process_results(_doc(answer, kind, scale), [TQ.read_answer(" " + pred, strict=False)])
    assert (out["exact_match"], out["f1"], out["score"]) == (em, f1, f1)
    assert out["missing_rate"] == 0.0


def test_tatqa_tolerant_match_and_missing() -> None:
    doc = _doc(-12.6, "arithmetic", "million")
    tolerant = TQ.process_results(doc, ["-12.65 million"])
    assert tolerant["exact_match"] == 0.0 and tolerant["tolerant_match"] == 1.0  # within 1%
    assert TQ.process_results(doc, ["-12.6"])["tolerant_match"] == 0.0  # scale still matters
    span = TQ.process_results(_doc(["Acme"], "span"), ["Acme"])
    assert span["tolerant_match"] == span["exact_match"] == 1.0
    missing = TQ.process_results(doc, [TQ.AnswerFilter(strict=True).one("12\nmore text")])
    assert missing["missing_rate"] == 1.0 and missing["score"] == 0.0
    assert TQ.AnswerFilter(strict=False).one("\nAnswer: -12.6 million\n") == "-12.6 million"


@pytest.mark.skipif(not (SHARED / "tatqa").is_dir(), reason="../shared/data/tatqa absent")
def test_real_tatqa_golds_score_as_correct(caplog) -> None:
    # The real dev and test-with-gold files: every training target, read back by both filters,
    # must get EM = F1 = 1 from the official rules (3,331 questions of every type and scale).
    with caplog.at_level(logging.WARNING):
        splits = TQ.read_raw(SHARED)
    assert (len(splits["dev"]), len(splits["test"])) == (1668, 1663)  # counts in SOURCES.md
    for row in splits["dev"] + splits["test"]:
        for strict in (False, True):
            out = TQ.process_results(row, [TQ.AnswerFilter(strict=strict).one(" " + row["target"])])
            assert (out["exact_match"], out["f1"], out["tolerant_match"]) == (1.0, 1.0, 1.0), row["id"]


# --- FinanceBench open book ------------------------------------------------------------------


def test_financebench_open_prompt_has_evidence_closed_does_not(fixture_data, task_manager) -> None:
    loaded = task_manager.load(["financebench", "financebench_open"])["tasks"]
    closed, opened = loaded["financebench"], loaded["financebench_open"]
    doc_c, doc_o = list(closed.test_docs())[0], list(opened.test_docs())[0]
    assert doc_c["id"] == doc_o["id"] and doc_o["evidence"]
    assert doc_o["evidence"] in opened.doc_to_text(doc_o)
    assert doc_c["evidence"] not in closed.doc_to_text(doc_c)
    assert opened.doc_to_text(doc_o).endswith(
        f"Question: {doc_o['question']}\nAnswer briefly, on one line, from the excerpt.\n"
    )
    assert [
        len(list(getattr(t, f"{s}_docs")()))
        for t in (closed, opened)
        for s in ("training", "validation", "test")
    ] == [2, 1, 7] * 2  # 10 fixture rows: 70% test, the rest 2:1


def test_financebench_open_requires_evidence() -> None:
    import datasets

    rows = datasets.Dataset.from_list(
        [{"id": "fb1", "evidence": "Revenue was $5."}, {"id": "fb2", "evidence": " "}]
    )
    with pytest.raises(D.DataError, match=r"question 'fb2' has no evidence text"):
        FB.require_evidence(rows)


# --- FinBen strict exact match -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "golds", "em"),
    [
        (" 3.8\n", ["380", "3.8"], 1.0),
        ("380", ["380", "3.8"], 1.0),
        ("3.80", ["380", "3.8"], 0.0),  # numerically equal, but not the gold string
        ("The answer is 3.8", ["3.8"], 0.0),
        ("", ["3.8"], 0.0),
        (None, ["3.8"], 0.0),
    ],
)
def test_finben_exact_match(response, golds, em) -> None:
    assert FE.exact_match(response, golds) == em


def test_finben_filter_routes_raw_text(fixture_data, task_manager) -> None:
    from lm_eval.api.instance import Instance

    task = task_manager.load(["finqa"])["tasks"]["finqa"]
    doc = list(task.test_docs())[0]
    outputs = [" " + doc["target"], " " + doc["target"] + " (rounded)"]
    instances = []
    for i, text in enumerate(outputs):
        inst = Instance(
            request_type="generate_until", doc=doc, arguments=("", {}), idx=0, metadata=("finqa", i, 1)
        )
        inst.resps = [text]
        instances.append(inst)
    results = {}
    for ensemble in task._filters:
        ensemble.apply(instances)
        results[ensemble.name] = [
            task.process_results(doc, [inst.filtered_resps[ensemble.name]]) for inst in instances
        ]
    assert [r["finben_em"] for r in results["finben"]] == [1.0, 0.0]
    assert all(set(r) == {"finben_em"} for r in results["finben"])
    # our tolerant reading still scores the second answer (the first number is right)
    assert [r["score"] for r in results["tolerant"]] == [1.0, 1.0]
    assert "finben_em" not in results["tolerant"][0]


# --- gold answers score 1.0 through the configured tasks; a real lm-eval run -----------------


@pytest.mark.parametrize("name", ["tatqa", "financebench_open"])
def test_configured_new_task_scores_gold_as_correct(name: str, fixture_data, task_manager) -> None:
    from lm_eval.api.instance import Instance

    task = task_manager.load([name])["tasks"][name]
    docs = list(task.test_docs())
    instances = []
    for i, doc in enumerate(docs):
        inst = Instance(
            request_type="generate_until", doc=doc, arguments=("", {}), idx=0, metadata=(name, i, 1)
        )
        inst.resps = [" " + str(task.doc_to_target(doc))]
        instances.append(inst)
    for ensemble in task._filters:
        ensemble.apply(instances)
        scores = [task.process_results(i.doc, [i.filtered_resps[ensemble.name]]) for i in instances]
        assert task.aggregation()["score"]([s["score"] for s in scores]) == 1.0, (name, ensemble.name)
        assert task.aggregation()["missing_rate"]([s["missing_rate"] for s in scores]) == 0.0


@pytest.mark.slow
def test_lm_eval_runs_tatqa_financebench_open_and_finben_em(fixture_data) -> None:
    import lm_eval
    from lm_eval.tasks import TaskManager

    from finbench.train.models import tiny_model

    manager = TaskManager(include_path=str(ROOT / "tasks"), include_defaults=False)
    out = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={tiny_model()},device=cpu",
        tasks=["tatqa", "financebench_open", "convfinqa"],
        task_manager=manager,
        limit=3,
        log_samples=True,
    )
    res = out["results"]
    for filt in ("tolerant", "strict"):
        for metric in ("score", "exact_match", "f1", "tolerant_match", "missing_rate"):
            assert 0.0 <= res["tatqa"][f"{metric},{filt}"] <= 1.0, (metric, filt)
        for metric in ("score", "numeric_match", "text_match", "missing_rate"):
            assert 0.0 <= res["financebench_open"][f"{metric},{filt}"] <= 1.0, (metric, filt)
    assert 0.0 <= res["convfinqa"]["finben_em,finben"] <= 1.0
    assert len(out["samples"]["tatqa"]) == 3 * 2  # 3 docs x (tolerant, strict)
    sample = out["samples"]["financebench_open"][0]
    assert sample["doc"]["evidence"] and sample["doc"]["evidence"] in str(sample["arguments"])


# --- published peer numbers --------------------------------------------------------------------


def test_peers_file_rows_cite_sources_and_like_for_like_splits_are_ours(fixture_data) -> None:
    from finbench.data.tasks import discover
    from finbench.report import build as R
    from finbench.report import peers as P

    rows = P.load()
    assert R.REFERENCES == rows  # the report reads its table from the data file
    assert rows[0] == {
        "task": "fpb",
        "model": "BloombergGPT-50B",
        "value": 0.51,
        "metric": "weighted F1",
        "setting": "5-shot",
        "split_match": False,
        "source": "Wu et al. 2023 (BloombergGPT), arXiv:2303.17564",
    }
    tasks = discover(ROOT / "tasks")
    sizes = {
        ("fpb", "test"): 1212,
        ("tfns", "test"): 2388,
        ("finqa", "test"): 1147,
        ("convfinqa", "test"): 1490,
        ("fiqa_sa_fingpt", "test"): 275,  # FinGPT's FiQA-SA test split (tests/eval/test_fingpt_variants.py)
    }
    # FinBen's rows (tasks/finben_*) are checked in tests/eval/test_finben_suite.py
    matched = [r for r in rows if r["split_match"] and not r["task"].startswith("finben_")]
    assert {(r["task"], r["split"]) for r in matched} == set(sizes)
    for r in matched:
        assert r["n"] == sizes[(r["task"], r["split"])]
        assert r["task"] in tasks and ("@" in r["source"] or "arXiv:" in r["source"])
        metric, filt = r["ours"].split(",")
        names = [m["metric"] for m in tasks[r["task"]].config["metric_list"]]
        assert metric in names, (r["task"], metric, names)
        assert filt in [f["name"] for f in tasks[r["task"]].config["filter_list"]]


def test_peers_file_errors_name_the_row(tmp_path) -> None:
    from finbench.report import peers as P
    bad = tmp_path / "peers.yaml"
    bad.write_text(
        "peers:\n  - {task: fpb, model: X, value: 88.2, metric: F1, setting: s, source: y, split_match: false}\n"
    )
    with pytest.raises(P.PeersError, match=r"peers\[0\]: 'value' must be a number on the 0-1 scale"):
        P.load(bad)
    bad.write_text(
        "peers:\n  - {task: fpb, model: X, value: 0.8, metric: F1, setting: s, source: y, split_match: true}\n"
    )
    with pytest.raises(
        P.PeersError, match=r"peers\[0\] \(fpb/X\): missing key\(s\) \['split', 'n', 'ours'\]"
    ):
        P.load(bad)


# --- the paper55 sweep scores knowledge and general ability ------------------------------------


def test_paper55_scores_knowledge_tatqa_and_general_on_test() -> None:
    from finbench import sweep as SW
    from finbench.eval.lmeval_hook import GENERAL_TASKS

    sw = SW.load_sweep("paper55")
    assert {"financebench", "financebench_open", "tatqa"} <= set(sw.eval["tasks"])
    assert sw.eval["general"] == GENERAL_TASKS and sw.eval["splits"] == ["dev", "test"]
    # built-in general tasks have no dev split: scored on test only
    assert SW.eval_tasks(sw.eval, "dev") == sw.eval["tasks"]
    assert SW.eval_tasks(sw.eval, "test") == sw.eval["tasks"] + GENERAL_TASKS


def test_tatqa_hub_offline_is_a_clear_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))  # nothing cached
    with pytest.raises(
        D.DataError, match=r"next-tat/TAT-QA@b47dc58.*tatqa_dataset_train.json.*FINBENCH_DATA_DIR"
    ):
        TQ.read_hub("next-tat/TAT-QA", "b47dc5894185d2504b3aad7af4af13edd972eb54")
