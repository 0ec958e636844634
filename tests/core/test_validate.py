"""Issue 21, items 2-6: strict inputs, one shared validator (finbench.core.validate), short messages,
byte-identical mixture rebuilds and group-readable outputs. Each test failed on the code before."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from finbench import cli
from finbench import mixtures as M
from finbench import sweep as SW
from finbench.core import validate as V
from finbench.core.files import write_atomic
from finbench.train import recipe as R

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_DATA = ROOT / "tests" / "fixtures" / "data"
PLACEHOLDER = "__gold__"


@pytest.fixture
def data_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the fixture data as FINBENCH_DATA_DIR, with its own task cache."""
    root = tmp_path / "data"
    shutil.copytree(FIXTURE_DATA, root, ignore=shutil.ignore_patterns("*.parquet", "*.py"))
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(root))
    monkeypatch.setenv("FINBENCH_CACHE", str(tmp_path / "cache"))
    return root


def _set_gold(path: Path, set_placeholder, literal: str) -> None:
    """Rewrite a JSON data file with one gold written as the JSON text `literal` (1e400, NaN)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    set_placeholder(data)
    path.write_text(json.dumps(data).replace(f'"{PLACEHOLDER}"', literal), encoding="utf-8")


def _one_line_error(capsys, tmp_path: Path) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    # about 300 characters besides the file's path (as long as the user made it)
    assert len(err.replace(str(tmp_path), "TMP")) <= V.MAX_MESSAGE + len("finbench: error: "), err
    return err


# ------------------------------------------------------------------------------------------------
# 2. non-finite golds


def _first_arithmetic(data: list) -> None:
    q = next(q for ctx in data for q in ctx["questions"] if q["answer_type"] == "arithmetic")
    q["answer"] = PLACEHOLDER


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "1e400", "NaN", '"1e400"', "null"])
def test_tatqa_non_finite_gold_is_a_one_line_data_error(data_copy, tmp_path, capsys, literal) -> None:
    _set_gold(data_copy / "tatqa/tatqa_dataset_train.json", _first_arithmetic, literal)
    assert cli.main(["data", "tatqa"]) == 2
    err = _one_line_error(capsys, tmp_path)
    assert "tatqa_dataset_train.json" in err and "uid" in err and "answer" in err


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "1e400", "null", '"abc"', '""'])
@pytest.mark.parametrize("where", ["qa", "exe_ans_list"])
def test_convfinqa_checks_its_gold_as_finqa_does(data_copy, tmp_path, capsys, literal, where) -> None:
    def put(data: list) -> None:
        if where == "qa":
            data[0]["qa"]["exe_ans"] = PLACEHOLDER
        else:
            data[0]["annotation"]["exe_ans_list"][0] = PLACEHOLDER

    _set_gold(data_copy / "convfinqa/train.json", put, literal)
    assert cli.main(["data", "convfinqa"]) == 2
    err = _one_line_error(capsys, tmp_path)
    assert "train.json" in err and "exe_ans" in err
    # FinQA refuses the same value with the same check (finbench.data.raw.finite_gold)
    shutil.copy(FIXTURE_DATA / "convfinqa/train.json", data_copy / "convfinqa/train.json")
    _set_gold(data_copy / "finqa/train.json", lambda d: d[0]["qa"].__setitem__("exe_ans", PLACEHOLDER), literal)
    assert cli.main(["data", "finqa"]) == 2
    assert "exe_ans" in _one_line_error(capsys, tmp_path)


# ------------------------------------------------------------------------------------------------
# 3. a base_model name the OS cannot look up


def _recipe(tmp_path: Path, **over) -> Path:
    data = yaml.safe_load((ROOT / "recipes/tiny_cpu.yaml").read_text(encoding="utf-8"))
    for key, value in over.items():
        block, _, leaf = key.partition(".")
        if leaf:
            data[block][leaf] = value
        else:
            data[key] = value
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["m" * 300, "org/" + "m" * 300, "a\x00b"])
def test_dry_run_of_an_overlong_base_model_is_one_line(tmp_path, capsys, name) -> None:
    path = _recipe(tmp_path, base_model=name)
    assert cli.main(["train", str(path), "--dry-run"]) == 2
    err = _one_line_error(capsys, tmp_path)
    assert "r.yaml: key base_model" in err


# ------------------------------------------------------------------------------------------------
# 4. hub blocks under raw components; description types


def _demo() -> dict:
    return yaml.safe_load((ROOT / "mixtures/demo.yaml").read_text(encoding="utf-8"))


def _parse(data: dict) -> M.Mixture:
    return M.parse_mixture(data, name="t", path=ROOT / "mixtures" / "t.yaml")


@pytest.mark.parametrize(
    ("field", "value"),
    [("split", {"a": 1}), ("split", float("nan")), ("split", None), ("path", "/"),
     ("path", "../../etc/passwd"), ("revision", ""), ("revision", "ma\x00in"), ("revision", None),
     ("name", {"a": 1})],
)
def test_hub_block_of_a_raw_component_is_validated(field, value) -> None:
    data = _demo()
    comp = data["components"]["openorca"]["dataset"]
    assert "raw" in comp  # the raw files are what a build reads here
    comp["hub"][field] = value
    with pytest.raises(M.MixtureError, match=rf"t\.yaml: components\.openorca\.dataset\.hub\.{field}: "):
        _parse(data)


def test_good_hub_blocks_still_pass() -> None:
    data = _demo()
    data["components"]["openorca"]["dataset"]["hub"].update(revision="refs/convert/parquet", split="train[:10%]")
    assert _parse(data).components["openorca"]


@pytest.mark.parametrize("value", [{"a": 1}, ["x"], None, 5])
def test_wrong_description_types_are_refused_in_mixtures_and_sweeps(tmp_path, value) -> None:
    data = _demo()
    data["description"] = value
    with pytest.raises(M.MixtureError, match=r"t\.yaml: description: expected a string"):
        _parse(data)
    with pytest.raises(SW.SweepError, match=r"s\.yaml: description: expected a string"):
        SW.load_sweep(str(_sweep(tmp_path, description=value)))
    with pytest.raises(R.RecipeError, match="description"):
        R.load(str(_recipe(tmp_path, description=value)))


# ------------------------------------------------------------------------------------------------
# 5. repeated entries: the same rule and wording in recipes, mixtures and sweeps


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
        R.load(str(_recipe(tmp_path, **{"eval.tasks": ["fpb", "fpb"]})))
    with pytest.raises(SW.SweepError, match=rf"s\.yaml: eval\.tasks: {wording}"):
        SW.load_sweep(str(_sweep(tmp_path, eval={"tasks": ["fpb", "fpb"], "splits": ["dev"]})))
    data = _demo()
    files = data["components"]["openorca"]["dataset"]["raw"]["files"]
    files.append(files[0])
    with pytest.raises(M.MixtureError, match=r"raw\.files: duplicate entries \['1M-GPT4-Augmented\.parquet'\]"):
        _parse(data)
    assert V.duplicates(["a", "b", "a", "a"]) == "duplicate entries ['a']; list each once"
    assert V.duplicates(["a", "b"]) is None


# ------------------------------------------------------------------------------------------------
# 6. short messages, byte-identical rebuilds, group-readable outputs


@pytest.mark.parametrize("where", ["hyperparameters.learning_rate", "eval.backend", "chat_template"])
def test_messages_about_huge_values_stay_short(tmp_path, where) -> None:
    path = _recipe(tmp_path, **{where: "z" * 100_000})
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


@pytest.fixture
def small_mixture(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(FIXTURE_DATA))
    spec = {"seed": 3, "contamination": {"tasks": ["fpb"], "mode": "drop"},
            "components": {"fpb": {"task": "fpb", "count": 12},
                           "openorca": {**_demo()["components"]["openorca"], "relative_to": ["fpb"]}}}
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def test_a_rebuild_is_byte_identical_and_timings_sit_beside_the_manifest(small_mixture, tmp_path) -> None:
    first = M.build(M.load_mixture(str(small_mixture)), tmp_path / "out", progress=False)
    from finbench.mixtures.build import timings_path

    manifest, jsonl = first.manifest.read_bytes(), first.jsonl.read_bytes()
    assert "build_seconds" not in json.loads(manifest) and "timings_s" not in json.loads(manifest)
    timings = json.loads(timings_path(first.manifest).read_text())
    assert set(timings) == {"build_seconds", "timings_s"} and "build_seconds" in first.summary
    again = M.build(M.load_mixture(str(small_mixture)), tmp_path / "out", progress=False, force=True)
    assert not again.cached
    assert again.manifest.read_bytes() == manifest and again.jsonl.read_bytes() == jsonl


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_respect_the_umask(small_mixture, tmp_path, umask, mode) -> None:
    old = os.umask(umask)
    try:
        res = M.build(M.load_mixture(str(small_mixture)), tmp_path / "out", progress=False)
        single = write_atomic(tmp_path / "x.txt", "x")
    finally:
        os.umask(old)
    for path in (res.jsonl, res.manifest, single):
        assert path.stat().st_mode & 0o777 == mode, path
