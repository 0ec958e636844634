"""The hub path, tested offline: every task's `read_hub` and every mixture dataset, read through
real `datasets.load_dataset` from a mirror laid out as the hub serves each repo (hub_mirror_layouts).

Each layout test fails on the loaders as first written: FPB asked for a config the parquet branch
does not have, Headline read an instruction dataset, ConvFinQA read turn files as conversations,
FinQA pointed at a script-only repo, and no load could use a mirror at all.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import sys
from pathlib import Path

import datasets
import hub_mirror_layouts as L
import pytest

from finbench.data import hub as H
from finbench.data import raw as D
from finbench.data import tasks as T
from finbench.mixtures import check as data_check  # the whole check: task sources + mixture datasets

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    return L.build(tmp_path_factory.mktemp("mirror"))


@pytest.fixture
def on_mirror(mirror, monkeypatch, tmp_path) -> Path:
    return L.use_mirror(monkeypatch, mirror, tmp_path / "cache")


def utils(task: str):
    path = ROOT / "tasks" / task / "utils.py"
    spec = importlib.util.spec_from_file_location(f"hubtest_{task}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def source(task: str) -> dict:
    return T.get_info(task).source["hub"]


def meta(task: str) -> dict:
    return dict(T.get_info(task).config["metadata"])


# --- one test per layout ----------------------------------------------------------------------


def test_mirror_folder_layout_is_repo_or_repo_at_branch(tmp_path):
    assert H.mirror_folder(tmp_path, "org/name", "main") == tmp_path / "org/name"
    assert H.mirror_folder(tmp_path, "org/name", "a" * 40) == tmp_path / "org/name"
    assert H.mirror_folder(tmp_path, "org/name", "refs/convert/parquet") == tmp_path / "org/name@refs/convert/parquet"


def test_fpb_reads_one_member_of_main_zip(on_mirror):
    hub = source("fpb")
    assert hub == {"path": "takala/financial_phrasebank", "revision": "main"}
    up = utils("fpb").read_hub(hub["path"], hub["revision"], agree="50")
    rows = up["train"]
    assert len(rows) == L.SMALL["fpb"]  # one member, not the four agreement levels
    assert all(r["text"].startswith("Agree50 ") for r in rows)
    assert rows[0]["text"].endswith("Sepp\u00e4l\u00e4 .")  # ISO-8859-1 decoded, CRLF stripped
    assert [r["label"] for r in rows[:3]] == ["negative", "neutral", "positive"]
    assert len(utils("fpb").read_hub(hub["path"], hub["revision"], agree="All")["train"]) == L.SMALL["fpb"] // 2
    with pytest.raises(D.DataError) as err:
        utils("fpb").read_hub(hub["path"], hub["revision"], agree="99")
    msg = str(err.value)
    assert "Sentences_99Agree.txt" in msg and "['50', '66', '75', 'All']" in msg and "\n" not in msg


def test_fpb_bad_zip_and_bad_line_are_one_line(on_mirror, monkeypatch, tmp_path):
    bad = tmp_path / "m" / "takala/financial_phrasebank/data/FinancialPhraseBank-v1.0.zip"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a zip")
    monkeypatch.setenv("FINBENCH_HUB_MIRROR", str(tmp_path / "m"))
    with pytest.raises(D.DataError, match="cannot read as a zip archive"):
        utils("fpb").read_hub("takala/financial_phrasebank", "main")
    L.fpb_zip(bad, {"50": ["Good sentence .@positive", "no label here"]})
    with pytest.raises(D.DataError, match=r"Sentences_50Agree.txt:2: expected 'sentence@label'"):
        utils("fpb").read_hub("takala/financial_phrasebank", "main")


def test_fpb_test_split_from_the_real_file_in_main_zip_is_fingpts(shared_data, monkeypatch, tmp_path):
    # The real Sentences_50Agree.txt packed as main's zip: FinGPT's split gives 1,212 test rows.
    lines = (shared_data / "financial_phrasebank/Sentences_50Agree.txt").read_bytes().decode("iso-8859-1").splitlines()
    L.fpb_zip(tmp_path / "m/takala/financial_phrasebank/data/FinancialPhraseBank-v1.0.zip", {"50": lines})
    L.use_mirror(monkeypatch, tmp_path / "m", tmp_path / "cache")
    mod = utils("fpb")
    hub_rows = mod.read_hub("takala/financial_phrasebank", "main")["train"]
    assert len(hub_rows) == 4846
    assert hub_rows == mod.read_raw(shared_data)["train"]  # same rows as the raw file
    splits = mod.make_splits({"train": hub_rows})
    assert len(splits["test"]) == 1212


def test_tfns_and_topic_csv_pairs(on_mirror):
    tf = utils("tfns").read_hub(**source("tfns"))
    assert {k: len(v) for k, v in tf.items()} == {"train": 12, "validation": 6}
    assert [r["label"] for r in tf["train"][:3]] == ["negative", "positive", "neutral"]  # 0 Bearish 1 Bullish
    labels = meta("twitter_topic")["labels"]
    tp = utils("twitter_topic").read_hub(**source("twitter_topic"), labels=labels)
    assert {k: len(v) for k, v in tp.items()} == {"train": 14, "validation": 6}
    assert tp["train"][5]["label"] == labels[5]


def test_fiqa_pools_the_three_hub_splits(on_mirror):
    up = utils("fiqa_sa").read_hub(**source("fiqa_sa"), thresholds=(-0.1, 0.1))
    assert len(up["train"]) == sum(L.SMALL["fiqa"])
    assert {r["label"] for r in up["train"]} == {"negative", "neutral", "positive"}


def test_headline_reads_both_splits_of_the_raw_column_copy(on_mirror):
    hub = source("headline")
    assert hub["path"] == "SaguaroCapital/sentiment-analysis-in-commodity-market-gold"
    up = utils("headline").read_hub(**hub, questions=meta("headline")["questions"])
    assert len(up["train"]) == sum(L.SMALL["headline"])
    assert any("test headline" in r["text"] for r in up["train"])


def test_headline_instruction_copy_is_a_one_line_error(on_mirror, monkeypatch, tmp_path):
    # FinGPT/fingpt-headline (the old source) is instruction-formatted: name the missing column.
    base = tmp_path / "m" / "FinGPT/fingpt-headline"
    L._readme(base, "configs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*\n"
                    "  - split: test\n    path: data/test-*")
    for split in ("train", "test"):
        L._parquet(base / f"data/{split}-00000-of-00001.parquet",
                   {"instruction": ["Does the news headline talk about price?"], "input": ["gold up"], "output": ["Yes"]})
    monkeypatch.setenv("FINBENCH_HUB_MIRROR", str(tmp_path / "m"))
    with pytest.raises(D.DataError) as err:
        utils("headline").read_hub("FinGPT/fingpt-headline", "main", questions=meta("headline")["questions"])
    assert "missing field 'News'" in str(err.value) and "\n" not in str(err.value)


def test_ner_reads_main_raw_files(on_mirror):
    from eval_plugins import ner as NER

    hub = source("ner")
    assert hub == {"path": "tner/fin", "revision": "main"} == source("ner_cls")
    up = NER.hub_sentence_splits(**hub)
    assert len(up["train"]) + len(up["dev"]) == L.SMALL["ner"][0] and len(up["test"]) == L.SMALL["ner"][1]
    assert up["train"][0]["tags"][:3] == ["I-PER", "I-PER", "I-PER"] and up["test"][0]["file"] == "FIN3.txt"
    # the raw folder holding the same two files gives the same splits
    raw = on_mirror.parent / "raw" / "finner_sec"
    raw.mkdir(parents=True)
    for name in ("FIN5.txt", "FIN3.txt"):
        shutil.copyfile(on_mirror / "tner/fin/dataset" / name, raw / name)
    assert NER.sentence_splits(raw.parent) == up
    assert utils("ner").read_raw is NER.sentence_splits is utils("ner_cls").read_raw  # one reader


def test_ner_missing_hub_file_is_one_line(on_mirror, monkeypatch, tmp_path):
    from eval_plugins import ner as NER

    (tmp_path / "m/tner/fin/dataset").mkdir(parents=True)
    L.conll(tmp_path / "m/tner/fin/dataset/FIN5.txt", 3, "t")
    monkeypatch.setenv("FINBENCH_HUB_MIRROR", str(tmp_path / "m"))
    with pytest.raises(D.DataError) as err:
        NER.hub_sentence_splits("tner/fin", "main")
    assert "dataset/FIN3.txt" in str(err.value) and "\n" not in str(err.value)


def test_finqa_parquet_copy_and_missing_field(on_mirror, monkeypatch, tmp_path):
    hub = source("finqa")
    up = utils("finqa").read_hub(**hub)
    assert {k: len(v) for k, v in up.items()} == {"train": 6, "dev": 3, "test": 3}
    row = up["test"][0]
    assert row["program_ok"] and row["label"] == "20" and "revenue" in row["text"]
    L.finqa(tmp_path / "m", (2, 1, 1), drop="exe_ans")
    monkeypatch.setenv("FINBENCH_HUB_MIRROR", str(tmp_path / "m"))
    with pytest.raises(D.DataError) as err:
        utils("finqa").read_hub(**hub)
    assert "missing field 'exe_ans'" in str(err.value) and "\n" not in str(err.value)


def test_convfinqa_turn_files_grouped_by_conversation(on_mirror):
    mod = utils("convfinqa")
    up = mod.read_hub(**source("convfinqa"))
    n_train, n_dev = (3 * n for n in L.SMALL["convfinqa"])
    assert {k: len(v) for k, v in up.items()} == {"train": n_train, "dev": n_dev}  # one row per turn
    ids = [r["id"] for r in up["train"]]
    assert len(ids) == len(set(ids))
    first = [r for r in up["train"] if r["conversation"] == up["train"][0]["conversation"]]
    assert [r["turn"] for r in first] == [0, 1, 2]
    assert first[2]["history"].startswith("Question: what was revenue in 2019?\nAnswer: 100\n")
    assert first[2]["label"] == "20" and all(r["program_ok"] for r in first)
    # Read as conversations (the old loader), each turn entry would expand its whole conversation.
    entries = json.loads((on_mirror / "AdaptLLM/ConvFinQA/train_turn.json").read_text())
    assert len(mod.read_records(entries, "x")) > n_train
    # Type II conversations (qa_0/qa_1, qa_split 0s then 1s) are read like Type I ones
    assert any(e["id"].startswith("Double_") and "qa_1" in e for e in entries)
    assert any(r["conversation"].startswith("Double_") for r in up["train"])
    split = mod.make_splits(up, 0.4)
    train_convs = {r["conversation"] for r in split["train"]}
    assert train_convs and not train_convs & {r["conversation"] for r in split["dev"]}


def test_convfinqa_incomplete_conversation_is_an_error():
    entries = L.convfinqa_entries("dev", 3)[:2]  # turn 2 of the conversation missing
    with pytest.raises(D.DataError, match="has turns \\[0, 1\\] but 3 questions"):
        utils("convfinqa").conversations_from_turns(entries, "hub x")


def test_authors_flare_finqa_has_train_valid_test(on_mirror):
    # ChanceFocus/flare-finqa holds three splits; datasets 4.8 names the third after its files: `valid`
    folder = on_mirror / "ChanceFocus/flare-finqa"
    ds = datasets.load_dataset(str(folder), cache_dir=str(on_mirror.parent / "c-flare"))
    assert sorted(ds) == ["test", "train", "valid"]
    assert (folder / "data/test-00000-of-00001-5ed0ee6b1f761c33.parquet").is_file()  # the name public code reads


def test_financebench_jsonl(on_mirror):
    up = utils("financebench").read_hub(**source("financebench"))
    assert len(up["train"]) == L.SMALL["financebench"]
    assert up["train"][0]["label"] == "$1577.00" and "1,577" in up["train"][0]["evidence"]


def test_tatqa_json_files_come_from_the_mirror(on_mirror, monkeypatch):
    # TAT-QA is read file by file (its answers mix types Arrow cannot hold): the mirror still wins
    import huggingface_hub

    def no_network(*a, **k):
        raise AssertionError("hf_hub_download called while FINBENCH_HUB_MIRROR is set")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    up = utils("tatqa").read_hub(**source("tatqa"))
    assert set(up) >= {"dev", "test"} and up["dev"] and up["test"]


@pytest.mark.parametrize("streaming", [False, True])
def test_openorca_two_root_parquet_files_and_orca_math(on_mirror, streaming):
    oo = H.load_dataset("Open-Orca/OpenOrca", revision="main", split="train", streaming=streaming)
    rows = list(oo)
    assert len(rows) == sum(L.SMALL["openorca"])  # both files, as train
    assert set(rows[0]) == {"id", "system_prompt", "question", "response"}
    om = H.load_dataset("microsoft/orca-math-word-problems-200k", revision="main", split="train", streaming=streaming)
    assert len(list(om)) == L.SMALL["orcamath"]


def test_every_task_loads_through_lm_eval_from_the_mirror(on_mirror):
    tm = T.task_manager_for(["fpb", "convfinqa"])
    loaded = tm.load(["fpb", "convfinqa"])["tasks"]
    fpb = T.split_docs(loaded["fpb"], "test")
    assert fpb and all(d["text"].startswith("Agree50 ") for d in fpb)
    assert T.split_docs(loaded["convfinqa"], "test")[0]["id"].endswith("#0")


def test_demo_mixture_builds_from_the_mirror(on_mirror, tmp_path):
    from finbench import mixtures as M
    res = M.build("demo", tmp_path / "out", progress=False)
    manifest = json.loads(res.manifest.read_text())
    comps = manifest["components"]
    assert res.summary["rows"] > 0
    text = json.dumps(manifest)
    assert "Open-Orca/OpenOrca" in text and str(on_mirror) in text  # the mirror is recorded
    assert comps


def test_missing_mirror_folder_is_one_line(on_mirror, monkeypatch, tmp_path):
    monkeypatch.setenv("FINBENCH_HUB_MIRROR", str(tmp_path / "empty"))
    with pytest.raises(D.DataError) as err:
        utils("tfns").read_hub(**source("tfns"))
    msg = str(err.value)
    assert "zeroshot/twitter-financial-news-sentiment" in msg and "FINBENCH_HUB_MIRROR" in msg and "\n" not in msg


# --- data check -------------------------------------------------------------------------------


def test_data_check_small_mirror_fails_with_counts(on_mirror, capsys):
    rc = data_check.run(external=True)
    out = capsys.readouterr().out
    assert rc == 1
    assert "FAIL  takala/financial_phrasebank@main  [fpb]  train 24 (expected 4,846)" in out
    assert "PASS  Open-Orca/OpenOrca@main" in out


def test_data_check_passes_on_a_full_size_mirror(tmp_path, monkeypatch, capsys):
    mirror = L.build(tmp_path / "full", L.FULL, L.FULL_CONVFINQA_TURNS)
    monkeypatch.delenv("FINBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("FINBENCH_HUB_MIRROR", str(mirror))
    monkeypatch.setenv("FINBENCH_CACHE", str(tmp_path / "cache"))
    rc = data_check.run()
    out = capsys.readouterr().out
    assert rc == 0, out
    for line in (
        "train 4,846",
        "train 9,543, validation 2,388",
        "train 16,990, validation 4,117",
        "[fiqa_sa]  train 1,173",
        "[financebench]  train 150",
        "train 6,251, dev 883, test 1,147",
        "train 11,104, dev 1,490",
        "[headline]  train 10,570",
        "PASS  FinGPT/fingpt-headline@main  [headline_fingpt]  test 20,547",
        "[fiqa_sa_fingpt]  test 275",
        "PASS  tner/fin@main  [ner,ner_cls]  train 459, dev 52",
    ):
        assert line in out, (line, out)
    assert out.count("PASS") == 20 and "INFO  tner" not in out


def test_data_check_on_raw_files_loads_and_does_not_compare(fixture_data, capsys):
    rc = data_check.run()
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "OK    raw financial_phrasebank/  [fpb]  loaded train 48 (raw files: not compared; the full hub" in out
    assert "FAIL" not in out
    assert "INFO  FinGPT/fingpt-headline@main  [headline_fingpt]  hub only (a peer's test split" in out


# --- the lock ---------------------------------------------------------------------------------


class _Info:
    def __init__(self, sha: str) -> None:
        self.sha = sha


def test_data_lock_resolves_every_source_and_loads_use_the_sha(monkeypatch, tmp_path, capsys):
    import huggingface_hub

    asked = []

    def dataset_info(self, repo_id, revision=None, **_):
        asked.append((repo_id, revision))
        return _Info(format(abs(hash((repo_id, revision))) % (1 << 160), "040x"))

    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", dataset_info)
    lock_file = tmp_path / "data.lock.yaml"
    from finbench import cli
    assert cli.main(["data", "lock", "--lock-file", str(lock_file)]) == 0
    locked = H.read_lock(lock_file)
    assert set(locked) == set(H.hub_sources())
    assert ("takala/financial_phrasebank", "main") in asked and ("tner/fin", "main") in asked
    assert all(H.SHA_RE.match(e["sha"]) for e in locked.values())
    assert "resolved: true" in lock_file.read_text()

    monkeypatch.setattr(H, "lock_path", lambda: lock_file)
    monkeypatch.delenv("FINBENCH_HUB_MIRROR", raising=False)
    calls = []
    H.load_dataset("AdaptLLM/ConvFinQA", revision="main", split="train", loader=lambda *a, **k: calls.append((a, k)))
    assert calls[0][1]["revision"] == locked["AdaptLLM/ConvFinQA@main"]["sha"]
    rec = H.record({"path": "AdaptLLM/ConvFinQA", "revision": "main"})
    assert rec["sha"] == locked["AdaptLLM/ConvFinQA@main"]["sha"]


def test_data_lock_reports_unreachable_sources(monkeypatch, tmp_path):
    import huggingface_hub

    def dataset_info(self, repo_id, revision=None, **_):
        raise huggingface_hub.errors.OfflineModeIsEnabled("offline")

    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", dataset_info)
    from finbench import cli
    assert cli.main(["data", "lock", "--lock-file", str(tmp_path / "l.yaml")]) == 1
    assert "resolved: false" in (tmp_path / "l.yaml").read_text()


def test_shipped_lock_lists_every_hub_source():
    locked = H.read_lock()
    assert set(locked) == set(H.hub_sources()), "run `finbench data lock` (or add the new source as sha: null)"


def test_unlocked_source_warns_once(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(H, "lock_path", lambda: tmp_path / "absent.yaml")
    monkeypatch.delenv("FINBENCH_HUB_MIRROR", raising=False)
    monkeypatch.setattr(H, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="finbench.data.hub"):
        for _ in range(2):
            H.load_dataset("org/name", revision="main", loader=lambda *a, **k: None)
    assert sum("not locked" in r.message for r in caplog.records) == 1


def test_offline_hub_load_is_one_line_naming_both_ways_out(monkeypatch, tmp_path):
    monkeypatch.delenv("FINBENCH_HUB_MIRROR", raising=False)
    monkeypatch.delenv("FINBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(D.DataError) as err:
        H.load_dataset("finbench-test/never-cached", revision="main", split="train")
    msg = str(err.value)
    assert "finbench-test/never-cached" in msg and "FINBENCH_DATA_DIR" in msg and "FINBENCH_HUB_MIRROR" in msg
    assert "\n" not in msg


# --- shas found in public evidence ------------------------------------------------------------

FPB_SHA = "8d3fe0c36d5feec6b3cc5e455b0fcb4820fb9964"


def test_shipped_lock_marks_public_evidence_shas():
    locked = H.read_lock()
    fpb = locked["takala/financial_phrasebank@main"]
    assert fpb["sha"] == FPB_SHA and fpb["origin"] == "public-evidence" and "hf_hub_download" in fpb["evidence"]
    marked = {k for k, e in locked.items() if e["origin"] == "public-evidence"}
    assert "zeroshot/twitter-financial-news-topic@main" in marked and "ChanceFocus/flare-finqa@main" in marked
    assert not any(e["origin"] == "hub" for e in locked.values())  # nothing resolved online yet


def test_data_lock_online_replaces_public_evidence_and_keeps_it_when_unreachable(monkeypatch, tmp_path):
    lock_file = tmp_path / "data.lock.yaml"
    shutil.copyfile(H.lock_path(), lock_file)

    def partial(repo, revision):
        if repo == "takala/financial_phrasebank":
            raise ConnectionError("no network")
        return "b" * 40

    _, errors = H.lock(lock_file, resolver=partial)
    locked = H.read_lock(lock_file)
    assert errors == ["takala/financial_phrasebank@main: ConnectionError: no network"]
    assert locked["takala/financial_phrasebank@main"]["origin"] == "public-evidence"  # kept, still marked
    assert locked["takala/financial_phrasebank@main"]["sha"] == FPB_SHA
    assert locked["ChanceFocus/flare-finqa@main"] == dict(locked["ChanceFocus/flare-finqa@main"], sha="b" * 40, origin="hub")
    assert "evidence" not in locked["ChanceFocus/flare-finqa@main"]
    assert "resolved: false" in lock_file.read_text()
    H.lock(lock_file, resolver=lambda repo, revision: "c" * 40)
    assert all(e["origin"] == "hub" and e["sha"] == "c" * 40 for e in H.read_lock(lock_file).values())
    assert "resolved: true" in lock_file.read_text()


def test_public_evidence_sha_is_loaded_and_warns_once(monkeypatch, tmp_path, caplog):
    import huggingface_hub

    monkeypatch.delenv("FINBENCH_HUB_MIRROR", raising=False)
    monkeypatch.setattr(H, "_warned", set())
    asked = []

    def fake_download(repo, filename, repo_type=None, revision=None):
        asked.append((repo, filename, repo_type, revision))
        return str(tmp_path / "x.zip")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    with caplog.at_level(logging.WARNING, logger="finbench.data.hub"):
        for _ in range(2):
            H.download_file("takala/financial_phrasebank", "data/FinancialPhraseBank-v1.0.zip", revision="main")
    assert asked[0] == ("takala/financial_phrasebank", "data/FinancialPhraseBank-v1.0.zip", "dataset", FPB_SHA)
    assert sum("public evidence" in r.message and "not yet resolved online" in r.message for r in caplog.records) == 1
    rec = H.record({"path": "takala/financial_phrasebank", "revision": "main"})
    assert rec["sha"] == FPB_SHA and rec["sha_origin"] == "public-evidence"


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"sha": "a" * 40, "origin": "guess"}, r"sources.org/x@main.origin: expected one of \['hub', 'public-evidence'\]"),
        ({"sha": "a" * 40, "origin": "public-evidence"}, "needs a 'sha' and an 'evidence' string"),
        ({"sha": None, "origin": "public-evidence", "evidence": "a page"}, "needs a 'sha'"),
    ],
)
def test_bad_lock_marking_is_one_line(tmp_path, entry, match):
    import yaml

    path = tmp_path / "l.yaml"
    path.write_text(yaml.safe_dump({"sources": {"org/x@main": entry}}))
    with pytest.raises(D.DataError, match=match) as err:
        H.read_lock(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
