"""`--limit N` slices represent the split: `representative_order` on label-grouped and real files."""

from __future__ import annotations

import pytest

from finbench.data import raw as D


def _grouped_rows(n_neg=45, n_pos=60, n_neu=195):
    labels = ["negative"] * n_neg + ["positive"] * n_pos + ["neutral"] * n_neu
    return [{"id": f"r{i:03d}", "text": f"t{i}", "label": lab} for i, lab in enumerate(labels)]


def test_representative_order_keeps_the_set_and_spreads_labels():
    import collections

    rows = _grouped_rows()
    ordered = D.representative_order(rows)
    assert sorted(r["id"] for r in ordered) == sorted(r["id"] for r in rows)
    assert [r["id"] for r in D.representative_order(rows)] == [r["id"] for r in ordered]
    assert {r["label"] for r in ordered[:3]} == {"negative", "positive", "neutral"}
    for n in (10, 60, 150):
        counts = collections.Counter(r["label"] for r in ordered[:n])
        for label, total in (("negative", 45), ("positive", 60), ("neutral", 195)):
            assert abs(counts[label] - n * total / 300) <= 1.5, (n, counts)


def _write_grouped_tfns(path):
    import csv

    code = {"negative": 0, "positive": 1, "neutral": 2}  # the dataset's own map
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for r in _grouped_rows():
            w.writerow([f"$TICK tweet number {r['id']}", code[r["label"]]])


def _cli_labels(capsys, *args):
    import json

    from finbench import cli
    assert cli.main(["data", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_limit_slice_of_a_label_grouped_file_shows_every_label(data_copy, capsys):
    path = data_copy / "twitter_financial_news_sentiment" / "sent_valid.csv"
    _write_grouped_tfns(path)
    rows = _cli_labels(capsys, "tfns", "--split", "test", "--limit", "60")
    counts = {lab: sum(r["label"] == lab for r in rows) for lab in ("negative", "positive", "neutral")}
    assert counts == {"negative": 9, "positive": 12, "neutral": 39}
    full = _cli_labels(capsys, "tfns", "--split", "test")
    assert len(full) == 300 and len({r["text"] for r in full}) == 300  # the whole set, once each


def test_real_tfns_limit_60_shows_all_three_labels(shared_data, capsys):
    if not (shared_data / "twitter_financial_news_sentiment" / "sent_valid.csv").is_file():
        pytest.skip("the real TFNS validation file (sent_valid.csv) is not in the shared data")
    rows = _cli_labels(capsys, "tfns", "--split", "test", "--limit", "60")
    assert {r["label"] for r in rows} == {"negative", "positive", "neutral"}


def test_real_tfns_train_rows_grouped_by_label_spread_in_order(shared_data):
    import importlib.util

    from finbench.data import tasks as T
    spec = importlib.util.spec_from_file_location("tfns_utils", T.TASKS_DIR / "tfns" / "utils.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    path = shared_data / "twitter_financial_news_sentiment" / "sent_train.csv"
    rows = mod._rows(path, D.read_csv(path, required=("text", "label")), "t")
    rows.sort(key=lambda r: r["label"])  # as grouped as a file can be
    assert {r["label"] for r in D.representative_order(rows)[:60]} == {"negative", "positive", "neutral"}


def test_real_fpb_test_set_is_fingpts_rows_in_representative_order(shared_data):
    import importlib.util

    from finbench.data import tasks as T
    spec = importlib.util.spec_from_file_location("fpb_utils", T.TASKS_DIR / "fpb" / "utils.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fingpt = mod.make_splits(mod.read_raw(shared_data))["test"]
    docs = T.split_docs(T.load_task("fpb"), "test")
    assert len(docs) == 1212 and sorted(d["id"] for d in docs) == sorted(r["id"] for r in fingpt)
    assert {d["label"] for d in docs[:3]} == {"negative", "neutral", "positive"}
