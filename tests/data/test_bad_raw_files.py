"""Raw task files that are empty, hold golds no model can match or a byte-order mark: a DataError
naming the file and the record, or the rows read as if the mark were not there."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from input_files import one_line_error

from finbench import cli
from finbench.data import raw as D

FIXTURE_DATA = Path(__file__).resolve().parents[1] / "fixtures" / "data"


EMPTY_FILES = {
    "fpb": "financial_phrasebank/Sentences_50Agree.txt",
    "fiqa_sa": "fiqa_sa/task1_headline_ABSA_train.json",
    "tfns": "twitter_financial_news_sentiment/sent_valid.csv",
    "twitter_topic": "twitter_financial_news_topic/topic_valid.csv",
    "headline": "headline/gold-dataset-sinha-khandait.csv",
    "ner": "finner_sec/FIN5.txt",
    "finqa": "finqa/test.json",
    "convfinqa": "convfinqa/dev.json",
}


def _header(path):
    return path.read_text().splitlines(keepends=True)[0]


@pytest.mark.parametrize(
    "task,kind",
    [(t, k) for t in sorted(EMPTY_FILES) for k in ("empty", "no records")],
)
def test_a_raw_file_without_records_is_named(task, kind, data_copy):
    from finbench.data import tasks as T
    path = data_copy / EMPTY_FILES[task]
    if kind == "empty":
        content = ""
    elif path.suffix == ".json":
        content = "{}" if task == "fiqa_sa" else "[]"
    elif path.suffix == ".csv":
        content = _header(path)  # the header line only
    else:  # FPB: blank lines; FIN5: a document marker and nothing else
        content = "-DOCSTART- -X- O O\n\n" if task == "ner" else "\n\n"
    path.write_text(content)
    with pytest.raises(D.DataError) as err:
        T.load_task(task)
    assert str(path) in str(err.value)


def test_empty_test_split_is_refused_before_lm_eval():
    def no_rows(*_, **__):
        return {"train": [{"id": "a", "text": "x", "label": "positive"}]}

    with pytest.raises(D.DataError, match="test split is empty"):
        D.build_dataset(
            "demo",
            read_raw=no_rows,
            read_hub=no_rows,
            make_splits=lambda up: {"train": up["train"], "dev": [], "test": []},
            labels=("positive",),
        )


def _set_gold(path, task, value):
    import json

    records = json.loads(path.read_text())
    if task == "finqa":
        records[1]["qa"]["exe_ans"] = value
    else:
        records[1]["annotation"]["exe_ans_list"][0] = value
    path.write_text(json.dumps(records))  # json writes Infinity / NaN as JSON5-style literals
    return records[1]["id"]


@pytest.mark.parametrize("task", ["finqa", "convfinqa"])
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), "abc", "1e999", 10**400, None, [1]])
def test_a_gold_no_model_can_match_is_named_with_its_record(task, value, data_copy):
    from finbench.data import tasks as T
    path = data_copy / task / "train.json"
    rid = _set_gold(path, task, value)
    with pytest.raises(D.DataError) as err:
        T.load_task(task)
    message = str(err.value)
    assert str(path) in message and rid in message and "exe_ans" in message


def test_numeric_string_and_yes_no_golds_are_kept(data_copy):
    import importlib.util

    from finbench.data import tasks as T
    for value in ("12.5", "yes"):
        _set_gold(data_copy / "finqa" / "train.json", "finqa", value)
        spec = importlib.util.spec_from_file_location("finqa_utils", T.TASKS_DIR / "finqa" / "utils.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        rows = mod.read_raw(data_copy)["train"]
        assert value in rows[1]["golds"]


def test_convfinqa_with_one_conversation_names_the_file(data_copy):
    import json

    from finbench.data import tasks as T
    path = data_copy / "convfinqa" / "train.json"
    path.write_text(json.dumps(json.loads(path.read_text())[:1]))
    with pytest.raises(D.DataError, match=rf"{path}: only one conversation"):
        T.load_task("convfinqa")


def test_a_byte_order_mark_is_stripped(data_copy):
    from eval_plugins import ner as NER
    from finbench.data import tasks as T
    fin5 = data_copy / "finner_sec" / "FIN5.txt"
    plain = NER.read_conll(fin5)
    fin5.write_bytes(b"\xef\xbb\xbf" + fin5.read_bytes())
    assert NER.read_conll(fin5) == plain  # not a sentence starting with '\ufeff-DOCSTART-'
    for rel in (EMPTY_FILES["tfns"], EMPTY_FILES["fpb"], EMPTY_FILES["finqa"]):
        path = data_copy / rel
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    for task in ("ner", "tfns", "fpb", "finqa"):
        docs = T.split_docs(T.load_task(task), "test")
        assert docs and not any(str(d["text"]).startswith("\ufeff") for d in docs)


PLACEHOLDER = "__gold__"


def _set_gold_literal(path: Path, set_placeholder, literal: str) -> None:
    """Rewrite a JSON data file with one gold written as the JSON text `literal` (1e400, NaN)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    set_placeholder(data)
    path.write_text(json.dumps(data).replace(f'"{PLACEHOLDER}"', literal), encoding="utf-8")


def _first_arithmetic(data: list) -> None:
    q = next(q for ctx in data for q in ctx["questions"] if q["answer_type"] == "arithmetic")
    q["answer"] = PLACEHOLDER


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "1e400", "NaN", '"1e400"', "null"])
def test_tatqa_non_finite_gold_is_a_one_line_data_error(data_copy, tmp_path, capsys, literal) -> None:
    _set_gold_literal(data_copy / "tatqa/tatqa_dataset_train.json", _first_arithmetic, literal)
    assert cli.main(["data", "tatqa"]) == 2
    err = one_line_error(capsys, tmp_path)
    assert "tatqa_dataset_train.json" in err and "uid" in err and "answer" in err


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "1e400", "null", '"abc"', '""'])
@pytest.mark.parametrize("where", ["qa", "exe_ans_list"])
def test_convfinqa_checks_its_gold_as_finqa_does(data_copy, tmp_path, capsys, literal, where) -> None:
    def put(data: list) -> None:
        if where == "qa":
            data[0]["qa"]["exe_ans"] = PLACEHOLDER
        else:
            data[0]["annotation"]["exe_ans_list"][0] = PLACEHOLDER

    _set_gold_literal(data_copy / "convfinqa/train.json", put, literal)
    assert cli.main(["data", "convfinqa"]) == 2
    err = one_line_error(capsys, tmp_path)
    assert "train.json" in err and "exe_ans" in err
    # FinQA refuses the same value with the same check (finbench.data.raw.finite_gold)
    shutil.copy(FIXTURE_DATA / "convfinqa/train.json", data_copy / "convfinqa/train.json")
    _set_gold_literal(data_copy / "finqa/train.json", lambda d: d[0]["qa"].__setitem__("exe_ans", PLACEHOLDER), literal)
    assert cli.main(["data", "finqa"]) == 2
    assert "exe_ans" in one_line_error(capsys, tmp_path)
