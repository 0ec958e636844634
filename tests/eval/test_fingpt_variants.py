"""FinGPT's own FiQA-SA and Headline test splits as test-only variants (`fiqa_sa_fingpt`,
`headline_fingpt`), read through `finbench.data.hub` with real `datasets.load_dataset` from a mirror
laid out as the hub serves each repo (tests/hub_mirror_layouts.py: FinGPT/fingpt-headline's
parquet files, pauri32/fiqa-2018's three root CSVs). Rows are synthetic; layouts and columns are
the hub's."""

from __future__ import annotations

import importlib.util
import logging
import math
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import datasets
import hub_mirror_layouts as L
import numpy as np
import pytest
from task_modules import score_golds

from finbench.data import hub as H
from finbench.data import raw as D
from finbench.data import tasks as T

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = {"headline_fingpt": "headline", "fiqa_sa_fingpt": "fiqa_sa"}  # variant -> its folder


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    return L.build(tmp_path_factory.mktemp("mirror"))


@pytest.fixture
def on_mirror(mirror, monkeypatch, tmp_path) -> Path:
    return L.use_mirror(monkeypatch, mirror, tmp_path / "cache", offline=False)


def utils(folder: str):
    spec = importlib.util.spec_from_file_location(
        f"fingpt_variant_{folder}", ROOT / "tasks" / folder / "utils.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def meta(task: str) -> dict:
    return dict(T.get_info(task).config["metadata"])


def load(task: str):
    return utils(VARIANTS[task]).load_fingpt(**meta(task))


def fingpt_label(score: float) -> str:  # FinGPT's make_label (benchmarks/fiqa.py)
    return "negative" if score < -0.1 else "neutral" if score < 0.1 else "positive"


# --- registry: test only, outside the groups, not a training source --------------------------


def test_variants_are_test_only_and_outside_the_default_groups() -> None:
    from finbench.eval.lmeval_hook import group_configs

    infos = T.discover()
    groups = group_configs()
    for name, folder in VARIANTS.items():
        info = infos[name]
        assert info.folder == folder and info.eval_only and not info.is_default_variant
        assert info.config["test_split"] == "test" and not info.config.get("training_split")
        assert not info.config.get("validation_split")
        assert all(name not in g.get("task", []) for g in groups.values()), name
        assert folder in groups["finbench"]["task"] and not infos[folder].eval_only
    # the headline source is locked like the others; the FiQA copy is pinned in the YAML itself
    assert H.read_lock()["FinGPT/fingpt-headline@main"]["used_by"] == ["task headline_fingpt"]
    assert H.SHA_RE.match(infos["fiqa_sa_fingpt"].source["hub"]["revision"])
    assert not any(k.startswith("pauri32/") for k in H.hub_sources())


def test_contamination_guard_takes_a_variant_only_when_named() -> None:
    from finbench.mixtures.contamination import guard_tasks

    def mix(tasks):
        return SimpleNamespace(contamination=SimpleNamespace(tasks=tasks))

    default = guard_tasks(mix(None))
    assert "fiqa_sa" in default and not set(VARIANTS) & set(default)  # reading them needs the hub
    # a variant has rows of its own: named beside its folder's task, both are guarded
    assert guard_tasks(mix(("fiqa_sa", "fiqa_sa_mc", "fiqa_sa_fingpt"))) == ["fiqa_sa", "fiqa_sa_fingpt"]


# --- Headline: FinGPT/fingpt-headline `test` ------------------------------------------------


def test_headline_fingpt_docs_are_fingpt_test_rows(on_mirror) -> None:
    dd = load("headline_fingpt")
    assert len(dd["train"]) == 0 and len(dd["dev"]) == 0
    docs = {d["id"]: d for d in dd["test"].to_list()}
    n_headlines = L.SMALL["fingpt_headline"][1]
    assert len(docs) == 9 * n_headlines  # nine questions per headline, FinGPT's test split only
    assert Counter(d["group"] for d in docs.values()) == {
        q: n_headlines for q in meta("headline_fingpt")["questions"]
    }
    raw = datasets.load_dataset(
        str(on_mirror / "FinGPT/fingpt-headline"), split="test", cache_dir=str(on_mirror.parent / "hl-cache")
    )
    for i, rec in enumerate(raw):
        doc = docs[f"fingpt-headline-test-{i:05d}"]
        assert doc["text"] == rec["input"] and doc["label"] == rec["output"].lower()
        assert rec["instruction"] == f"{doc['question']} Please choose an answer from {{Yes/No}}."
        assert doc["choices"] == ["yes", "no"]
    first = docs["fingpt-headline-test-00008"]
    assert first["group"] == "asset_comparison" and first["question"].endswith(
        "compare gold with any other asset?"
    )
    assert docs["fingpt-headline-test-00000"]["group"] == "price_or_not"


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (
            "instruction",
            "Is this headline about silver? Please choose an answer from {Yes/No}.",
            r"row 0: instruction 'Is this headline about silver\?.*' is not one of FinGPT's headline questions",
        ),
        ("output", "Maybe", r"row 0: output 'Maybe', expected Yes or No"),
    ],
)
def test_headline_fingpt_unexpected_row_is_one_line(tmp_path, monkeypatch, column, value, message) -> None:
    L.fingpt_headline(tmp_path / "m", (1, 1))
    path = next((tmp_path / "m/FinGPT/fingpt-headline/data").glob("test-00000-of-00001-*.parquet"))
    rows = datasets.Dataset.from_parquet(str(path), cache_dir=str(tmp_path / "c")).to_dict()
    rows[column][0] = value
    L._parquet(path, rows)
    monkeypatch.delenv("FINBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("FINBENCH_HUB_MIRROR", str(tmp_path / "m"))
    monkeypatch.setenv("FINBENCH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(D.DataError, match=message) as err:
        load("headline_fingpt")
    assert "FinGPT/fingpt-headline@main test" in str(err.value) and "\n" not in str(err.value)


# --- FiQA-SA: pauri32/fiqa-2018, concatenated, train_test_split(0.226, seed=42) ---------------


def test_fiqa_fingpt_split_is_fingpts_train_test_split(on_mirror) -> None:
    source = T.get_info("fiqa_sa_fingpt").source["hub"]
    up = utils("fiqa_sa").read_fingpt_test(**source, thresholds=(-0.1, 0.1), test_size=0.226, seed=42)
    # Independently, as FinGPT's fiqa.py does it, with the real `datasets` calls on the same folder.
    ds = datasets.load_dataset(
        str(on_mirror / "pauri32/fiqa-2018"), cache_dir=str(on_mirror.parent / "fq-cache")
    )
    assert sorted(ds) == ["test", "train", "validation"]  # split names from the CSV file names
    pool = datasets.concatenate_datasets([ds["train"], ds["validation"], ds["test"]])
    expected = pool.train_test_split(0.226, seed=42)["test"]
    n = len(pool)
    assert n == sum(L.SMALL["fiqa_2018"]) and len(up["test"]) == math.ceil(0.226 * n) == len(expected)
    assert [r["text"] for r in up["test"]] == expected["sentence"]
    assert [r["label"] for r in up["test"]] == [fingpt_label(s) for s in expected["sentiment_score"]]
    assert [r["format"] for r in up["test"]] == expected["format"]
    # The rows depend only on the row count and the seed (numpy's generator in datasets), so the
    # same copy in the same order gives FinGPT's rows.
    picked = np.random.default_rng(42).permutation(n)[: len(expected)]
    assert expected["sentence"] == [pool[int(i)]["sentence"] for i in picked]


def test_fiqa_fingpt_docs_and_thresholds(on_mirror) -> None:
    dd = load("fiqa_sa_fingpt")
    assert len(dd["train"]) == 0 and len(dd["dev"]) == 0 and len(dd["test"]) == 8
    docs = dd["test"].to_list()
    assert len({d["id"] for d in docs}) == len(docs) and all(
        d["choices"] == ["negative", "neutral", "positive"] for d in docs
    )
    assert all(d["label"] == fingpt_label(d["score"]) for d in docs)
    to_label = utils("fiqa_sa").to_label
    assert [to_label(s, (-0.1, 0.1)) for s in (-0.1001, -0.1, 0.099, 0.1)] == [
        "negative",
        "neutral",
        "neutral",
        "positive",
    ]


def test_fiqa_fingpt_missing_split_or_column_is_one_line(tmp_path, monkeypatch) -> None:
    L.fiqa_2018(tmp_path / "m", (6, 2, 2))
    folder = tmp_path / "m/pauri32/fiqa-2018"
    monkeypatch.delenv("FINBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("FINBENCH_HUB_MIRROR", str(tmp_path / "m"))
    monkeypatch.setenv("FINBENCH_CACHE", str(tmp_path / "cache"))
    (folder / "validation.csv").unlink()
    with pytest.raises(D.DataError, match=r"pauri32/fiqa-2018@74b7dd5d\w+: no split 'validation'") as err:
        load("fiqa_sa_fingpt")
    assert "\n" not in str(err.value)
    L.fiqa_2018(tmp_path / "m", (6, 2, 2))
    for split in ("train", "validation", "test"):  # `datasets` needs one schema across the files
        text = (folder / f"{split}.csv").read_text().replace("sentiment_score", "score")
        (folder / f"{split}.csv").write_text(text)
    with pytest.raises(D.DataError, match=r"@74b7dd5d\w+ train: missing field 'sentiment_score'") as err:
        load("fiqa_sa_fingpt")
    assert "\n" not in str(err.value)


# --- where the rows can come from ------------------------------------------------------------


@pytest.mark.parametrize("task", sorted(VARIANTS))
def test_variant_refuses_the_raw_data_dir(task, fixture_data) -> None:
    with pytest.raises(D.DataError) as err:
        load(task)
    msg = str(err.value)
    assert (
        f"task {task!r} scores FinGPT's test split" in msg and T.get_info(task).source["hub"]["path"] in msg
    )
    assert "FINBENCH_DATA_DIR" in msg and "\n" not in msg


@pytest.mark.parametrize("task", sorted(VARIANTS))
def test_variant_offline_without_mirror_is_one_line_naming_the_dataset(task, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("FINBENCH_DATA_DIR", raising=False)
    monkeypatch.delenv("FINBENCH_HUB_MIRROR", raising=False)
    monkeypatch.setenv("FINBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(D.DataError) as err:
        load(task)
    msg = str(err.value)
    assert f"hub dataset {T.get_info(task).source['hub']['path']}@" in msg and "not reachable" in msg
    assert "FINBENCH_HUB_MIRROR" in msg and "\n" not in msg


# --- through lm-eval -------------------------------------------------------------------------


def test_variants_have_no_train_or_dev_for_mixtures_and_sweeps(on_mirror, caplog) -> None:
    tm = T.task_manager_for(["tfns", *VARIANTS])
    loaded = tm.load(["headline_fingpt"])["tasks"]
    with pytest.raises(ValueError, match="task 'headline_fingpt' declares no train split"):
        T.split_docs(loaded["headline_fingpt"], "train")  # what a mixture's `task:` source reads
    with pytest.raises(ValueError, match="has no validation_split: cannot score dev"):
        T.tasks_for_split(tm, list(VARIANTS), "dev")
    with caplog.at_level(logging.WARNING, logger="finbench.data.tasks"):
        dev = T.tasks_for_split(tm, ["tfns", "fiqa_sa_fingpt"], "dev")  # a sweep's dev pass
    assert [t.config.task for t in dev] == [
        "tfns"
    ] and "not scored on dev (test-only): fiqa_sa_fingpt" in caplog.text


@pytest.mark.parametrize("task", sorted(VARIANTS))
def test_gold_answers_score_one(task, on_mirror, task_manager) -> None:
    obj = task_manager.load([task])["tasks"][task]
    docs = list(obj.test_docs())
    for filt, items in score_golds(obj, task).items():
        for metric in ("score", "f1_weighted", "acc"):
            assert obj.aggregation()[metric]([s[metric] for s in items]) == 1.0, (task, filt, metric)
    prompt = obj.doc_to_text(docs[0])
    assert (
        prompt.startswith(("Headline: gold test headline", "Text: FiQA 2018 "))
        and "Answer with one word" in prompt
    )


@pytest.mark.slow
def test_tiny_model_runs_both_variants_under_lm_eval(on_mirror, tiny_llama, task_manager) -> None:
    from lm_eval import simple_evaluate

    out = simple_evaluate(
        model="hf",
        model_args={"pretrained": str(tiny_llama), "device": "cpu"},
        tasks=sorted(VARIANTS),
        task_manager=task_manager,
        limit=18,  # headline: one row per (question type, label) stratum first; FiQA has 8
        batch_size=8,
        apply_chat_template=True,
        log_samples=True,
    )
    for task in VARIANTS:
        res = out["results"][task]
        for metric in ("score", "acc", "f1_weighted", "f1_macro", "missing_rate"):
            for filt in ("tolerant", "strict"):
                assert 0.0 <= res[f"{metric},{filt}"] <= 1.0, (task, metric, filt)
    groups = {s["doc"]["group"] for s in out["samples"]["headline_fingpt"]}
    assert len(groups) == 9  # the ordered test split's first rows hold every question type
    assert len(out["samples"]["fiqa_sa_fingpt"]) == 8 * 2  # the whole (8-row) split x two filters


# --- the report pairs the published numbers with ours -----------------------------------------


def test_peer_rows_of_the_variants_and_their_selection_task() -> None:
    from finbench.report import peers as P
    from finbench.report.sections import references as R
    rows = [r for r in P.load() if r["task"] in VARIANTS]
    assert rows and all(r["split_match"] and r["split"] == "test" for r in rows)
    assert {r["task"] for r in rows} == {"fiqa_sa_fingpt"}  # no published FinGPT Headline number found
    assert all(r["n"] == 275 and r["selected_on"] == "fiqa_sa" and "@" in r["source"] for r in rows)
    # ours: the mixture selected on the folder's task's dev, scored on the variant's test split
    seen = []

    def seed_values(cell, split, task, metric, filt):
        seen.append((cell, split, task, metric, filt))
        return [0.5, 0.7]

    plan = SimpleNamespace(
        recipes=["r1"],
        selected={("r1", "fiqa_sa"): "all"},
        data=SimpleNamespace(cells={("r1", "all"): "cell"}, seed_values=seed_values),
        ctx=SimpleNamespace(filter="tolerant"),
    )
    (ours,) = R._ours(plan, rows[0])
    assert ours["mixture_here"] == "all" and ours["value_here"] == pytest.approx(0.6)
    assert seen == [("cell", "test", "fiqa_sa_fingpt", "f1_weighted", "tolerant")]


def test_mixture_refuses_a_variant_as_training_source(tmp_path, fixture_data) -> None:
    import yaml

    from finbench import mixtures as M
    spec = {"seed": 1, "contamination": {"mode": "allow", "tasks": ["fpb"]},
            "components": {"fiqa": {"task": "fiqa_sa_fingpt", "count": 5}}}
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    with pytest.raises(M.MixtureError) as err:  # before any data is read (the raw dir would refuse it)
        M.build(M.load_mixture(str(path)), tmp_path / "out", progress=False)
    msg = str(err.value)
    assert "task 'fiqa_sa_fingpt' is test-only" in msg and "cannot be a training source" in msg
    assert "\n" not in msg
