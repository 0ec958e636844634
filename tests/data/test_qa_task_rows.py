"""Rows of the NER, FinQA, ConvFinQA and FinanceBench tasks: deterministic splits, gold programs,
conversation history, bad records, real upstream samples, and training examples."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from task_modules import load_rows, task_utils

from eval_plugins import finqa_program as P
from eval_plugins import numeric as N
from finbench.data import raw as D

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


TASKS = ("ner", "ner_cls", "finqa", "convfinqa", "financebench")


@pytest.mark.parametrize("name", TASKS)
def test_fixture_splits_are_deterministic_and_disjoint(name: str, fixture_data) -> None:
    first, second = load_rows(name), load_rows(name)
    for split in D.SPLITS:
        assert len(first[split]) > 0, split
        assert first[split].to_list() == second[split].to_list()
    ids = [i for split in D.SPLITS for i in first[split]["id"]]
    assert len(ids) == len(set(ids))


def test_gold_programs_checked(fixture_data, caplog) -> None:
    finqa = load_rows("finqa")
    # every fixture gold program reproduces its answer (the flagging path: bad_gold_program below)
    assert all(finqa[split]["program_ok"] for split in ("train", "dev", "test"))
    assert all(load_rows("convfinqa")["train"]["program_ok"])
    dev = {d["id"]: d for d in finqa["dev"]}
    quirk = dev["BOLT/2019/page_15.pdf-5"]  # answer "1250" vs exe_ans 12.5, like FinQA's "380"/3.8
    assert quirk["golds"] == ["1250", "12.5"] and quirk["target"] == "12.5" and quirk["program_ok"]


def test_convfinqa_history_has_earlier_gold_answers(fixture_data) -> None:
    turns = [d for d in load_rows("convfinqa")["test"] if d["conversation"].startswith("Single_ECHO")]
    turns.sort(key=lambda d: d["turn"])  # the test split comes in representative (shuffled) order
    assert [d["turn"] for d in turns] == [0, 1, 2]
    assert turns[0]["history"] == ""
    assert turns[2]["history"] == (
        "Question: what was net revenue in 2018?\nAnswer: 1000\nQuestion: and in 2017?\nAnswer: 800\n"
    )
    assert "| Net revenue | $1,200 | $1,000 | $800 |" in turns[2]["text"]


def test_ner_cls_fixture_asks_about_every_entity(fixture_data) -> None:
    ner, ner_cls = load_rows("ner"), load_rows("ner_cls")
    for split in D.SPLITS:
        expected = sorted(
            (doc["id"], line.rsplit(", ", 1)[0]) for doc in ner[split] for line in doc["label"].splitlines()
        )
        assert sorted((d["sentence"], d["entity"]) for d in ner_cls[split]) == expected


def _write(tmp_path: Path, folder: str, name: str, content) -> Path:
    (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    path = tmp_path / folder / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def _finqa_record(**overrides) -> dict:
    rec = json.loads((FIXTURES / "finqa" / "train.json").read_text())[0]
    rec.update(overrides)
    return rec


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (_finqa_record(table="not a table"), "expected a table as a list of rows"),
        (_finqa_record(qa={"question": "q"}), "missing key 'program'"),
        ({k: v for k, v in _finqa_record().items() if k != "pre_text"}, "missing key 'pre_text'"),
        (_finqa_record(id=None), "missing key 'id'"),
    ],
)
def test_finqa_bad_records_raise_data_error_naming_file(tmp_path, record, message) -> None:
    for split in ("train", "dev", "test"):
        _write(tmp_path, "finqa", f"{split}.json", [record])
    with pytest.raises(D.DataError, match=message) as err:
        task_utils("finqa").read_raw(tmp_path)
    assert "train.json[0]" in str(err.value)


def test_finqa_missing_file_is_named(tmp_path) -> None:
    _write(tmp_path, "finqa", "train.json", [])
    with pytest.raises(D.DataError, match=r"dev.json: missing"):
        task_utils("finqa").read_raw(tmp_path)


def test_finqa_bad_gold_program_is_flagged_not_fatal(tmp_path, caplog) -> None:
    rec = _finqa_record()
    rec["qa"] = dict(rec["qa"], program="frobnicate(1, 2)")
    for split in ("train", "dev", "test"):
        _write(tmp_path, "finqa", f"{split}.json", [rec])
    rows = task_utils("finqa").read_raw(tmp_path)
    assert rows["train"][0]["program_ok"] is False
    assert "unknown operation 'frobnicate'" in caplog.text


def test_convfinqa_mismatched_annotation(tmp_path) -> None:
    conv = json.loads((FIXTURES / "convfinqa" / "train.json").read_text())[0]
    conv["annotation"]["exe_ans_list"] = conv["annotation"]["exe_ans_list"][:-1]
    _write(tmp_path, "convfinqa", "train.json", [conv])
    _write(tmp_path, "convfinqa", "dev.json", [])
    with pytest.raises(D.DataError, match=r"train.json\[0\].*differ in length"):
        task_utils("convfinqa").read_raw(tmp_path)


def test_financebench_bad_line(tmp_path) -> None:
    _write(
        tmp_path,
        "financebench",
        "financebench_open_source.jsonl",
        '{"financebench_id": "x", "question": "q"}\n',
    )
    with pytest.raises(D.DataError, match=r"jsonl:1: missing or empty key 'answer'"):
        task_utils("financebench").read_raw(tmp_path)


needs_finqa = pytest.mark.skipif(not (SHARED / "finqa").is_dir(), reason="../shared/data/finqa absent")


needs_conv = pytest.mark.skipif(not (SHARED / "convfinqa").is_dir(), reason="../shared/data/convfinqa absent")


@needs_finqa
def test_real_finqa_record_loads_and_program_reproduces_gold(tmp_path) -> None:
    record = json.loads((SHARED / "finqa" / "finqa_example_ADI_2009_page_49.json").read_text())
    # The loader reads upstream split files; the sample is one record, so lay it out that way.
    for split in ("train", "dev", "test"):
        _write(tmp_path, "finqa", f"{split}.json", [record])
    row = task_utils("finqa").read_raw(tmp_path)["test"][0]
    assert row["program_ok"] is True
    assert row["golds"] == ["380", "3.8"]  # the upstream quirk: answer "380", exe_ans 3.8
    value = P.execute(row["program"], row["table"]).value
    assert value == pytest.approx(3.8)
    assert N.match(N.Number(value, 1), ["380"], tolerant=True, scale=True)  # only scale-aware
    assert not N.match(N.Number(value, 1), ["380"], tolerant=True)  # model scoring: 3 != 300
    assert N.match(N.Number(value, 1), row["golds"], tolerant=False)  # exe_ans is a gold form
    assert (
        "| Fair value of forward exchange contracts asset (liability) | $6,427 | $(23,158) |" in row["text"]
    )


@needs_conv
def test_real_convfinqa_conversations_reproduce_gold(tmp_path) -> None:
    src = SHARED / "convfinqa" / "sample_train_2conversations.json"
    _write(tmp_path, "convfinqa", "train.json", src.read_text())
    _write(tmp_path, "convfinqa", "dev.json", src.read_text())
    rows = task_utils("convfinqa").read_raw(tmp_path)["train"]
    assert len(rows) == 4 + 5
    assert all(r["program_ok"] for r in rows)
    for r in rows:
        value = P.execute(r["program"], r["table"]).value
        assert math.isclose(value, float(r["label"]), rel_tol=1e-3)
    assert rows[3]["label"] == "0.14136"


@pytest.mark.parametrize("name", TASKS)
def test_training_example_is_the_eval_prompt_plus_target(name: str, fixture_data) -> None:
    from finbench.data import tasks as T
    task = T.load_task(name)
    doc = T.split_docs(task, "train")[0]
    user, assistant = T.training_messages(task, doc)
    assert user == {"role": "user", "content": task.doc_to_text(doc)}
    prefix = task.doc_to_prefix(doc)
    assert assistant["content"] == prefix + task.config.target_delimiter + str(task.doc_to_target(doc))
