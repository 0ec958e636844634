"""The published peer numbers file: every row cites its source; like-for-like rows use our splits."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_peers_file_rows_cite_sources_and_like_for_like_splits_are_ours(fixture_data) -> None:
    from finbench.data.tasks import discover
    from finbench.report import peers as P
    from finbench.report.sections import references as R

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
