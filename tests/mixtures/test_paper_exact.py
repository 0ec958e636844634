"""`paper_exact`: the study as its authors' released code builds it (meniData1/cocktail_effect
@ 24bde3e, src/cocktail.py), built for real from a hub-shaped mirror (FINBENCH_HUB_MIRROR) of small
fake sources of known lengths, and checked against the authors' rule computed here independently:
each finance set = min(N, len) rows of `load_dataset(...).shuffle(seed=42)`, OpenOrca = the sum of
the SEVEN capped finance sizes, Orca-Math = that // 2, whatever the member holds.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import hub_mirror_layouts as L
import numpy as np
import pytest

from finbench import mixtures as M
from finbench.data import hub as H
from finbench.mixtures.sampling import SAMPLERS

ROOT = Path(__file__).resolve().parents[2]
# The authors' counts (cocktail.py load_datasets) and the fake sources' lengths (odd sum: // 2 shows)
AUTHORS_N = {"headline": 10000, "fpb": 5000, "ner_cls": 5000, "convfinqa": 2000, "twitter_topic": 2500,
             "tfns": 5000, "finqa": 2000}
LENGTHS = {"headline": 14, "fpb": 11, "ner_cls": 6, "convfinqa": 5, "finqa": 7, "twitter_topic": 14, "tfns": 12}
OPENORCA, ORCAMATH = (40, 50), 50
REPO = {**L.AUTHORS_REPOS,
        "twitter_topic": "zeroshot/twitter-financial-news-topic",
        "tfns": "zeroshot/twitter-financial-news-sentiment",
        "orcamath": "microsoft/orca-math-word-problems-200k",
        "openorca": "Open-Orca/OpenOrca"}


def build_authors_mirror(root: Path) -> Path:
    """The hub-shaped mirror (hub_mirror_layouts) with these tests' lengths."""
    return L.build(root, {"tfns": (LENGTHS["tfns"], 4), "topic": (LENGTHS["twitter_topic"], 4),
                          "openorca": OPENORCA, "orcamath": ORCAMATH,
                          "authors": {k: LENGTHS[k] for k in L.AUTHORS_REPOS}})


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    return build_authors_mirror(tmp_path_factory.mktemp("authors_mirror"))


@pytest.fixture
def on_mirror(mirror, monkeypatch, tmp_path) -> Path:
    return L.use_mirror(monkeypatch, mirror, tmp_path / "cache")


def authors_rows(name: str, n: int) -> list[dict]:
    """cocktail.py's process_dataset: load_dataset(name, split="train").shuffle(seed=42).select(range(min(n, len)))."""
    ds = H.load_dataset(REPO[name], revision="main", split="train").shuffle(seed=42)
    return ds.select(range(min(n, len(ds)))).to_list()


