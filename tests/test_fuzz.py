"""The fast slices of the seeded mutation fuzzers (`make fuzz` runs 1,000+ config mutants and the
data fuzzer at full size): every mutated recipe, mixture, design, sweep and raw data file gives a
clean error naming its file, or is accepted; never a traceback, never an accepted duplicate key."""

from __future__ import annotations

import time

import fuzz_configs as FC
import fuzz_data as FD
import pytest


def test_config_mutants_give_clean_errors_never_tracebacks() -> None:
    start = time.monotonic()
    tally = FC.fuzz(100, seed=13, log=lambda _: None)
    assert sum(tally.counts.values()) == 100
    assert tally.bugs == [], "\n".join(tally.bugs)
    assert tally.counts["traceback"] == 0 and tally.counts["dup_accepted"] == 0
    assert tally.counts["wrong_accepted"] == 0
    assert tally.nofile == [], "\n".join(tally.nofile)
    assert tally.counts["clean"] >= 70, tally.summary()  # most mutations break something, and say so
    assert set(tally.by_kind) == set(FC.KINDS)
    assert time.monotonic() - start < 120


def test_mutants_are_seeded_and_cover_every_mutation() -> None:
    a, b = FC.mutants(60, seed=5), FC.mutants(60, seed=5)
    assert [(m.source, m.op, m.detail, m.text) for m in a] == [(m.source, m.op, m.detail, m.text) for m in b]
    ops = {m.op for m in FC.mutants(400, seed=5)}
    assert {"dup_key", "broken_file", "removed_file", "removed_other", "value", "rename_key", "delete",
            "typo_value", "hub_under_raw", "dup_entry", "path_trick", "description", "long_string"} <= ops


def test_classifier_tells_a_traceback_from_a_clean_error(monkeypatch, tmp_path) -> None:
    with FC.config_tree(tmp_path / "runs") as tree:
        dup = FC.Mutant("recipe", "recipes/tiny_cpu.yaml", "dup_key", "seed",
                        (FC.ROOT / "recipes/tiny_cpu.yaml").read_text() + "seed: 7\n")
        outcome, note = FC.run_mutant(dup, tree)
        assert outcome == "clean" and "seed" in note and "tiny_cpu.yaml" in note
        same = FC.Mutant("mixture", "mixtures/demo.yaml", "value", "none", (FC.ROOT / "mixtures/demo.yaml").read_text())
        assert FC.run_mutant(same, tree)[0] == "accepted"

        def crash(path):
            raise KeyError("boom")

        monkeypatch.setitem(FC.CHECKS, "mixture", crash)
        assert FC.run_mutant(same, tree)[0] == "traceback"


def test_issue21_mutants_are_all_refused_in_one_short_line(tmp_path) -> None:
    # the targeted kinds only (hub blocks under raw, duplicates, descriptions, path tricks)
    targeted = [m for m in FC.mutants(400, seed=21) if m.must_refuse][:40]
    assert {m.op for m in targeted} >= {"hub_under_raw", "dup_entry", "description", "path_trick"}
    tally = FC.Tally()
    with FC.config_tree(tmp_path / "runs") as tree:
        for m in targeted:
            outcome, message = FC.run_mutant(m, tree)
            tally.add(m, outcome, message[:300], message)
    assert tally.counts["clean"] == len(targeted), tally.summary() + "\n" + "\n".join(tally.bugs)
    assert tally.long_messages == [], tally.long_messages


def test_data_mutants_load_or_give_a_data_error_naming_the_file() -> None:
    counts, bugs = FD.fuzz(24, seed=13, log=lambda _: None)
    assert bugs == [], "\n".join(bugs)
    assert counts["clean"] + counts["ok"] == 24 and counts["clean"] > 0


def test_non_finite_golds_are_refused_by_every_numeric_task() -> None:
    gold = [m for m in FD.mutants(120, seed=21) if m.must_refuse]
    assert {m.task for m in gold} == {"finqa", "convfinqa", "tatqa"}
    with FD.data_tree() as root:
        outcomes = [FD.run_mutant(m, root) for m in gold[:12]]
    assert [o for o, _ in outcomes] == ["clean"] * len(outcomes), outcomes


def test_dry_run_of_a_misspelt_builtin_model_names_the_recipe(tmp_path) -> None:
    # found by `make fuzz` (seed 1): the plan's error named the model folder but not the recipe
    from finbench.train import recipe as R
    from finbench.train import run as TR
    text = (FC.ROOT / "recipes/tiny_cpu.yaml").read_text().replace("builtin:tiny-llama", "bultin:tiny-llama")
    recipe = tmp_path / "typo.yaml"
    recipe.write_text(text)
    with pytest.raises(R.RecipeError, match=r"typo\.yaml: base_model 'bultin:tiny-llama': no such model folder"):
        TR.plan(str(recipe), gpu=False)
