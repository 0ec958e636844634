"""`make replicate`'s arms: equal steps (sweep mini), the study's equal epochs over each
mixture's union (sweep mini_epochs) and the size-matched single (its own rows repeated to the
pair's size), built cheaply: sweep and recipe definitions, design members, a real mixture build on
fixture rows, and which paired comparisons the replication prints."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import yaml

from finbench import demo
from finbench import mixtures as M
from finbench import sweep as SW
from finbench.mixtures import design as MD
from finbench.train import recipe as R

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "data"


def test_make_replicate_runs_both_arms_with_one_scoring() -> None:
    assert demo.ARMS["mini"] == ("mini", "mini_epochs")
    steps, epochs = SW.load_sweep("mini"), SW.load_sweep("mini_epochs")
    assert steps.eval == epochs.eval  # same rows scored, same dev selection
    hp_steps = R.load(steps.recipes[0]).data["hyperparameters"]
    hp_epochs = R.load(epochs.recipes[0]).data["hyperparameters"]
    assert "max_steps" in hp_steps  # equal steps: a pair halves each task's share
    assert "max_steps" not in hp_epochs and hp_epochs["num_epochs"] == 3  # the study: 3 epochs (<= 3 sets)
    assert {k: v for k, v in hp_steps.items() if k not in ("max_steps", "num_epochs", "save_steps")} == {
        k: v for k, v in hp_epochs.items() if k != "num_epochs"}
    assert sorted(epochs.mixtures) == sorted(f"demo_replicate/{m}" for m in (
        "fpb", "headline", "fpb+headline", "fpb@fpb+headline", "headline@fpb+headline"))


def test_pair_is_the_union_and_matched_single_repeats_its_own_rows() -> None:
    members = M.generate_design(M.MIXTURES_DIR / "designs" / "demo_replicate.yaml")
    counts = {m: {c: s["count"] for c, s in spec["components"].items()} for m, spec in members.items()}
    assert counts == {"fpb": {"fpb": 80}, "headline": {"headline": 80}, "fpb+headline": {"fpb": 80, "headline": 80},
                      "fpb@fpb+headline": {"fpb": 160}, "headline@fpb+headline": {"headline": 160}}
    matched = members["fpb@fpb+headline"]["components"]["fpb"]
    assert matched["pool"] == 80 and matched["upsample"] is True


def _build(tmp: Path, member: dict, name: str) -> list[str]:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in member.items() if k != "_base"}), encoding="utf-8")
    res = M.build(M.load_mixture(str(path)), tmp / "out", progress=False)
    return [json.dumps(json.loads(line)["messages"]) for line in res.jsonl.open(encoding="utf-8")]


def test_matched_single_builds_as_its_singles_rows_repeated(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(FIXTURES))
    base = tmp_path / "base.yaml"  # fewer rows than the fixture splits hold: `pool` must bite
    base.write_text(yaml.safe_dump({"seed": 5, "contamination": "allow", "components": {
        "fpb": {"task": "fpb", "count": 4, "upsample": False},
        "tfns": {"task": "tfns", "count": 6, "upsample": False}}}), encoding="utf-8")
    design = tmp_path / "d.yaml"
    design.write_text(yaml.safe_dump({"design": "d", "base": str(base), "ingredients": ["fpb", "tfns"],
                                      "members": ["singles", "pairs", "matched_singles"]}), encoding="utf-8")
    members = M.generate_design(design)
    single = _build(tmp_path, members["fpb"], "fpb")
    pair = _build(tmp_path, members["fpb+tfns"], "pair")
    matched = _build(tmp_path, members["fpb@fpb+tfns"], "matched")
    assert len(single) == 4 and len(pair) == 10 and len(matched) == 10
    assert set(single) <= set(pair)  # the pair keeps every row of the single
    assert set(matched) == set(single)  # the control: no new FPB rows, only repeats
    assert sorted(Counter(matched).values()) == [2, 2, 3, 3]  # 10 = 2 whole copies + 2 more
    no_pool = {**members["fpb@fpb+tfns"], "components": {"fpb": {
        k: v for k, v in members["fpb@fpb+tfns"]["components"]["fpb"].items() if k != "pool"}}}
    assert len(set(_build(tmp_path, no_pool, "no_pool"))) > 4  # without it: more distinct rows


def test_replication_compares_single_pair_and_matched_single() -> None:
    cells = {m: ["k"] for m in (SW.BASE, "d/fpb", "d/headline", "d/fpb+headline", "d/fpb@fpb+headline",
                                "d/headline@fpb+headline")}
    comps = {SW.BASE: set(), "d/fpb": {"fpb"}, "d/headline": {"headline"}, "d/fpb+headline": {"fpb", "headline"},
             "d/fpb@fpb+headline": {"fpb"}, "d/headline@fpb+headline": {"headline"}}
    assert demo.comparisons(cells, comps, "d/fpb", "fpb") == [
        ("d/fpb", SW.BASE),
        ("d/fpb+headline", "d/fpb"),  # does the pair beat the single on its own task?
        ("d/fpb+headline", "d/fpb@fpb+headline"),  # ... by more than the extra steps give?
        ("d/fpb@fpb+headline", "d/fpb"),  # what the extra steps alone give
    ]
    assert MD.parse_matched("d/fpb@fpb+headline") == ("fpb", "d/fpb+headline")


def test_pool_must_be_a_positive_whole_number(tmp_path) -> None:
    import pytest

    for bad in (0, 2.5, "80", True):
        path = tmp_path / "m.yaml"
        path.write_text(yaml.safe_dump({"components": {"fpb": {"task": "fpb", "count": 8, "pool": bad}}}))
        with pytest.raises(M.MixtureError, match=r"m\.yaml: components\.fpb\.pool: expected a (whole|positive)"):
            M.load_mixture(str(path))
