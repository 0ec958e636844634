"""The demo's shipped data sample (finbench/samples/), its builder, the demo's table and quiet output,
and every shipped or fixture FinQA/ConvFinQA gold program reproducing its gold answer."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import logging
import os
import sys
from pathlib import Path

import pytest

from finbench import demo
from finbench.core import quiet

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "data"
SHARED = ROOT.parent / "shared" / "data"
TFNS = demo.SAMPLES / "twitter_financial_news_sentiment"


def _module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


BUILDER = _module("make_demo_sample", ROOT / "tests" / "make_demo_sample.py")


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# --- FinQA / ConvFinQA gold programs ----------------------------------------------------------


def _finqa_files() -> list[Path]:
    files = sorted((FIXTURES / "finqa").glob("*.json"))
    if (SHARED / "finqa").is_dir():
        files += sorted((SHARED / "finqa").glob("*.json"))
    return files


def _convfinqa_files() -> list[Path]:
    files = sorted((FIXTURES / "convfinqa").glob("*.json"))
    shared = SHARED / "convfinqa" / "sample_train_2conversations.json"  # test_private has no programs
    return files + ([shared] if shared.is_file() else [])


def test_every_finqa_gold_program_gives_its_gold_answer(caplog) -> None:
    utils = _module("finqa_utils_gold", ROOT / "tasks" / "finqa" / "utils.py")
    checked = 0
    for path in _finqa_files():
        records = json.loads(path.read_text(encoding="utf-8"))
        for i, rec in enumerate(records if isinstance(records, list) else [records]):
            row = utils.row_from_record(rec, f"{path.name}[{i}]")  # runs eval_plugins.finqa_program
            ok, reason = utils.program_ok(row["program"], row["table"], row["golds"])
            assert ok, f"{path}[{i}]: {reason}"
            checked += 1
    assert checked >= 9 and "does not reproduce" not in caplog.text


def test_every_convfinqa_gold_program_gives_its_gold_answer(caplog) -> None:
    utils = _module("convfinqa_utils_gold", ROOT / "tasks" / "convfinqa" / "utils.py")
    turns = 0
    for path in _convfinqa_files():
        records = json.loads(path.read_text(encoding="utf-8"))
        for i, rec in enumerate(records):
            for row in utils.turns_from_record(rec, f"{path.name}[{i}]"):
                ok, reason = utils._program_ok(row["program"], row["table"], row["label"])
                assert ok, f"{path}[{i}] turn {row['turn']}: {reason}"
                turns += 1
    assert turns >= 5 and "does not reproduce" not in caplog.text


# --- the shipped sample -----------------------------------------------------------------------


def test_sample_is_small_licensed_and_loads_through_the_tfns_loader() -> None:
    total = sum(p.stat().st_size for p in demo.SAMPLES.rglob("*") if p.is_file())
    assert total < 200_000, total
    readme = (demo.SAMPLES / "README.md").read_text(encoding="utf-8")
    assert "MIT" in readme and "Ricky Costa" in readme and "zeroshot/twitter-financial-news-sentiment" in readme
    assert "finbench/samples" in (ROOT / "tasks" / "tfns" / "README.md").read_text(encoding="utf-8")
    utils = _module("tfns_utils_sample", ROOT / "tasks" / "tfns" / "utils.py")
    splits = utils.make_splits(utils.read_raw(demo.SAMPLES))
    assert {k: len(v) for k, v in splits.items()} == {"train": 432, "dev": 48, "test": 300}
    assert {r["label"] for r in splits["test"]} == {"negative", "neutral", "positive"}


def test_sample_does_not_leak_and_comes_from_the_upstream_train_file() -> None:
    train, test = _csv(TFNS / "sent_train.csv"), _csv(TFNS / "sent_valid.csv")
    readme = (demo.SAMPLES / "README.md").read_text(encoding="utf-8")
    assert "held-out rows of the upstream train file" in readme
    assert (len(train), len(test)) == (BUILDER.TRAIN_ROWS, BUILDER.TEST_ROWS)
    assert [sum(r["label"] == lab for r in train) for lab in "012"] == [BUILDER.TRAIN_ROWS // 3] * 3
    assert not {r["text"].strip() for r in train} & {r["text"].strip() for r in test}
    upstream = SHARED / "twitter_financial_news_sentiment" / "sent_train.csv"
    if not upstream.is_file():
        pytest.skip(f"{upstream} absent: the upstream check needs the shared raw files")
    rows = BUILDER.read_pinned(upstream, BUILDER.PINNED)
    both = {(r["text"], r["label"]) for r in rows}
    assert {(r["text"], r["label"]) for r in train} <= both and {(r["text"], r["label"]) for r in test} <= both


def test_shipped_sample_is_the_builders_output() -> None:
    src = SHARED / "twitter_financial_news_sentiment"
    if not (src / "sent_train.csv").is_file():
        pytest.skip(f"{src}/sent_train.csv absent: the rebuild needs the shared raw file")
    for name, text in BUILDER.build(src).items():
        assert (demo.SAMPLES / name).read_text(encoding="utf-8") == text


def test_builder_is_seeded_and_keeps_splits_apart(tmp_path) -> None:
    up_train = [{"text": f"tweet {i % 70}", "label": str(i % 3)} for i in range(90)]  # 20 repeats
    text = BUILDER.to_csv(up_train).replace("\n", "\r\n")  # the upstream copy's CRLF
    (tmp_path / "sent_train.csv").write_text(text, encoding="utf-8", newline="")
    pinned = {"sent_train.csv": __import__("hashlib").sha256(text.replace("\r", "").encode()).hexdigest()}
    one = BUILDER.build(tmp_path, seed=3, train_rows=15, test_rows=10, pinned=pinned)
    assert one == BUILDER.build(tmp_path, seed=3, train_rows=15, test_rows=10, pinned=pinned)
    assert one != BUILDER.build(tmp_path, seed=4, train_rows=15, test_rows=10, pinned=pinned)
    train = list(csv.DictReader(io.StringIO(one["twitter_financial_news_sentiment/sent_train.csv"])))
    test = list(csv.DictReader(io.StringIO(one["twitter_financial_news_sentiment/sent_valid.csv"])))
    assert len(train) == 15 and len(test) == 10
    assert sorted(r["label"] for r in train) == ["0"] * 5 + ["1"] * 5 + ["2"] * 5  # balanced by label
    assert not {r["text"] for r in train} & {r["text"] for r in test}
    with pytest.raises(SystemExit, match="sha256"):
        BUILDER.build(tmp_path, pinned={"sent_train.csv": "0" * 64})


# --- the demo's table and quiet output --------------------------------------------------------


def _samples(folder: Path, preds: list[str], golds: list[str]) -> None:
    folder.mkdir(parents=True)
    with (folder / "samples_tfns.jsonl").open("w", encoding="utf-8") as fh:
        for i, (g, p) in enumerate(zip(golds, preds, strict=True)):
            for filt, pred in (("tolerant", p), ("strict", "missing")):
                item = ["", g, pred]
                fh.write(json.dumps({"doc_id": i, "filter": filt, "metrics": ["acc", "score"],
                                     "acc": item, "score": item}) + "\n")


def test_paired_rows_and_table(tmp_path) -> None:
    golds = ["neutral"] * 60 + ["positive"] * 20 + ["negative"] * 20
    _samples(tmp_path / "base", ["neutral"] * 100, golds)  # the majority class only
    _samples(tmp_path / "tuned", golds[:90] + ["neutral"] * 10, golds)
    (row,) = demo.paired_rows(["tfns"], tmp_path / "base", tmp_path / "tuned", n_resamples=500)
    assert row["n"] == 100 and row["base"] == pytest.approx(0.45)  # weighted F1 of all-neutral
    assert row["tuned"] > 0.85 and 0 < row["low"] < row["delta"] < row["high"]
    lines = demo.table([row]).splitlines()
    assert lines[0].split() == ["task", "base", "tuned", "delta", "[95%", "CI]", "rows"]
    assert lines[1].startswith("tfns") and lines[1].rstrip().endswith("100") and "[+" in lines[1]
    assert demo.explain_falls([row], tmp_path / "base", tmp_path / "tuned", tmp_path / "none.jsonl") == []


def test_demo_mode_drops_library_noise_keeps_ours_and_bars_go_to_the_log(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("FINBENCH_VERBOSE", raising=False)
    root = logging.getLogger()
    saved = root.handlers[:]
    stream = io.StringIO()
    root.handlers = []
    try:
        quiet.demo_mode(stream)
        logging.getLogger("bitsandbytes.backends.cpu.ops").warning(
            "Failed to load CPU gemm_4bit_forward from kernels-community: offline")
        logging.getLogger("axolotl.utils.schemas.validation").warning("setting remove_unused_columns")
        logging.getLogger("lm_eval.api.task").error("a real library error")
        logging.getLogger("finbench.train.run").warning("our own warning")
    finally:
        root.handlers = saved
        for name in quiet.LIBRARIES:
            logging.getLogger(name).setLevel(logging.NOTSET)
    out = stream.getvalue()
    assert "gemm_4bit" not in out and "remove_unused_columns" not in out
    assert "a real library error" in out and "our own warning" in out
    log = tmp_path / "demo.log"
    with quiet.bars_to(log):  # pytest's captured stderr is not a terminal
        print("Running generate_until requests: 50%|#####", file=sys.stderr)
    assert "generate_until" in log.read_text(encoding="utf-8")


# --- the demo's data source: a settings value, never a rewritten environment -------------------


def test_data_env_points_the_settings_at_the_overlay_and_leaves_the_environment(monkeypatch) -> None:
    from finbench.core import settings
    from finbench.data import tasks as T
    monkeypatch.delenv("FINBENCH_DATA_DIR", raising=False)
    monkeypatch.delenv("FINBENCH_HUB_MIRROR", raising=False)

    def ours() -> dict[str, str]:  # (lm-eval and torch set KMP_*/HF_HUB_ENABLE_HF_TRANSFER at import)
        return {k: v for k, v in os.environ.items() if k.startswith(("FINBENCH_", "HF_HUB_OFFLINE", "HF_DATASETS"))}

    before = ours()
    with demo.data_env(["tfns"], "sample", None) as origin:
        root = settings.data_dir()
        assert origin["tfns"] == "shipped sample (real rows)"
        assert (root / "twitter_financial_news_sentiment").resolve() == TFNS
        # the task's own loader (through lm-eval) reads the overlay: the 300 shipped test rows
        assert len(T.split_docs(T.load_task("tfns"), "test")) == 300
        with settings.use(settings.current()):  # what an executor forwards carries the overlay
            assert settings.Settings.from_json(settings.current().to_json()).data_dir == root
    assert ours() == before and settings.data_dir() is None
    with demo.data_env(["tfns"], "hub", None) as origin:
        assert settings.data_dir() is None and origin == {"tfns": "hub"}
