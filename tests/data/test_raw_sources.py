"""Loaders on real upstream files (skipped when ../shared/data is absent) and on bad input."""

from __future__ import annotations

import collections
import shutil

import pytest

from finbench.data import raw as D
from finbench.data import tasks as T


def _counts(rows):
    return dict(collections.Counter(r["label"] for r in rows))


def test_fpb_real_counts_and_fingpt_split(shared_data):
    import importlib.util

    spec = importlib.util.spec_from_file_location("fpb_utils", T.TASKS_DIR / "fpb" / "utils.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = mod.read_raw(shared_data)["train"]
    assert len(rows) == 4846
    assert _counts(rows) == {"negative": 604, "neutral": 2879, "positive": 1363}
    task = T.load_task("fpb")
    sizes = {s: len(T.split_docs(task, s)) for s in ("train", "dev", "test")}
    assert sizes["test"] == 1212 and sizes["train"] + sizes["dev"] == 3634  # FinGPT's 75/25
    again = T.split_docs(T.load_task("fpb"), "test")
    assert [d["id"] for d in again] == [d["id"] for d in T.split_docs(task, "test")]


def test_tfns_real_train_labels_and_missing_validation_file(shared_data, tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("tfns_utils", T.TASKS_DIR / "tfns" / "utils.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    path = shared_data / "twitter_financial_news_sentiment" / "sent_train.csv"
    rows = mod._rows(path, D.read_csv(path, required=("text", "label")), "t")
    assert len(rows) == 9543
    # 0 Bearish, 1 Bullish, 2 Neutral (not FPB's map)
    assert _counts(rows) == {"negative": 1442, "positive": 1923, "neutral": 6178}
    if not (shared_data / "twitter_financial_news_sentiment" / "sent_valid.csv").exists():
        with pytest.raises(D.DataError, match="sent_valid.csv"):
            T.load_task("tfns")


def test_fiqa_and_headline_real(shared_data):
    fiqa = T.load_task("fiqa_sa")
    rows = [d for s in ("train", "dev", "test") for d in T.split_docs(fiqa, s)]
    assert len(rows) == 498 and len({r["text"] for r in rows}) == 436
    for r in rows:  # FinGPT thresholds
        assert r["label"] == (
            "negative" if r["score"] < -0.1 else "neutral" if r["score"] < 0.1 else "positive"
        )
    test_texts = {r["text"] for r in T.split_docs(fiqa, "test")}
    assert not test_texts & {r["text"] for r in T.split_docs(fiqa, "train")}
    hl = T.load_task("headline")
    docs = {s: T.split_docs(hl, s) for s in ("train", "dev", "test")}
    assert sum(len(v) for v in docs.values()) == 10570 * 7
    up = [d for v in docs.values() for d in v if d["group"] == "price_up"]
    assert sum(d["label"] == "yes" for d in up) == 4412
    const = [d for v in docs.values() for d in v if d["group"] == "price_constant"]
    assert sum(d["label"] == "yes" for d in const) == 444
    assert not {d["text"] for d in docs["test"]} & {d["text"] for d in docs["train"]}


def _copy_fixtures(tmp_path, fixture_data):
    dest = tmp_path / "data"
    shutil.copytree(fixture_data, dest)
    return dest


def test_missing_file_names_the_file(fixture_data, tmp_path, monkeypatch):
    dest = _copy_fixtures(tmp_path, fixture_data)
    (dest / "financial_phrasebank" / "Sentences_50Agree.txt").unlink()
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(dest))
    with pytest.raises(D.DataError, match=r"Sentences_50Agree\.txt.*missing"):
        T.load_task("fpb")


def test_malformed_row_names_file_and_line(fixture_data, tmp_path, monkeypatch):
    dest = _copy_fixtures(tmp_path, fixture_data)
    path = dest / "financial_phrasebank" / "Sentences_50Agree.txt"
    path.write_text(path.read_text() + "A sentence without a label\n")
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(dest))
    with pytest.raises(D.DataError, match=r"Sentences_50Agree\.txt:49: expected 'sentence@label'"):
        T.load_task("fpb")
    csv_path = dest / "twitter_financial_news_sentiment" / "sent_train.csv"
    csv_path.write_text(csv_path.read_text() + "some tweet,7\n")
    with pytest.raises(D.DataError, match=r"sent_train\.csv: row 41: label '7'"):
        T.load_task("tfns")


def test_unknown_task_suggests_names():
    with pytest.raises(T.UnknownTaskError, match="Did you mean fpb"):
        T.get_info("fbp")


def test_seeded_split_matches_datasets_train_test_split():
    import datasets

    rows = [{"i": i} for i in range(101)]
    rest, held = D.seeded_split(rows, 0.25, seed=42)
    ref = datasets.Dataset.from_list(rows).train_test_split(test_size=0.25, seed=42)
    assert [r["i"] for r in held] == ref["test"]["i"]
    assert [r["i"] for r in rest] == ref["train"]["i"]
