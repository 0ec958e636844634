"""Every difference listed in mixtures/paper_exact/README.md, read from both modes' mixture specs,
design members and compiled Axolotl configs (table-driven; no data is read)."""

from __future__ import annotations

from pathlib import Path

import pytest

from finbench import mixtures as M
from finbench.train import axolotl as AX
from finbench.train import recipe as R

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "mixtures" / "paper_exact" / "README.md"


def spec(name: str) -> dict:
    return M.load_mixture(name).spec_dict()


def cfg(recipe: str, tmp_path: Path, n: int = 9) -> dict:
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text('{"messages": []}\n')
    r = R.load(recipe)
    c = AX.compile_config(r, AX.MixtureInfo(jsonl, jsonl, "0" * 16, n), tmp_path / "run",
                         base_model=r.base_model, prepared_root=tmp_path / "p", gpu=True)
    gpus = r.hardware.get("gpus_per_node", 1) * r.hardware["num_nodes"]
    return {**c, "global_batch": c["micro_batch_size"] * c["gradient_accumulation_steps"] * gpus}


MIX = [  # (README row, check(exact spec of fpb+openorca, default spec of fpb+openorca))
    ("OpenOrca / Orca-Math size", lambda e, d: e["components"]["openorca"]["relative_to"] == [
        "headline", "fpb", "ner_cls", "finqa", "convfinqa", "twitter_topic", "tfns"]
        and d["components"]["openorca"]["relative_to"] == ["fpb"] and len(e["sizing_only"]) == 6
        and "sizing_only" not in d),
    ("a set smaller than its count", lambda e, d: e["components"]["fpb"]["upsample"] is False
        and "upsample" not in d["components"]["fpb"]),
    ("row selection", lambda e, d: e["sampler"] == "shuffle_head" and "sampler" not in d),
    ("sources", lambda e, d: e["components"]["fpb"]["dataset"]["hub"]["path"] == "odedovadia/financial_phrasebank_split"
        and d["components"]["fpb"] == {"task": "fpb", "count": 5000}),
    ("formats", lambda e, d: e["components"]["openorca"]["dataset"]["format"]["user"] == ["{system_prompt}", "{question}"]
        and d["components"]["openorca"]["dataset"]["format"]["system"] == "system_prompt"),
    ("label casing", lambda e, d: e["components"]["fpb"]["dataset"]["format"]["values"]["label"]
        == {"0": "negative", "1": "neutral", "2": "positive"}),
    ("contamination", lambda e, d: e["contamination"]["mode"] == "allow" and d["contamination"]["mode"] == "drop"),
]


@pytest.mark.parametrize("row,check", MIX, ids=[r for r, _ in MIX])
def test_mixture_differences(row, check):
    assert f"| {row} |" in DOC.read_text(encoding="utf-8")
    assert check(spec("paper_exact/fpb+openorca"), spec("paper55/fpb+openorca"))


def test_orcamath_rounding_and_prompts():
    e = spec("paper_exact/all")["components"]
    assert e["orcamath"]["rounding"] == "floor" and e["orcamath"]["factor"] == 0.5
    assert e["orcamath"]["dataset"]["format"]["user"][0].startswith("You are given a mathematical word problem.")
    assert e["tfns"]["dataset"]["format"]["values"]["label"] == {"0": "Bearish", "1": "Bullish", "2": "Neutral"}
    assert e["finqa"]["dataset"]["format"]["after"] == {"query": "\nContext: "}
    d = spec("paper55/all")["components"]
    assert "rounding" not in d["orcamath"]


def test_leave_one_out_builds_the_intended_member():
    """The authors' `${DATASETS[@]/finqa}` also strips convfinqa; ours keeps the other eight."""
    doc = DOC.read_text(encoding="utf-8")
    assert "${DATASETS[@]/$DATASET}" in doc and "without-fin_ner_cls" in doc
    authors = [x.replace("finqa", "") for x in ["headline", "fpb", "fin_ner_cls", "finqa", "convfinqa"]]
    assert "conv" in authors  # the bug, reproduced in Python
    m = M.load_mixture("paper_exact/without-finqa")
    assert "convfinqa" in m.components and "finqa" not in m.components and len(m.components) == 8


