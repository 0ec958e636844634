"""TAT-QA rows: fixture splits and targets, a missing train file, bad records, the hub offline."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from task_modules import task_metadata, task_utils

from finbench.data import raw as D

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"
TQ = task_utils("tatqa")


def test_tatqa_fixture_splits(fixture_data) -> None:
    first, second = TQ.load(**task_metadata("tatqa")), TQ.load(**task_metadata("tatqa"))
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


def test_tatqa_hub_offline_is_a_clear_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))  # nothing cached
    with pytest.raises(
        D.DataError, match=r"next-tat/TAT-QA@b47dc58.*tatqa_dataset_train.json.*FINBENCH_DATA_DIR"
    ):
        TQ.read_hub("next-tat/TAT-QA", "b47dc5894185d2504b3aad7af4af13edd972eb54")
