"""The mixture language's additions for `paper_exact`: `upsample: false` (cap, never repeat),
`emit: false` (sizing-only), `rounding: floor`, `sampler: shuffle_head`, the `template` format and
the design option `sizing: base`. Real builds on the fixture files (FINBENCH_DATA_DIR)."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import yaml

from finbench import mixtures as M
from finbench.mixtures.formats import parse_format

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"
ORCA_MATH = FIXTURES / "orca_math" / "data" / "train-00000-of-00001.parquet"  # 16 rows
OPENORCA = ["1M-GPT4-Augmented.parquet", "3_5M-GPT3_5-Augmented.parquet"]  # 20 rows


@pytest.fixture(autouse=True)
def fixture_data(monkeypatch):
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(FIXTURES))


def om(**kw) -> dict:
    return {"dataset": {"raw": {"folder": "orca_math", "files": ["data/train-00000-of-00001.parquet"]},
                        "format": {"user": "question", "assistant": "answer"}}, **kw}


def oo(**kw) -> dict:
    return {"dataset": {"raw": {"folder": "openorca", "files": OPENORCA},
                        "format": {"type": "template", "user": ["{system_prompt}", "{question}"],
                                   "assistant": "{response}"}}, **kw}


def build(tmp_path: Path, comps: dict, **top) -> tuple[dict, list[dict]]:
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump({"seed": 7, "contamination": {"mode": "allow", "tasks": ["fpb"]},
                                    "components": comps, **top}))
    res = M.build(str(path), tmp_path / "out", progress=False, force=True)
    return res.summary, [json.loads(x) for x in res.jsonl.read_text().splitlines()]


def taken(summary: dict) -> dict[str, int]:
    return {k: c["rows_taken"] for k, c in summary["components"].items()}


def test_cap_instead_of_upsample_and_sizes_from_the_capped_count(tmp_path):
    capped, _ = build(tmp_path, {"m": om(count=100, upsample=False), "o": oo(relative_to=["m"], upsample=False)})
    assert taken(capped) == {"m": 16, "o": 16}  # min(100, 16); o sized from the capped 16
    assert capped["components"]["m"]["upsampling_factor"] == 1.0
    repeated, _ = build(tmp_path, {"m": om(count=100), "o": oo(relative_to=["m"])})
    assert taken(repeated) == {"m": 100, "o": 100}  # today's default: whole repeats + remainder
    alone, _ = build(tmp_path, {"o": oo(count=50, upsample=False)})  # capped after the pass
    assert taken(alone) == {"o": 20}


def test_sizing_only_component_and_floor_rounding(tmp_path):
    comps = {"m": om(count=9, emit=False), "o": oo(relative_to=["m"], factor=0.5, rounding="floor")}
    summary, rows = build(tmp_path, comps)
    assert taken(summary) == {"o": 4} and len(rows) == 4 and {r["task"] for r in rows} == {"o"}
    assert summary["sizing_only"] == {"m": {"rows_available": None, "size": 9}}
    half_up, _ = build(tmp_path, {"m": om(count=9, emit=False), "o": oo(relative_to=["m"], factor=0.5)})
    assert taken(half_up) == {"o": 5}
    capped, _ = build(tmp_path, {"m": om(count=99, emit=False, upsample=False), "o": oo(relative_to=["m"])})
    assert taken(capped) == {"o": 16} and capped["sizing_only"]["m"] == {"rows_available": 16, "size": 16}


def test_shuffle_head_takes_the_first_rows_of_datasets_shuffle(tmp_path):
    summary, rows = build(tmp_path, {"m": om(count=5)}, sampler="shuffle_head")
    ds = datasets.load_dataset("parquet", data_files=str(ORCA_MATH), split="train").shuffle(seed=7)
    assert {r["messages"][0]["content"] for r in rows} == set(ds.select(range(5))["question"])
    _, hashed = build(tmp_path, {"m": om(count=5, sampler="hash")}, sampler="shuffle_head")
    assert {r["messages"][0]["content"] for r in hashed} != set(ds.select(range(5))["question"])


def test_template_substitutes_columns_by_regex_only():
    fmt = parse_format("m.yaml", "format", {
        "type": "template", "user": ["Say {{x}} {0} {question.__class__} {question}", "{empty}"],
        "assistant": "{label}", "values": {"label": {0: "negative"}}})
    msgs, why = fmt.render({"question": "q?", "empty": "", "label": 0})
    assert msgs == [{"role": "user", "content": "Say {x} {0} {question.__class__} q?"},
                    {"role": "assistant", "content": "negative"}], why
    # a value outside the map is kept, as the study's `MAP.get(x, x)`; a missing column is malformed
    assert fmt.render({"question": "q", "empty": "", "label": "neutral"})[0][1]["content"] == "neutral"
    assert fmt.render({"question": "q", "empty": "", "label": 5})[0][1]["content"] == "5"
    assert fmt.render({"question": "q", "empty": ""}) == (None, "'label' missing or not text")
    after = parse_format("m.yaml", "format", {"type": "template", "user": "{query}", "assistant": "{a}",
                                              "after": {"query": "\nContext: "}})
    assert after.render({"query": "P\nContext: c\nQ", "a": "1"})[0][0]["content"] == "c\nQ"
    assert after.render({"query": "no marker", "a": "1"})[0] is None


@pytest.mark.parametrize("comp,top,key,words", [
    ({"x": {"task": "fpb", "count": 1, "upsample": "no"}}, {}, "components.x.upsample", "true or false"),
    ({"x": {"task": "fpb", "count": 1, "sampler": "shufle_head"}}, {}, "components.x.sampler", "shuffle_head"),
    ({"x": {"task": "fpb", "count": 1}}, {"sampler": "random"}, "sampler", "expected one of"),
    ({"x": {"task": "fpb", "count": 1, "rounding": "floor"}}, {}, "components.x.rounding", "only valid with relative_to"),
    ({"x": {"task": "fpb", "count": 1, "emit": False}}, {}, "components", "emit: false"),
    ({"x": {"dataset": {"file": "a.jsonl", "format": {"type": "template", "user": "{a}", "assistant": "{b}",
                                                      "values": {"c": {0: "n"}}}}, "count": 1}}, {},
     "components.x.dataset.format", "no template uses"),
])
def test_bad_new_keys_name_the_file_and_key(tmp_path, comp, top, key, words):
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump({"components": comp, **top}))
    with pytest.raises(M.MixtureError) as err:
        M.load_mixture(str(path))
    assert str(err.value).startswith(str(path)) and key in str(err.value) and words in str(err.value), err.value


def test_design_sizing_base_keeps_absent_components_as_sizing_only(tmp_path):
    base = {"seed": 1, "contamination": {"mode": "allow", "tasks": ["fpb"]},
            "components": {"f": {"task": "fpb", "count": 10}, "m": om(count=6),
                           "o": oo(relative_to=["f", "m"])}}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    design = tmp_path / "d.yaml"
    for sizing, want in (("base", {"f"}), ("narrow", set())):
        design.write_text(yaml.safe_dump({"design": "d", "base": "base.yaml", "members": ["pairs"], "sizing": sizing}))
        member = M.generate_design(design)["m+o"]
        assert {c for c, s in member["components"].items() if s.get("emit") is False} == want
        rel = member["components"]["o"]["relative_to"]
        assert rel == (["f", "m"] if sizing == "base" else ["m"])
    design.write_text(yaml.safe_dump({"base": "base.yaml", "sizing": "wide"}))
    with pytest.raises(M.MixtureError, match=r"d.yaml: sizing: expected one of \['narrow', 'base'\]"):
        M.generate_design(design)