def authors_sizes() -> dict[str, int]:
    capped = {k: min(AUTHORS_N[k], LENGTHS[k]) for k in AUTHORS_N}
    general = sum(capped.values())  # general_instructions_num: always all seven
    return {**capped, "openorca": min(general, sum(OPENORCA)), "orcamath": min(general // 2, ORCAMATH)}


def built(name: str, out: Path) -> tuple[dict, list[dict]]:
    from finbench import cli
    assert cli.main(["mixture", "build", name, "--out", str(out), "--no-progress"]) == 0
    manifest = json.loads(next(out.rglob("*.manifest.json")).read_text())
    rows = [json.loads(x) for x in next(out.rglob("*.jsonl")).read_text().splitlines()]
    return manifest, rows


@pytest.mark.parametrize("length", [1, 2, 7, 100, 4846])
def test_shuffle_head_equals_datasets_shuffle(length):
    """Our sampler's first k = datasets' own `.shuffle(seed=42)` order, for real Datasets."""
    ds = datasets.Dataset.from_dict({"i": list(range(length))}).shuffle(seed=42)
    keys = SAMPLERS["shuffle_head"].keyer(0, 42, length)(0, length)
    assert np.argsort(keys, kind="stable").tolist() == ds["i"]
    assert np.array_equal(np.random.default_rng(42).permutation(length), ds["i"])


def test_fpb_plus_openorca_has_the_authors_sizes(on_mirror, tmp_path):
    manifest, rows = built("paper_exact/fpb+openorca", tmp_path / "out")
    want = authors_sizes()
    sizes = {k: c["rows_taken"] for k, c in manifest["components"].items()}
    # fpb = min(5000, 11) = 11; openorca = sum of the seven capped sizes = 69 (not 11)
    assert sizes == {"fpb": want["fpb"], "openorca": want["openorca"]} == {"fpb": 11, "openorca": 69}
    assert manifest["rows"] == 80 == len(rows)
    assert all(c["upsampling_factor"] == 1.0 for c in manifest["components"].values())  # capped
    assert set(manifest["sizing_only"]) == {"headline", "ner_cls", "finqa", "convfinqa", "twitter_topic", "tfns"}
    # the very rows the authors' code takes, in their formats
    fpb_users = sorted(r["messages"][0]["content"] for r in rows if r["task"] == "fpb")
    ours = sorted(
        "You are given a financial document. Your task is to infer its sentiment.\nAnswer using one of the following "
        "labels: ['Negative', 'Neutral', 'Positive'], and include nothing else.\nYou must answer with a single word, "
        "and no additional context.\n" + r["sentence"]
        for r in authors_rows("fpb", 5000)
    )
    assert fpb_users == ours
    labels = {r["messages"][-1]["content"] for r in rows if r["task"] == "fpb"}
    assert labels == {"negative", "neutral", "positive"}  # lower case, bare
    oo = {r["messages"][0]["content"] for r in rows if r["task"] == "openorca"}
    assert oo == {f"{r['system_prompt']}\n{r['question']}" for r in authors_rows("openorca", 69)}


def test_orcamath_alone_is_the_floor_of_half_the_seven(on_mirror, tmp_path):
    manifest, rows = built("paper_exact/orcamath", tmp_path / "out")
    assert manifest["components"]["orcamath"]["rows_taken"] == authors_sizes()["orcamath"] == 69 // 2 == 34
    asked = {r["messages"][0]["content"].split("\n", 1)[1] for r in rows}
    assert asked == {r["question"] for r in authors_rows("orcamath", 34)}


def test_all_nine_formats_and_sizes(on_mirror, tmp_path):
    manifest, rows = built("paper_exact/all", tmp_path / "out")
    want = authors_sizes()
    assert {k: c["rows_taken"] for k, c in manifest["components"].items()} == want
    by_task: dict[str, list] = {}
    for r in rows:
        by_task.setdefault(r["task"], []).append(r["messages"])
    assert all(len(m) == 2 for ms in by_task.values() for m in ms)  # no system turn, bare target
    tfns = {m[1]["content"] for m in by_task["tfns"]}
    assert tfns <= {"Bearish", "Bullish", "Neutral"} and len(tfns) == 3
    topics = {m[1]["content"] for m in by_task["twitter_topic"]}
    assert "Analyst Update" in topics and "Fed | Central Banks" in topics
    finqa = {m[0]["content"] for m in by_task["finqa"]}
    prompt = "Please answer the given financial question based on the context."
    assert finqa == {prompt + "\n" + r["query"].split("\nContext: ")[1] for r in authors_rows("finqa", 2000)}
    head = {(m[0]["content"], m[1]["content"]) for m in by_task["headline"]}
    assert head == {(f"{r['instruction']}\n{r['input']}", r["output"]) for r in authors_rows("headline", 10000)}


# --- recipes: the authors' hyperparameters in each compiled Axolotl config ----------------------

PAPER_RECIPES = ["phi3_paper_exact", "llama31_8b_paper_exact", "mistral_7b_paper_exact_standin",
                 "qwen25_7b_paper_exact_standin"]


def compiled(recipe_name: str, member: str, tmp_path: Path) -> dict:
    """The Axolotl config the sweep runs for (recipe, member), from a real build of the member."""
    from finbench.train import axolotl as AX
    from finbench.train import recipe as R
    from finbench.train import run as TR
    recipe = R.load(recipe_name)
    info = TR.build_mixture(recipe, M.load_mixture(member))
    cfg = AX.compile_config(recipe, info, tmp_path / "run", base_model=recipe.base_model,
                           prepared_root=tmp_path / "prep", gpu=True)
    AX.validate_axolotl(cfg, where=recipe_name)
    return cfg


@pytest.mark.parametrize("recipe_name", PAPER_RECIPES[:2])
def test_compiled_configs_carry_the_authors_hyperparameters(on_mirror, monkeypatch, tmp_path, recipe_name):
    monkeypatch.setenv("FINBENCH_RUNS_DIR", str(tmp_path / "runs"))
    pair, whole = compiled(recipe_name, "paper_exact/fpb+openorca", tmp_path), compiled(recipe_name, "paper_exact/all", tmp_path)
    for cfg in (pair, whole):  # base_config.yaml
        assert cfg["learning_rate"] == 3e-6 and cfg["lr_scheduler"] == "cosine" and cfg["fp16"] and not cfg["bf16"]
        assert cfg["micro_batch_size"] == 8 and cfg["gradient_accumulation_steps"] == 1
        assert cfg["sequence_len"] == 4096 and cfg["sample_packing"] and cfg["optimizer"] == "adamw_torch"
        assert cfg["max_grad_norm"] == 1.0 and "warmup_ratio" not in cfg
        zero = cfg["deepspeed"]["zero_optimization"]
        assert zero["stage"] == 2 and zero["offload_optimizer"] == {"device": "cpu", "pin_memory": True}
    assert (pair["num_epochs"], pair["warmup_steps"]) == (3, 0)  # <= 3 datasets (sizing-only not counted)
    assert (whole["num_epochs"], whole["warmup_steps"]) == (2, 10)


def test_sweep_plan_lists_220_trainings():
    from finbench.sweep import load as SL
    from finbench.sweep.model import BASE

    sweep = SL.load_sweep("paper_exact")
    runs = [r for r in sweep.runs if r.mixture != BASE]
    assert len(runs) == 220 == 4 * 55 * 1 and len(sweep.runs) == 224  # + each untrained base model
    assert {r.recipe for r in runs} == set(PAPER_RECIPES)


def test_dry_run_prints_the_cluster_config_on_a_machine_without_gpu(on_mirror, monkeypatch, tmp_path, capsys):
    """`finbench train phi3_paper_exact --dry-run` on a CPU machine: the full multi-GPU config,
    DeepSpeed block with the authors' loss scale; the real run still stops at the hardware check."""
    import yaml

    from finbench.train import axolotl as AX
    from finbench.train import run as TR
    monkeypatch.setenv("FINBENCH_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr(AX, "has_gpu", lambda: False)
    assert TR.main(["train", "phi3_paper_exact", "--dry-run"]) == 0
    out = capsys.readouterr().out
    cfg = yaml.safe_load(out)  # the trailing `#` lines are YAML comments
    ds = cfg["deepspeed"]
    assert ds["fp16"]["initial_scale_power"] == 16 and ds["zero_optimization"]["stage"] == 2
    assert ds["zero_optimization"]["offload_optimizer"] == {"device": "cpu", "pin_memory": True}
    assert cfg["fp16"] is True and cfg["tf32"] is False and cfg["attn_implementation"] == "flash_attention_2"
    assert cfg["base_model"] == "microsoft/Phi-3-mini-128k-instruct"  # named, not downloaded
    assert "--multi_gpu" in out and "this machine has no CUDA GPU" in out
    # offline, Phi-3's tokenizer is not here: the count says so instead of guessing
    assert "# over-length rows (> sequence_len 4096 tokens" in out and "not counted" in out
    assert TR.main(["train", "phi3_paper_exact"]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err


def test_over_length_rows_are_counted_by_set(tmp_path):
    from axolotl.utils.chat_templates import get_chat_template
    from transformers import AutoTokenizer

    from finbench.train import mixture as TM
    from finbench.train import models
    tok = AutoTokenizer.from_pretrained(models.tiny_model())
    rows = [("fpb", "short"), ("finqa", "table " * 400), ("finqa", "row"), ("convfinqa", "x " * 300)]
    convs = [[{"role": "user", "content": u}, {"role": "assistant", "content": "1"}] for _, u in rows]
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text("".join(json.dumps({"messages": m, "task": t}) + "\n" for m, (t, _) in zip(convs, rows, strict=True)))
    ids = [tok.apply_chat_template(m, chat_template=get_chat_template("chatml"), tokenize=True) for m in convs]
    lengths = [len(i["input_ids"] if hasattr(i, "keys") else i) for i in ids]
    limit = sorted(lengths)[1]  # the two long rows exceed it
    over, total, by_task = TM.over_length(jsonl, tok, "chatml", limit)
    assert (over, total) == (2, 4) and dict(by_task) == {"finqa": 1, "convfinqa": 1}
