"""FinBen English suite: metrics against their library references, the shared loader on
hub-shaped mirrors, gates, groups and the data check. The lm-eval run and the mixture build are in
tests/eval/test_finben_lm_eval.py."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from rouge_score import rouge_scorer
from seqeval.metrics import f1_score as seqeval_f1
from sklearn.metrics import f1_score, matthews_corrcoef, mean_squared_error

from eval_plugins import finben_metrics as M
from finbench.data import finben_load as FB
from finbench.data import raw as D
from finbench.data import tasks as T

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import finben_mirror_layouts as L  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = {
    "ta": ["fpb", "fiqasa", "tsa", "headlines", "fomc", "finarg_ecc_auc", "finarg_ecc_arc", "multifin_en", "ma", "mlesg"],
    "rm": ["german", "australian", "lendingclub", "ccf", "ccfraud", "polish", "taiwan", "portoseguro", "travelinsurance"],
    "fo": ["bigdata22", "acl18", "cikm18"],
    "qa": ["finqa", "tatqa", "convfinqa"],
    "ie": ["ner", "finer_ord", "finred", "sc", "cd", "fnxl", "fsrl"],
    "tg": ["edtsum", "ectsum"],
}
ALL = [n for names in FAMILIES.values() for n in names]

# Shared examples: (prediction, gold) pairs with a `missing` answer and an unseen label.
PAIRS = [("positive", "positive"), ("negative", "neutral"), ("missing", "negative"), ("neutral", "neutral"),
         ("positive", "negative"), ("negative", "negative"), ("neutral", "positive")]


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    return L.build(tmp_path_factory.mktemp("finben-mirror"))


@pytest.fixture
def on_mirror(mirror, monkeypatch, tmp_path) -> Path:
    monkeypatch.delenv("FINBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("FINBENCH_HUB_MIRROR", str(mirror))
    monkeypatch.setenv("FINBENCH_CACHE", str(tmp_path / "cache"))
    return mirror


def meta(name: str) -> dict:
    return dict(T.get_info(f"finben_{name}").config["metadata"])


# --- metrics against scikit-learn, seqeval and rouge-score ---------------------------------------


def test_classification_aggregates_match_scikit_learn():
    preds, golds = zip(*PAIRS, strict=True)
    labels = sorted(set(golds))
    assert M.weighted_f1(PAIRS) == pytest.approx(f1_score(golds, preds, average="weighted", labels=labels))
    assert M.macro_f1(PAIRS) == pytest.approx(f1_score(golds, preds, average="macro", labels=labels))
    assert M.micro_f1(PAIRS) == pytest.approx(f1_score(golds, preds, average="micro", labels=labels))
    # PIXIU maps answers outside the golds to -1: the same partition as the strings themselves
    assert M.mcc(PAIRS) == pytest.approx(matthews_corrcoef(golds, preds))
    assert M.score([("f1", p) for p in PAIRS]) == M.weighted_f1(PAIRS)
    assert M.score([("acc", p) for p in PAIRS]) == pytest.approx(3 / 7)


def test_classification_extraction_is_pixius_first_substring_in_choice_order():
    doc = {"choices": ["negative", "neutral", "positive"], "gold": 1, "finben_score": "f1"}
    # list order, not position in the text: "negative" is found before "neutral"
    assert M.process_classification(doc, [" Neutral, not NEGATIVE"])["f1"] == ("negative", "neutral")
    out = M.process_classification(doc, ["I cannot tell"])
    assert out["missing"] == 1 and out["acc"] == 0.0 and out["f1"] == ("missing", "neutral")
    assert M.process_classification(doc, ["neutral"])["acc"] == 1.0


def test_stock_movement_and_credit_use_synonyms_and_pixius_default():
    doc = {"choices": ["Rise", "Fall"], "gold": 0, "finben_score": "acc"}
    assert M.process_stock_movement(doc, ["Yes, it will"])["f1"] == ("rise", "rise")
    out = M.process_stock_movement(doc, ["unsure"])
    assert out["f1"] == ("fall", "rise") and out["missing"] == 0 and out["unparsed"] == 1
    credit = {"choices": ["good", "bad"], "gold": 1, "finben_score": "mcc"}
    assert M.process_credit(credit, ["negative outlook"])["f1"] == ("bad", "bad")
    assert M.process_credit(credit, ["??"])["f1"] == ("good", "bad")


def test_tsa_rmse_faithful_drops_the_sign_and_signed_keeps_it():
    outs = ["-0.5 is the score", "0.25\nAnswer: -1", "score: 3", "none"]
    golds = [-0.5, 0.3, 0.9, 0.0]
    items = [M.process_tsa({"answer": g}, [o]) for g, o in zip(golds, outs, strict=True)]
    faithful = [i["rmse"] for i in items]
    signed = [i["rmse_signed"] for i in items]
    assert [p for _, p in faithful] == [0.5, 0.25, 3.0, M.TSA_MISSING]
    assert [p for _, p in signed] == [-0.5, 0.25, 3.0, M.TSA_MISSING]
    ref = math.sqrt(mean_squared_error([-0.5, 0.3, 0.9], [0.5, 0.25, 1.0]))  # clipped to [-1, 1]
    assert M.rmse(faithful) == pytest.approx(ref)
    assert M.rmse_signed(signed) == pytest.approx(math.sqrt(mean_squared_error([-0.5, 0.3, 0.9], [-0.5, 0.25, 1.0])))
    assert sum(i["missing"] for i in items) == 1
    assert math.isnan(M.rmse([(0.1, M.TSA_MISSING)]))


def test_headlines_avg_f1_is_the_mean_of_weighted_f1_per_label_type():
    rows = [("price up", "Yes", 0), ("price up", "No", 0), ("price up", "no", 1), ("past", "Yes", 1), ("past", " Yes ", 0)]
    items = [M.process_headlines({"label_type": t, "gold": g, "finben_score": "avg_f1"}, [o])["avg_f1"] for t, o, g in rows]
    assert [p for _, p, _ in items] == [0, 1, 1, 0, 0]  # only a stripped "Yes" is a yes
    ref = np.mean([f1_score([0, 0, 1], [0, 1, 1], average="weighted", labels=[0, 1]),
                   f1_score([1, 0], [0, 0], average="weighted", labels=[0, 1])])
    assert M.avg_f1(items) == pytest.approx(ref)


def test_ner_maps_entities_onto_the_text_and_scores_with_seqeval():
    text = "Acme Corp hired Jane Doe in Boston"
    gold = ["B-ORG", "I-ORG", "O", "B-PER", "I-PER", "O", "B-LOC"]
    pred = M.ner_labels("Acme Corp, ORG\nJane Doe, LOC\nnonsense", text)
    assert pred == ["B-ORG", "I-ORG", "O", "B-LOC", "I-LOC", "O", "O"]
    items = [M.process_ner({"text": text, "label": gold, "finben_score": "entity_f1_ner"}, ["Acme Corp, ORG\nJane Doe, LOC"])["entity_f1"]]
    assert M.entity_f1_ner(items) == pytest.approx(seqeval_f1([gold], [pred]))


def test_sequence_labelling_entity_and_token_f1_match_seqeval_and_scikit_learn():
    tags = ["O", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    doc = {"label": ["B-ORG", "I-ORG", "O", "B-PER"], "token": ["Acme", "Corp", "hired", "Jane"],
           "finben_tags": tags, "finben_score": "entity_f1"}
    out = "Acme:B-ORG\nCorp:B-XYZ\nhired\nJane:B-PER"  # an unknown tag and an unparsed line
    item = M.process_sequence_labeling(doc, [out])["entity_f1"]
    assert M.tagged(out, doc["token"], 4, tags) == ["B-ORG", None, None, "B-PER"]
    assert M.entity_f1_tokens([item]) == pytest.approx(seqeval_f1([doc["label"]], [["B-ORG", "O", "O", "B-PER"]]))
    ref = f1_score(doc["label"], ["B-ORG", "<unparsed>", "<unparsed>", "B-PER"], average="weighted")
    assert M.token_f1([item]) == pytest.approx(ref)


def test_relation_extraction_is_set_based_over_the_split():
    items = [(["a ; r ; b", "c ; r ; d"], "a ; r ; b\nx ; r ; y"), (["a ; r ; b"], "a ; r ; b")]
    # golds {ab, cd}, preds {ab, xy}: P = R = 1/2
    assert M.relation_precision(items) == 0.5 and M.relation_recall(items) == 0.5
    assert M.relation_f1(items) == 0.5


def test_rouge_matches_rouge_score_and_is_deterministic():
    ref, pred = "the company reported higher quarterly revenue", "company revenue was higher"
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
    want = scorer.score(ref, pred)
    items = [(ref, pred)] * 3  # identical items: the bootstrap median is the item's own score
    assert M.rouge1(items) == pytest.approx(want["rouge1"].fmeasure)
    assert M.rouge2(items) == pytest.approx(want["rouge2"].fmeasure)
    assert M.rougeL(items) == pytest.approx(want["rougeL"].fmeasure)
    mixed = [(ref, pred), ("a b c", "a b c"), ("x y", "z")]
    state = np.random.get_state()[1].copy()
    assert M.rouge(mixed) == M.rouge(mixed)  # seeded bootstrap: same items, same numbers
    assert (np.random.get_state()[1] == state).all()  # and the global RNG is left as it was
    mean = np.mean([scorer.score(r, p)["rouge1"].fmeasure for r, p in mixed])
    assert abs(M.rouge1(mixed) - mean) < 0.2


def test_extractive_summary_reads_lines_by_label_as_pixiu_does():
    doc = {"label": [1, 0, 1], "text": "one\ntwo\nthree", "finben_score": "rouge1"}
    gold, pred = M.process_extractive(doc, ["1\n0\n1"])["rouge1"]
    assert gold == "one\nthree" and pred == ""  # PIXIU compares the output's "1" strings with 1


def test_bertscore_is_opt_in_and_skipped_with_a_reason(monkeypatch, caplog):
    monkeypatch.delenv(M.BERTSCORE_ENV, raising=False)
    assert math.isnan(M.bert_score_f1([("a", "a")]))
    assert "opt-in" in caplog.text and M.BERTSCORE_MODEL in caplog.text


def test_score_refuses_mixed_or_unknown_metric_names():
    with pytest.raises(ValueError, match="one metric name"):
        M.score([("f1", ("a", "a")), ("mcc", ("a", "a"))])


# --- task folders --------------------------------------------------------------------------------


def test_every_dataset_has_a_task_folder_following_the_contract():
    infos = T.discover()
    for fam, names in FAMILIES.items():
        for name in names:
            info = infos[f"finben_{name}"]
            cfg, src = info.config, info.source
            assert cfg["metadata"]["family"] == fam and cfg["metadata"]["suite"] == "finben"
            roles = {"train": "training_split", "dev": "validation_split", "test": "test_split"}
            assert {r: cfg[k] for r, k in roles.items() if cfg.get(k)} == src["splits"], name
            assert cfg["num_fewshot"] == 0 and cfg["doc_to_text"] == "query" and cfg["doc_to_target"] == "answer"
            assert src["hub"]["path"].startswith("TheFinAI/") and src["evidence"]
            readme = (info.yaml_path.parent / "README.md").read_text()
            for word in ("**Source**", "**Revision**", "**Licence**", "**Splits**", "**Metric**", "**Citation**"):
                assert word in readme, (name, word)
            if "NC" in readme or "-NC" in readme:
                assert "**Non-commercial.**" in readme, name
    assert len([n for n in infos if n.startswith("finben_")]) == len(ALL) == 34


def test_evidence_traps_are_kept():
    assert meta("travelinsurance")["source"]["hub"]["path"] == "TheFinAI/cra-travelinsurace"
    assert meta("fomc")["source"]["hub"]["path"] == "TheFinAI/finben-fomc"
    assert meta("finer_ord")["source"]["hub"]["path"] == "TheFinAI/finben-finer-ord"
    assert meta("fsrl")["source"]["hub"]["path"] == "TheFinAI/flare-fsrl"
    assert meta("bigdata22")["source"]["splits"]["dev"] == "validation"
    assert meta("acl18")["source"]["splits"]["dev"] == "valid"
    assert "text" not in meta("headlines")["source"]["columns"] and "text" not in meta("finer_ord")["source"]["columns"]
    assert meta("sc")["source"]["gated"]


# --- loader on hub-shaped mirrors ------------------------------------------------------------------


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_loads_from_the_mirror_with_its_hub_split_names(on_mirror, family):
    for name in FAMILIES[family]:
        m = meta(name)
        ds = FB.load(**m)
        assert sorted(ds) == sorted(set(m["source"]["splits"].values())), name
        for role, split in m["source"]["splits"].items():
            assert len(ds[split]) == L.SMALL[role], (name, split)
            row = ds[split][0]
            assert row["query"] and row["finben_score"] == str(m["finben"].get("score", ""))
        if "tags" in m["finben"]:
            assert ds["test"][0]["finben_tags"] == [str(t) for t in m["finben"]["tags"]]


def test_convfinqa_fills_earlier_answers_from_the_dialogue(on_mirror):
    test = FB.load(**meta("convfinqa"))["test"].to_list()
    later = next(r for r in test if r["turn"] == 1)
    first = next(r for r in test if r["turn"] == 0 and r["dialogue_id"] == later["dialogue_id"])
    assert "{answer0}" not in later["query"] and first["answer"] in later["query"]


def test_columns_that_differ_from_the_evidence_stop_with_one_line(on_mirror, tmp_path, monkeypatch):
    m = meta("multifin_en")
    bad = dict(m, source=dict(m["source"], columns=[*m["source"]["columns"], "extra"]))
    with pytest.raises(D.DataError) as err:
        FB.load(**bad)
    msg = str(err.value)
    assert "TheFinAI/flare-multifin-en" in msg and "'test'" in msg and "expected columns" in msg and "found" in msg
    assert "\n" not in msg


def test_split_names_that_differ_stop_with_one_line(on_mirror):
    m = meta("acl18")
    bad = dict(m, source=dict(m["source"], splits={"train": "train", "dev": "validation", "test": "test"}))
    with pytest.raises(D.DataError, match=r"splits \['test', 'train', 'valid'\], expected \['test', 'train', 'validation'\]"):
        FB.load(**bad)


def test_a_gated_set_names_the_gate_and_how_to_accept_it(monkeypatch, tmp_path):
    import datasets

    monkeypatch.delenv("FINBENCH_HUB_MIRROR", raising=False)
    monkeypatch.setenv("FINBENCH_CACHE", str(tmp_path))
    gated = type("GatedRepoError", (Exception,), {})

    def refuse(*args, **kwargs):
        raise gated("403 Client Error: Cannot access gated repo for url https://huggingface.co/...")

    monkeypatch.setattr(datasets, "load_dataset", refuse)
    with pytest.raises(D.DataError) as err:
        FB.load(**meta("sc"))
    msg = str(err.value)
    assert "TheFinAI/flare-causal20-sc is gated" in msg and "accept its terms" in msg and "HF_TOKEN" in msg
    assert "\n" not in msg


# --- groups, CLI, data check -------------------------------------------------------------------------


def test_finben_groups_and_the_finbench_group_is_unchanged():
    groups = T.group_configs()
    assert sorted(groups["finben"]["task"]) == sorted(f"finben_{n}" for n in ALL)
    for fam, names in FAMILIES.items():
        assert groups[f"finben_{fam}"]["task"] == sorted(f"finben_{n}" for n in names)
    for name, g in groups.items():
        if name.startswith("finbench"):
            assert not any(str(t).startswith("finben_") for t in g["task"]), name
    assert groups["finbench"]["task"] == sorted(
        t.name for t in T.discover().values() if t.is_default_variant and not t.name.startswith("finben_")
    )


def test_data_check_compares_counts_on_the_mirror(tmp_path, monkeypatch, capsys):
    from finbench.data import check as data_check
    sizes = {"tsa": {"test": 561}, "ccf": {"train": 7968, "validation": 1144, "test": 2100}}
    mirror = L.build(tmp_path / "m", only=["tsa", "ccf", "finred"], sizes=sizes)
    monkeypatch.delenv("FINBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("FINBENCH_HUB_MIRROR", str(mirror))
    monkeypatch.setenv("FINBENCH_CACHE", str(tmp_path / "cache"))
    lines = {line.dataset: line for line in data_check.finben_lines("mirror")}
    assert lines["TheFinAI/flare-tsa@main"].status == "PASS"
    ccf = lines["TheFinAI/cra-ccf@main"]
    assert ccf.status == "FAIL" and "test 2,100 (expected 2.28k)" in ccf.detail and "train 7,968," in ccf.detail
    assert lines["TheFinAI/flare-finred@main"].status == "INFO"  # no count in the evidence
    assert lines["TheFinAI/flare-fpb@main"].status == "INFO"  # not in this mirror
    assert data_check._approx_ok(7974, "7.97k") and not data_check._approx_ok(7976, "7.97k")
    assert data_check._approx_ok(681, "681") and data_check._approx_ok(2140, "2.1k")


def test_leaderboard_averages_score_and_score_category():
    # read_evals.py @856625ff: family averages take MCC as (MCC + 1) / 2, the overall mean takes it raw
    doc = {"choices": ["good", "bad"], "gold": 0, "finben_score": "mcc"}
    outs = [M.process_classification(dict(doc, gold=g), [o]) for g, o in ((0, "good"), (1, "good"), (1, "bad"), (0, "bad"))]
    raw = M.score([o["score"] for o in outs])
    assert raw == pytest.approx(matthews_corrcoef(["good", "bad", "bad", "good"], ["good", "good", "bad", "bad"]))
    assert M.score_category([o["score_category"] for o in outs]) == pytest.approx((raw + 1) / 2)
    tsa = M.process_tsa({"answer": -0.5, "finben_score": "rmse"}, ["0.5"])
    assert M.score([tsa["score"]]) == M.rmse([tsa["rmse"]]) == pytest.approx(1.0)  # the column is RMSE
    groups = T.group_configs()
    assert groups["finben"]["aggregate_metric_list"][0]["metric"] == "score"
    assert all(groups[f"finben_{f}"]["aggregate_metric_list"][0]["metric"] == "score_category" for f in FAMILIES)


def test_finben_peers_are_like_for_like_with_our_metric_names():
    from finbench.report import peers as P
    rows = [r for r in P.load() if r["task"].startswith("finben_")]
    infos = T.discover()
    assert len({r["task"] for r in rows}) == 34 and len(rows) == 214
    for r in rows:
        info = infos[r["task"]]
        assert r["split_match"] and r["split"] == info.config["test_split"] == "test"
        assert r["n"] is None or r["n"] == info.source["rows"]["test"], r
        metric, filt = r["ours"].split(",")
        assert filt == "none" and metric in [m["metric"] for m in info.config["metric_list"]], r
        assert "@a093162a" in r["source"]
    # the leaderboard's placeholder pair (one F1/MCC pair repeated in every risk column) is left out
    assert not [r for r in rows if r["model"] in ("GPT4", "ChatGPT", "LLaMA2-70B") and r["task"] == "finben_german"]
    aus = next(r for r in rows if r["model"] == "GPT4" and r["task"] == "finben_australian")
    assert aus["value"] == pytest.approx((0.47 + 1) / 2) and aus["ours"] == "score_category,none"


def test_transfer_design_pairs_one_training_set_per_family():
    from finbench.mixtures.design import generate_design

    members = generate_design(ROOT / "mixtures" / "designs" / "finben_transfer.yaml")
    reps = {"fpb": "ta", "german": "rm", "acl18": "fo", "finqa": "qa", "ner": "ie"}
    singles = [m for m in members if "+" not in m and "@" not in m]
    pairs = [m for m in members if "+" in m and "@" not in m]
    assert sorted(singles) == sorted(reps) and len(pairs) == 10 and len(members) == 5 + 10 + 20
    for name in reps:
        (comp,) = members[name]["components"].values()
        assert comp["task"] == f"finben_{name}" and meta(name)["family"] == reps[name]
    assert set(members["fpb+german"]["components"]) == {"fpb", "german"}  # no general data in a member
