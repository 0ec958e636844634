"""Size-matched controls (design kind `matched_singles`) and the sweep option
`data_seed: run` (the run seed also draws the mixture's rows). Report-side checks (corrected
p-values, pair vs matched single, peers) are in tests/report/test_report.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from finbench import mixtures as M
from finbench import sweep as SW
from finbench.mixtures import design as MD

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"
PAPER_COCKTAIL = M.MIXTURES_DIR / "paper_cocktail.yaml"


def _design(tmp: Path, base: Path, ingredients: list[str], members: list[str]) -> Path:
    path = tmp / "d.yaml"
    path.write_text(yaml.safe_dump({"design": "d", "base": str(base), "ingredients": ingredients,
                                    "members": members}), encoding="utf-8")
    return path


def _counts(member: dict) -> dict[str, int | None]:
    return {c: spec.get("count") for c, spec in member["components"].items()}


def test_matched_singles_take_the_pairs_total_row_count(tmp_path) -> None:
    got = M.generate_design(_design(tmp_path, PAPER_COCKTAIL, ["fpb", "tfns", "openorca"],
                                    ["singles", "pairs", "matched_singles"]))
    # paper_cocktail: fpb 5,000, tfns 5,000, openorca relative to the finance tasks present (x1.0)
    assert _counts(got["fpb@fpb+tfns"]) == {"fpb": 10000} and _counts(got["tfns@fpb+tfns"]) == {"tfns": 10000}
    assert _counts(got["fpb@fpb+openorca"]) == {"fpb": 10000}
    assert _counts(got["openorca@fpb+openorca"]) == {"openorca": 10000}
    assert got["openorca@fpb+openorca"]["components"]["openorca"]["dataset"]["hub"]["path"] == "Open-Orca/OpenOrca"
    assert "relative_to" not in got["openorca@fpb+openorca"]["components"]["openorca"]
    assert got["fpb@fpb+tfns"]["name"] == "d/fpb@fpb+tfns" and got["fpb@fpb+tfns"]["seed"] == 42
    # the plain members are what they were without the new kind
    plain = M.generate_design(_design(tmp_path, PAPER_COCKTAIL, ["fpb", "tfns", "openorca"], ["singles", "pairs"]))
    assert {k: v for k, v in got.items() if "@" not in k} == plain
    assert sorted(k for k in got if "@" in k) == sorted(
        f"{s}@{a}+{b}" for a, b in (("fpb", "tfns"), ("fpb", "openorca"), ("tfns", "openorca")) for s in (a, b))
    assert MD.parse_matched("d/fpb@fpb+tfns") == ("fpb", "d/fpb+tfns")
    assert MD.parse_matched("fpb@fpb+tfns") == ("fpb", "fpb+tfns")
    assert MD.parse_matched("d/fpb+tfns") is None


def test_matched_single_builds_upsampled_to_the_pair_size(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(FIXTURES))
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"seed": 3, "contamination": "allow", "components": {
        "fpb": {"task": "fpb", "count": 6},
        "tfns": {"task": "tfns", "count": 30},
    }}), encoding="utf-8")
    members = M.generate_design(_design(tmp_path, base, ["fpb", "tfns"], ["pairs", "matched_singles"]))
    path = tmp_path / "fpb@fpb+tfns.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in members["fpb@fpb+tfns"].items() if k != "_base"}))
    res = M.build(M.load_mixture(str(path)), tmp_path / "out", progress=False)
    taken = res.summary["components"]["fpb"]
    assert taken["rows_taken"] == 36  # 6 + 30: the pair's rows, all from fpb
    pair = tmp_path / "pair.yaml"
    pair.write_text(yaml.safe_dump({k: v for k, v in members["fpb+tfns"].items() if k != "_base"}))
    assert M.build(M.load_mixture(str(pair)), tmp_path / "out", progress=False).summary["rows"] == 36


def test_matched_singles_refuse_sizes_that_depend_on_the_data(tmp_path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"components": {"fpb": {"task": "fpb", "fraction": 0.5},
                                                   "tfns": {"task": "tfns", "count": 10}}}), encoding="utf-8")
    with pytest.raises(M.MixtureError, match=r"d\.yaml: members: matched_singles needs static sizes.*components\.fpb"):
        M.generate_design(_design(tmp_path, base, ["fpb", "tfns"], ["matched_singles"]))


# -------------------------------------------------------------------------- data_seed


def _sweep(tmp: Path, name: str, **over) -> Path:
    spec = {"recipes": ["tiny_cpu"], "mixtures": ["demo", "paper55/fpb"], "seeds": [1, 2, 3], "job": "train_eval",
            "eval": {"tasks": ["fpb"], "splits": ["dev", "test"], "limit": 4, "backend": "hf", "batch_size": 4},
            "store": str(tmp / f"{name}.sqlite"), "base_eval": True, **over}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def test_data_seed_run_gives_each_seed_its_own_mixture(tmp_path, capsys) -> None:
    assert SW.main(["plan", str(_sweep(tmp_path, "run", data_seed="run"))]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if " pending " in ln]
    trained = [ln for ln in lines if "job=train_eval" in ln]
    assert len(trained) == 6 and all("data_seed=" in ln for ln in trained)
    for mixture in ("demo", "paper55/fpb"):
        mine = [ln for ln in trained if f" {mixture} " in ln]
        shas = {ln.split("mixture_sha=")[1] for ln in mine}
        assert len(shas) == 3, mine  # one draw of rows per seed
        for ln in mine:
            assert ln.split("seed=")[1].split()[0] == ln.split("data_seed=")[1].split()[0]
    base = [ln for ln in lines if "job=eval_only" in ln]
    assert base and all("data_seed" not in ln for ln in base)  # nothing is drawn for a base model


def test_data_seed_fixed_keeps_every_existing_key(tmp_path, capsys) -> None:
    before = SW.load_sweep(str(_sweep(tmp_path, "plain")))
    fixed = SW.load_sweep(str(_sweep(tmp_path, "fixed", data_seed="fixed")))
    run = SW.load_sweep(str(_sweep(tmp_path, "run", data_seed="run")))
    assert [r.key for r in fixed.runs] == [r.key for r in before.runs]
    assert [r.to_dict() for r in before.runs] == [{**r.to_dict(), "sweep": "plain"} for r in fixed.runs]
    assert all("data_seed" not in r.to_dict() for r in before.runs)
    assert before.summary() == {**fixed.summary(), "name": "plain"}
    assert "data_seed" not in before.summary() and run.summary()["data_seed"] == "run"
    changed = {r.key for r in run.runs} - {r.key for r in before.runs}
    assert len(changed) == 6 and {r.mixture for r in run.runs if r.key not in changed} == {SW.BASE}
    # the paper55 plan (the study's sweep file) is untouched: no data_seed there
    assert all(r.data_seed is None for r in SW.load_sweep("paper55").runs)
    spec = next(r for r in run.runs if r.data_seed is not None)
    assert SW.RunSpec.from_dict(spec.to_dict()) == spec


def test_data_seed_reaches_the_mixture_a_run_trains_on(tmp_path, monkeypatch) -> None:
    from finbench.train import run as TR
    monkeypatch.setenv("FINBENCH_RUNS_DIR", str(tmp_path / "runs"))
    run = SW.load_sweep(str(_sweep(tmp_path, "run", data_seed="run")))
    fixed = SW.load_sweep(str(_sweep(tmp_path, "fixed")))
    spec = next(r for r in run.runs if r.mixture == "paper55/fpb" and r.seed == 2)
    recipe = SW.run_recipe(spec)
    assert recipe.data["mixture_seed"] == 2 and recipe.data["seed"] == 2
    mix = TR.check_mixture(recipe)
    assert mix.seed == 2 and mix.name == "paper55/fpb"
    assert hashlib.sha256(json.dumps(mix.spec_dict(), sort_keys=True).encode()).hexdigest() == spec.mixture_sha
    same = next(r for r in fixed.runs if r.mixture == "paper55/fpb" and r.seed == 2)
    plain = SW.run_recipe(same)
    assert "mixture_seed" not in plain.data and TR.check_mixture(plain).seed == 42  # the mixture's own


def test_bad_data_seed_is_named(tmp_path) -> None:
    with pytest.raises(SW.SweepError, match=r"bad\.yaml: data_seed: expected one of \['fixed', 'run'\], got 'each'"):
        SW.load_sweep(str(_sweep(tmp_path, "bad", data_seed="each")))


def test_mixture_seed_in_a_recipe_is_checked(tmp_path) -> None:
    from finbench.train import recipe as R
    src = yaml.safe_load((Path(__file__).resolve().parents[2] / "recipes" / "tiny_cpu.yaml").read_text())
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({**src, "mixture_seed": -1}), encoding="utf-8")
    with pytest.raises(R.RecipeError, match=r"r\.yaml.*mixture_seed"):
        R.load(path)