RECIPE_ROWS = [  # (README row, exact recipe check, default recipe check)
    ("warmup", lambda c: c["warmup_steps"] == 10 and "warmup_ratio" not in c, lambda c: c["warmup_ratio"] == 0.03),
    ("batch", lambda c: (c["micro_batch_size"], c["gradient_accumulation_steps"], c["global_batch"]) == (8, 1, 64),
     lambda c: c["global_batch"] == 16),
    ("precision", lambda c: c["fp16"] and not c["bf16"], lambda c: c["bf16"] and not c["fp16"]),
    ("optimizer / distribution", lambda c: c["optimizer"] == "adamw_torch"
     and c["deepspeed"]["zero_optimization"]["offload_optimizer"]["device"] == "cpu",
     lambda c: c["optimizer"] == "adamw_torch_fused" and "offload_optimizer" not in str(c.get("deepspeed"))),
    ("epochs", lambda c: c["num_epochs"] == 2, lambda c: c["num_epochs"] == 2),
    ("fp16 loss scale", lambda c: c["deepspeed"]["fp16"]["initial_scale_power"] == 16,
     lambda c: "deepspeed" not in c or c["deepspeed"]["fp16"]["initial_scale_power"] == 32),
    ("tf32", lambda c: c["tf32"] is False, lambda c: c["tf32"] is True),
    ("over-length rows", lambda c: c.get("excess_length_strategy", "drop") == "drop",
     lambda c: c.get("excess_length_strategy", "drop") == "drop"),
    ("packing attention", lambda c: c["sample_packing"] and c["attn_implementation"] == "flash_attention_2",
     lambda c: c["sample_packing"]),
]


@pytest.mark.parametrize("row,exact,default", RECIPE_ROWS, ids=[r for r, _, _ in RECIPE_ROWS])
def test_recipe_differences(row, exact, default, tmp_path):
    assert f"| {row} |" in DOC.read_text(encoding="utf-8")
    assert exact(cfg("llama31_8b_paper_exact", tmp_path)) and exact(cfg("phi3_paper_exact", tmp_path))
    assert default(cfg("llama31_8b_cocktail", tmp_path)) and default(cfg("phi3_cocktail", tmp_path))


def test_every_paper_exact_recipe_has_the_authors_deepspeed_and_tf32(tmp_path):
    for path in sorted((ROOT / "recipes").glob("*paper_exact*.yaml")):
        c = cfg(path.stem, tmp_path)
        assert c["deepspeed"]["fp16"]["initial_scale_power"] == 16 and c["tf32"] is False, path.name


def test_readme_claims_corrected():
    doc = DOC.read_text(encoding="utf-8")
    assert "the hyperparameters are\n  the same" not in doc and "the hyperparameters are the same" not in doc
    assert "whatever the model" not in doc and "the authors keep every row" not in doc
    assert "change `template` per model" in doc and "would crash" in doc


def test_initial_scale_power_needs_deepspeed(tmp_path):
    import yaml

    data = R.load("phi3_cocktail_lora").data
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump({**data, "hardware": {**data["hardware"], "initial_scale_power": 16}}))
    with pytest.raises(R.RecipeError, match="initial_scale_power is a DeepSpeed setting"):
        R.load(p)


def test_models_phi3_128k_and_labelled_stand_ins():
    assert R.load("phi3_paper_exact").base_model == "microsoft/Phi-3-mini-128k-instruct"
    assert R.load("phi3_cocktail").base_model == "microsoft/Phi-3-mini-4k-instruct"
    assert R.load("llama31_8b_paper_exact").base_model == "meta-llama/Meta-Llama-3.1-8B-Instruct"
    for name in ("mistral_7b_paper_exact_standin", "qwen25_7b_paper_exact_standin"):
        r = R.load(name)
        assert r.data["description"].startswith("STAND-IN") and "NOT published" in r.path.read_text()
    # the README's section moved to docs/paper_exact.md (issue 18's guides); the README links it
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    guide = (ROOT / "docs" / "paper_exact.md").read_text(encoding="utf-8")
    assert "the study's other models" not in readme + guide and "docs/paper_exact.md" in readme
    assert guide.startswith("# Reproduce the study exactly") and "labelled stand-ins" in guide


def test_warmup_steps_auto_is_validated(tmp_path):
    import yaml

    data = R.load("phi3_paper_exact").data
    for bad in ("autp", -1, 1.5):
        p = tmp_path / "r.yaml"
        p.write_text(yaml.safe_dump({**data, "hyperparameters": {**data["hyperparameters"], "warmup_steps": bad}}))
        with pytest.raises(R.RecipeError, match="warmup_steps"):
            R.load(p)
    p.write_text(yaml.safe_dump({**data, "hyperparameters": {**data["hyperparameters"], "warmup_ratio": 0.1}}))
    with pytest.raises(R.RecipeError, match="not both"):
        R.load(p)
    assert cfg("phi3_paper_exact", tmp_path, n=2)["warmup_steps"] == 0
