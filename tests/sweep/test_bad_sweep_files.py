"""Bad sweep files: every bad value is a SweepError naming the file and key,
with the bound or a did-you-mean; `sweep plan` never shows a traceback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml

from finbench import sweep as SW
from finbench.sweep import store as ST


def _write_sweep(tmp: Path, name: str = "t", **over) -> Path:
    spec = {
        "description": "test sweep",
        "recipes": ["tiny_cpu"],
        "mixtures": ["demo"],
        "seeds": [1],
        "job": "eval_only",
        "eval": {"tasks": ["fpb"], "splits": ["dev"], "limit": 4, "backend": "hf", "batch_size": 4},
        "store": str(tmp / f"{name}.sqlite"),
    }
    spec.update(over)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


EV = {"tasks": ["fpb"], "splits": ["dev"], "backend": "hf"}


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"store": "/"}, r"t\.yaml: store: / is a folder"),
        ({"seeds": [4294967296]}, r"seeds: expected a list of distinct integers in \[0, 4294967295\]"),
        ({"seeds": [-1]}, r"seeds: expected .* in \[0, 4294967295\]"),
        ({"ray": {"num_cpus": 8.5}}, r"ray\.num_cpus: expected a fraction in \[0, 1\] or a whole number up to 1024"),
        ({"ray": {"num_gpus": 1e308}}, r"ray\.num_gpus: .* up to 64, got 1e\+308"),
        ({"ray": {"num_gpus": float("nan")}}, r"ray\.num_gpus"),
        ({"ray": {"num_cpu": 2}}, r"ray\.num_cpu: unknown key\. Did you mean num_cpus\?"),
        ({"ray": {"address": 5}}, r"ray\.address: expected HOST:PORT"),
        ({"slurm": {"gpus": 10**30}}, r"slurm\.gpus: expected an integer in \[0, 64\]"),
        ({"slurm": {"cpus_per_task": 0}}, r"slurm\.cpus_per_task: expected an integer in \[1, 4096\]"),
        ({"slurm": {"time": 10**12}}, r"slurm\.time: expected minutes \(at most 10000000\)"),
        ({"slurm": {"mem": 10**12}}, r"slurm\.mem: expected megabytes \(at most"),
        ({"storee": "x.sqlite"}, r"t\.yaml: storee: unknown key\. Did you mean 'store'\?"),
        ({"mixturees": ["demo"]}, r"mixturees: unknown key\. Did you mean 'mixtures'\?"),
        ({"mixtures": {"desgin": "paper55"}}, r"mixtures\.desgin: unknown key\. Did you mean 'design'\?"),
        ({"eval": {**EV, "limt": 3}}, r"eval\.limt: unknown key\. Did you mean 'limit'\?"),
        ({"eval": {**EV, "limit": float("inf")}}, r"eval\.limit: expected a fraction in \(0, 1\)"),
        ({"eval": {**EV, "limit": 8.5}}, r"eval\.limit: expected a fraction"),
        ({"eval": {**EV, "batch_size": 4294967296}}, r"eval\.batch_size: .*at most 4096"),
        ({"eval": {**EV, "num_fewshot": 10**9}}, r"eval\.num_fewshot: .*at most 100"),
        ({"eval": {**EV, "general": ["gsm8"]}}, r"eval\.general: 'gsm8' is not an lm-eval task.*Did you mean"),
    ],
)
def test_bad_values_are_refused_with_file_key_and_bound(tmp_path, over, match) -> None:
    path = _write_sweep(tmp_path, **over)
    with pytest.raises(SW.SweepError, match=match):
        SW.load_sweep(str(path))


def test_fraction_limits_and_fractional_ray_cpus_are_accepted(tmp_path) -> None:
    path = _write_sweep(tmp_path, ray={"num_cpus": 0.5, "num_gpus": 2},
                        eval={**EV, "limit": 0.25, "general": ["gsm8k"]})
    sweep = SW.load_sweep(str(path))
    assert sweep.eval["limit"] == 0.25 and sweep.ray["num_cpus"] == 0.5


def test_store_that_is_not_a_database_is_a_clean_error(tmp_path, capsys) -> None:
    notdb = tmp_path / "notes.txt"
    notdb.write_text("my notes\n", encoding="utf-8")
    path = _write_sweep(tmp_path, store=str(notdb))
    with pytest.raises(SW.SweepError, match=r"t\.yaml: store: .*notes\.txt exists and is not a SQLite database"):
        SW.load_sweep(str(path))
    assert SW.main(["plan", str(path)]) == 2
    assert "not a SQLite database" in capsys.readouterr().err
    assert notdb.read_text(encoding="utf-8") == "my notes\n"  # untouched
    # the store itself refuses it too (a file replaced after the sweep was read)
    with pytest.raises(SW.SweepError, match=r"notes\.txt: cannot open as the sweep store"):
        ST.Store(notdb)
    blocked = _write_sweep(tmp_path, "b", store=str(notdb / "sweep.sqlite"))
    with pytest.raises(SW.SweepError, match=r"store: .*notes\.txt is a file"):
        SW.load_sweep(str(blocked))


def test_existing_store_and_empty_file_are_accepted(tmp_path) -> None:
    db = tmp_path / "s.sqlite"
    ST.Store(db).close()
    assert ST.is_sqlite(db)
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    for store in (db, empty):
        assert SW.load_sweep(str(_write_sweep(tmp_path, store=str(store)))).store == store
    with sqlite3.connect(db) as con:
        assert con.execute("select value from meta").fetchone()[0] == "1"


def test_run_recipe_refuses_duplicate_keys(tmp_path) -> None:
    """A spec without the recipe's mapping (spooled before it carried one) loads the file, strictly."""
    from finbench.sweep.jobs import run_recipe
    from finbench.train.recipe import RecipeError

    recipe = tmp_path / "r.yaml"
    recipe.write_text("seed: 1\nseed: 2\n", encoding="utf-8")
    spec = SW.RunSpec(key="k" * 20, sweep="s", recipe="r", recipe_path=str(recipe), mixture="demo", seed=1,
                      job="train_eval", eval={}, components={}, recipe_sha="a", mixture_sha="b")
    with pytest.raises(RecipeError, match="seed"):
        run_recipe(spec)


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"mixtures": ["x" * 400]}, "unknown mixture 'xxxx"),
        ({"mixtures": {"design": "x" * 400}}, "mixtures.design: no design file"),
        ({"recipes": ["x" * 400 + ".yaml"]}, "recipe file not found"),
    ],
)
def test_names_too_long_for_the_os_are_clean_errors(tmp_path, capsys, over, match) -> None:
    path = _write_sweep(tmp_path, **over)  # Path.is_file raises OSError (ENAMETOOLONG) for these
    assert SW.main(["plan", str(path)]) == 2
    assert match in capsys.readouterr().err
