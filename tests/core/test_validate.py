"""The shared validator (finbench.core.validate): one rule and one wording for recipes, mixtures and
sweeps, and short one-line messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from input_files import demo_mixture, parse_mixture, recipe_copy

from finbench import cli
from finbench import mixtures as M
from finbench import sweep as SW
from finbench.core import validate as V
from finbench.train import recipe as R


@pytest.mark.parametrize("value", [{"a": 1}, ["x"], None, 5])
def test_wrong_description_types_are_refused_in_mixtures_and_sweeps(tmp_path, value) -> None:
    data = demo_mixture()
    data["description"] = value
    with pytest.raises(M.MixtureError, match=r"t\.yaml: description: expected a string"):
        parse_mixture(data)
    with pytest.raises(SW.SweepError, match=r"s\.yaml: description: expected a string"):
        SW.load_sweep(str(_sweep(tmp_path, description=value)))
    with pytest.raises(R.RecipeError, match="description"):
        R.load(str(recipe_copy(tmp_path, description=value)))


def _sweep(tmp_path: Path, **over) -> Path:
    spec = {"description": "t", "recipes": ["tiny_cpu"], "mixtures": ["demo"], "seeds": [1],
            "job": "eval_only", "eval": {"tasks": ["fpb"], "splits": ["dev"], "backend": "hf"},
            "store": str(tmp_path / "s.sqlite")}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**spec, **over}, sort_keys=False), encoding="utf-8")
    return path


def test_repeated_entries_are_refused_alike_everywhere(tmp_path) -> None:
    wording = r"duplicate entries \['fpb'\]; list each once"
    with pytest.raises(R.RecipeError, match=rf"r\.yaml: key eval\.tasks: {wording}"):
        R.load(str(recipe_copy(tmp_path, **{"eval.tasks": ["fpb", "fpb"]})))
    with pytest.raises(SW.SweepError, match=rf"s\.yaml: eval\.tasks: {wording}"):
        SW.load_sweep(str(_sweep(tmp_path, eval={"tasks": ["fpb", "fpb"], "splits": ["dev"]})))
    data = demo_mixture()
    files = data["components"]["openorca"]["dataset"]["raw"]["files"]
    files.append(files[0])
    with pytest.raises(M.MixtureError, match=r"raw\.files: duplicate entries \['1M-GPT4-Augmented\.parquet'\]"):
        parse_mixture(data)
    assert V.duplicates(["a", "b", "a", "a"]) == "duplicate entries ['a']; list each once"
    assert V.duplicates(["a", "b"]) is None


@pytest.mark.parametrize("where", ["hyperparameters.learning_rate", "eval.backend", "chat_template"])
def test_messages_about_huge_values_stay_short(tmp_path, where) -> None:
    path = recipe_copy(tmp_path, **{where: "z" * 100_000})
    with pytest.raises(R.RecipeError) as info:
        R.load(str(path))
    message = str(info.value).replace(str(path), "FILE")  # the path is as long as the user made it
    assert message.startswith("FILE: ") and len(message) <= V.MAX_MESSAGE, message[:400]


def test_cli_prints_one_short_line_and_the_whole_error_with_v(tmp_path, capsys, monkeypatch) -> None:
    # no check builds a message this long any more: a stand-in for one that still might
    path = _sweep(tmp_path)
    whole = f"{path}: eval: " + "detail " * 1000 + "expected something else"

    def refuse(name: str):
        raise SW.SweepError(whole)

    monkeypatch.setattr("finbench.sweep.cli.load_sweep", refuse)
    assert cli.main(["sweep", "plan", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and len(err) <= V.MAX_LINE + len("finbench: error: ")
    assert err.startswith(f"finbench: error: {path}: eval: detail") and "expected something else" in err
    with pytest.raises(SW.SweepError) as info:  # -v: the whole message, and where it came from
        cli.main(["-v", "sweep", "plan", str(path)])
    assert str(info.value) == whole


def test_one_line_keeps_the_start_and_the_end() -> None:
    msg = "f.yaml: key: " + "x" * 5000 + " expected a string"
    line = V.one_line(msg)
    assert len(line) <= V.MAX_LINE and line.startswith("f.yaml: key: ") and "expected a string" in line
    assert V.one_line("short\nmessage") == "short message"
