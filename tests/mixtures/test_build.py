"""Mixture builder: exact sizes, determinism, the study's design, contamination guard, bad input.

Offline: FINBENCH_DATA_DIR points at tests/fixtures/data (FPB fixture + our own OpenOrca /
Orca-Math samples in the hub schema), and every external source is read through `datasets`.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from finbench import mixtures as M
from finbench.data import tasks as T

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"
PAPER55 = M.MIXTURES_DIR / "designs" / "paper55.yaml"
OPENORCA_FMT = {"system": "system_prompt", "user": "question", "assistant": "response"}
PAPER_INGREDIENTS = [
    "headline", "fpb", "ner_cls", "convfinqa", "finqa", "twitter_topic", "tfns", "openorca",
    "orcamath",
]


@pytest.fixture(autouse=True)
def fixture_data(monkeypatch):
    monkeypatch.setenv("FINBENCH_DATA_DIR", str(FIXTURES))


def write_mixture(tmp_path: Path, spec: dict, name: str = "mix") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def openorca(**size) -> dict:
    return {
        "dataset": {
            "raw": {"folder": "openorca",
                    "files": ["1M-GPT4-Augmented.parquet", "3_5M-GPT3_5-Augmented.parquet"]},
            "format": OPENORCA_FMT,
        },
        **size,
    }


def orcamath(**size) -> dict:
    return {
        "dataset": {
            "raw": {"folder": "orca_math", "files": ["data/train-00000-of-00001.parquet"]},
            "format": {"user": "question", "assistant": "answer"},
        },
        **size,
    }


def spec(components: dict, seed: int = 7, contamination="drop") -> dict:
    cont = contamination if isinstance(contamination, dict) else {"mode": contamination}
    return {"seed": seed, "contamination": {"tasks": ["fpb"], **cont}, "components": components}


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def module_data():
    """FINBENCH_DATA_DIR for module-scoped fixtures, restored afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FINBENCH_DATA_DIR", str(FIXTURES))
        yield


@pytest.fixture(scope="module")
def fpb_train(module_data) -> list[dict]:
    return T.split_docs(T.load_task("fpb"), "train")


# -- sources ----------------------------------------------------------------------------------


def test_fixture_samples_have_the_hub_schema_and_load_through_datasets(tmp_path):
    import datasets

    oo = datasets.load_dataset(
        "parquet", data_files=[str(p) for p in sorted((FIXTURES / "openorca").glob("*.parquet"))],
        split="train",
    )
    assert oo.column_names == ["id", "system_prompt", "question", "response"]
    assert len(oo) == 20 and any(r == "" for r in oo["system_prompt"])
    om = datasets.load_dataset(
        "parquet", data_files=str(FIXTURES / "orca_math/data/train-00000-of-00001.parquet"),
        split="train",
    )
    assert om.column_names == ["question", "answer"] and len(om) == 16

    mix = M.parse_mixture(spec({"oo": openorca(count=3)}), name="t", path=tmp_path / "t.yaml")
    src = M.DatasetSource(mix.components["oo"], mix.where)
    src.check_schema()
    rows = [r for b in src.batches() for r in b]
    assert src.total == len(rows) == 20
    msgs, _ = src.render(rows[1])  # a row with a system prompt -> a system message
    assert [m["role"] for m in msgs] == ["system", "user", "assistant"]
    empty_sys = next(r for r in rows if r["system_prompt"] == "")
    assert [m["role"] for m in src.render(empty_sys)[0]] == ["user", "assistant"]


def test_parquet_and_jsonl_rows_match_datasets_order(tmp_path):
    """Local Parquet is read with pyarrow record batches: same rows, same order as `datasets`."""
    import datasets

    files = [str(p) for p in sorted((FIXTURES / "openorca").glob("*.parquet"))]
    mix = M.parse_mixture(spec({"oo": openorca(count=3)}), name="t", path=tmp_path / "t.yaml")
    src = M.DatasetSource(mix.components["oo"], mix.where)
    ours = [r for b in src.batches() for r in b]
    ref = list(datasets.load_dataset("parquet", data_files=files, split="train", streaming=True))
    assert ours == ref
    jl = tmp_path / "oo.jsonl"
    jl.write_text("".join(json.dumps(r) + "\n" for r in ref))
    jmix = M.parse_mixture(
        spec({"oo": {"dataset": {"file": str(jl), "format": OPENORCA_FMT}, "count": 3}}), name="j"
    )
    assert [r for b in M.DatasetSource(jmix.components["oo"], jmix.where).batches() for r in b] == ref


def test_split_docs_matches_row_iteration():
    task = T.load_task("fpb")
    for split in ("train", "dev", "test"):
        rows = [dict(doc) for doc in task.dataset[getattr(task.config, T.SPLIT_KEYS[split])]]
        assert T.split_docs(task, split) == rows


def test_selection_keeps_only_k_rows_in_memory(tmp_path, monkeypatch):
    """Streaming bottom-k: rows outside the current bottom-k are never rendered."""
    src = tmp_path / "big.parquet"
    n = 20000
    pq.write_table(pa.table({"q": [f"question {i}" for i in range(n)],
                             "a": [f"answer {i}" for i in range(n)]}), src)
    comps = {"big": {"dataset": {"file": str(src), "format": {"user": "q", "assistant": "a"}},
                     "count": 50}}
    mix = M.load_mixture(str(write_mixture(tmp_path, spec(comps, contamination="allow"))))
    rendered = []
    real = M.formats.FieldsFormat.render
    monkeypatch.setattr(M.formats.FieldsFormat, "render", lambda fmt, row: rendered.append(1) or real(fmt, row))
    res = M.build(mix, tmp_path / "out", progress=False)
    assert res.summary["components"]["big"]["rows_taken"] == 50
    # expected ~ k * (1 + ln(n / k)) = 350 for uniform keys, plus one stale batch threshold
    assert len(rendered) < 2500, len(rendered)


@pytest.mark.parametrize(
    "fmt,row,roles",
    [
        ("alpaca", {"instruction": "Add.", "input": "2+2", "output": "4"}, ["user", "assistant"]),
        ("alpaca", {"instruction": "Hi", "input": "", "output": "Hello", "system": "Be brief."},
         ["system", "user", "assistant"]),
        ("sharegpt", {"conversations": [{"from": "system", "value": "s"},
                                        {"from": "human", "value": "q"},
                                        {"from": "gpt", "value": "a"}]},
         ["system", "user", "assistant"]),
        ("messages", {"messages": [{"role": "user", "content": "q"},
                                   {"role": "assistant", "content": "a"},
                                   {"role": "user", "content": "q2"},
                                   {"role": "assistant", "content": "a2"}]},
         ["user", "assistant", "user", "assistant"]),
    ],
)
def test_formats_render_to_chat_messages(fmt, row, roles):
    msgs, why = M.render_row(M.parse_format("f", "k", fmt), row)
    assert why == "" and [m["role"] for m in msgs] == roles
    if fmt == "alpaca" and row["input"]:
        assert msgs[-2]["content"] == "Add.\n\n2+2"


@pytest.mark.parametrize(
    "fmt,row,reason",
    [
        ("alpaca", {"instruction": "x", "output": ""}, "'output' missing or empty"),
        ("sharegpt", {"conversations": [{"from": "human", "value": "q"}]}, "must end with an assistant"),
        ("sharegpt", {"conversations": [{"from": "alien", "value": "q"}]}, "unknown role"),
        ("messages", {"messages": "not a list"}, "not a non-empty list"),
        ({"user": "question", "assistant": "answer"}, {"question": "q", "answer": None}, "'answer'"),
    ],
)
def test_malformed_rows_give_a_reason(fmt, row, reason):
    msgs, why = M.render_row(M.parse_format("f", "k", fmt), row)
    assert msgs is None and reason in why


# -- sizes, upsampling, determinism -----------------------------------------------------------


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory, module_data):
    """One build reused by several tests: FPB upsampled, OpenOrca 1x, Orca-Math 0.5x, a fraction."""
    tmp = tmp_path_factory.mktemp("demo_like")
    comps = {
        "fpb": {"task": "fpb", "count": 70},
        "openorca": openorca(relative_to=["fpb"], factor=0.25),
        "orcamath": orcamath(relative_to=["fpb", "openorca"], factor=0.5),
        "oo_half": openorca(fraction=0.5),
    }
    path = write_mixture(tmp, spec(comps))
    res = M.build(M.load_mixture(str(path)), tmp / "out", progress=False)
    return path, res, tmp


def test_exact_counts_with_upsampling_and_relative_sizes(demo_like, fpb_train):
    _, res, _ = demo_like
    rows = read_rows(res.jsonl)
    counts = Counter(r["task"] for r in rows)
    # fpb 70; openorca round(0.25*70)=18; orcamath round(0.5*(70+18))=44 (16 available); 0.5*20=10
    assert counts == {"fpb": 70, "openorca": 18, "orcamath": 44, "oo_half": 10}
    comps = res.summary["components"]
    n_fpb = len(fpb_train)
    assert comps["fpb"]["rows_available"] == n_fpb < 70
    assert comps["fpb"]["whole_repeats"] == 70 // n_fpb
    assert comps["fpb"]["remainder_rows"] == 70 % n_fpb
    assert comps["orcamath"]["upsampling_factor"] == round(44 / 16, 4)
    assert comps["openorca"]["rows_in_source"] == 20 and comps["openorca"]["whole_repeats"] == 1
    # whole repeats + remainder: every distinct row appears `copies` or `copies + 1` times
    per_row = Counter(json.dumps(r["messages"]) for r in rows if r["task"] == "orcamath")
    assert len(per_row) == 16 and sorted(set(per_row.values())) == [2, 3]
    assert sum(1 for v in per_row.values() if v == 3) == 44 - 2 * 16
    assert all(v["rows"] == 0 for v in comps["fpb"]["malformed_skipped"].values())
    assert res.summary["rows"] == len(rows) == 142


def test_training_rows_are_the_tasks_rendered_train_docs(demo_like, fpb_train):
    _, res, _ = demo_like
    task = T.load_task("fpb")
    expected = {json.dumps(T.training_messages(task, d), ensure_ascii=False) for d in fpb_train}
    got = {json.dumps(r["messages"], ensure_ascii=False) for r in read_rows(res.jsonl)
           if r["task"] == "fpb"}
    assert got == expected  # upsampled past the train size: every train doc, nothing else


def test_training_prompt_equals_lm_eval_eval_prompt(fpb_train):
    task = T.load_task("fpb")

    def capture(messages, add_generation_prompt=True):
        return json.dumps(messages)

    for doc in fpb_train[:10]:
        train = T.training_messages(task, doc)
        prefix = task.doc_to_prefix(doc)
        ev = json.loads(task.fewshot_context(
            doc, 0, apply_chat_template=True, fewshot_as_multiturn=True, chat_template=capture,
            gen_prefix=prefix,
        ))
        assert [m["role"] for m in ev] == ["user", "assistant"]
        assert train[0] == ev[0]  # same user turn, byte for byte
        assert ev[1]["content"] == prefix and train[1]["content"] == f"{prefix} {doc['label']}"
        # plain-text eval prompt (no chat template) is the same text too
        plain = task.fewshot_context(doc, 0, gen_prefix=prefix)
        assert plain.startswith(train[0]["content"])


def test_same_inputs_same_bytes_other_seed_other_bytes_and_noop_rebuild(demo_like, tmp_path):
    path, res, _ = demo_like
    again = M.build(M.load_mixture(str(path)), tmp_path / "again", progress=False)
    assert not again.cached and again.jsonl.name == res.jsonl.name
    assert again.jsonl.read_bytes() == res.jsonl.read_bytes()
    mtime = again.jsonl.stat().st_mtime_ns
    noop = M.build(M.load_mixture(str(path)), tmp_path / "again", progress=False)
    assert noop.cached and noop.jsonl.stat().st_mtime_ns == mtime

    other = yaml.safe_load(path.read_text())
    other["seed"] = 8
    opath = write_mixture(tmp_path, other, "mix")  # same name, other seed
    ores = M.build(M.load_mixture(str(opath)), tmp_path / "again", progress=False)
    assert ores.jsonl.name != res.jsonl.name
    assert ores.jsonl.read_bytes() != res.jsonl.read_bytes()
    assert Counter(r["task"] for r in read_rows(ores.jsonl)) == Counter(
        r["task"] for r in read_rows(res.jsonl))


def test_changed_input_file_changes_the_hash(tmp_path):
    src = tmp_path / "a.jsonl"
    src.write_text("".join(json.dumps({"q": f"question {i}", "a": f"answer {i}"}) + "\n"
                           for i in range(10)))
    comps = {"x": {"dataset": {"file": str(src), "format": {"user": "q", "assistant": "a"}},
                   "count": 4}}
    path = write_mixture(tmp_path, spec(comps))
    first = M.build(M.load_mixture(str(path)), tmp_path / "out", progress=False)
    with src.open("a") as fh:
        fh.write(json.dumps({"q": "question 10", "a": "answer 10"}) + "\n")
    second = M.build(M.load_mixture(str(path)), tmp_path / "out", progress=False)
    assert not second.cached and second.jsonl != first.jsonl


def test_samples_are_nested_across_counts(tmp_path):
    """Bottom-k by a per-component hash: a smaller count is a subset of a larger one."""
    small = write_mixture(tmp_path, spec({"openorca": openorca(count=5)}), "small")
    large = write_mixture(tmp_path, spec({"openorca": openorca(count=12)}), "large")
    a = {json.dumps(r["messages"]) for r in read_rows(M.build(str(small), tmp_path / "o").jsonl)}
    b = {json.dumps(r["messages"]) for r in read_rows(M.build(str(large), tmp_path / "o").jsonl)}
    assert len(a) == 5 and len(b) == 12 and a < b


def test_local_jsonl_sharegpt_and_malformed_rows_are_counted(tmp_path):
    rows = [{"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": f"a{i}"}]}
            for i in range(40)]
    rows[3] = {"conversations": [{"from": "human", "value": "only a question"}]}
    src = tmp_path / "chat.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    comps = {"chat": {"dataset": {"file": "chat.jsonl", "format": "sharegpt"}, "count": 50}}
    mix = spec(comps)
    mix["max_malformed"] = 0.05
    res = M.build(str(write_mixture(tmp_path, mix)), tmp_path / "out", progress=False)
    c = res.summary["components"]["chat"]
    assert c["rows_in_source"] == 40 and c["rows_available"] == 39 and c["rows_taken"] == 50
    (reason, info), = c["malformed_skipped"].items()
    assert "assistant" in reason and info == {"rows": 1, "first_indices": [3]}
    assert "only a question" not in res.jsonl.read_text()


# -- contamination guard ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def fpb_test_doc(module_data) -> dict:
    return T.split_docs(T.load_task("fpb"), "test")[0]


def planted(tmp_path: Path, text: str, mode: str) -> Path:
    rows = [{"instruction": f"Write a short note about topic number {i}.", "output": f"Note {i}."}
            for i in range(30)]
    # the test sentence inside a longer instruction (n-gram containment) ...
    rows[5] = {"instruction": f"Classify the tone of this line: {text} Be brief.", "output": "ok"}
    # ... and verbatim (normalised exact match)
    rows[17] = {"instruction": text.upper(), "output": "ok"}
    src = tmp_path / "plant.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    comps = {"plant": {"dataset": {"file": str(src), "format": "alpaca"}, "count": 30}}
    return write_mixture(tmp_path, spec(comps, contamination=mode), f"plant_{mode}")


def test_planted_test_item_fails_the_build_with_a_report(tmp_path, fpb_test_doc):
    path = planted(tmp_path, fpb_test_doc["text"], "fail")
    out = tmp_path / "out"
    with pytest.raises(M.MixtureError) as err:
        M.build(str(path), out, progress=False)
    msg = str(err.value)
    assert str(path) in msg and "contamination" in msg and "2 training row(s)" in msg
    assert f"fpb/test/{fpb_test_doc['id']}" in msg
    assert not list(out.glob("*.jsonl"))  # nothing half-written
    report = json.loads(next(out.glob("*.contamination.json")).read_text())
    assert sorted(r["row"] for r in report) == [5, 17]
    assert {h["match"] for r in report for h in r["hits"]} == {"exact", "ngram"}


def test_planted_test_item_dropped_keeps_exact_counts(tmp_path, fpb_test_doc):
    res = M.build(str(planted(tmp_path, fpb_test_doc["text"], "drop")), tmp_path / "o")
    body = res.jsonl.read_text()
    assert fpb_test_doc["text"] not in body and fpb_test_doc["text"].upper() not in body
    c = res.summary["components"]["plant"]
    assert sorted(d["row"] for d in c["contaminated_dropped"]) == [5, 17]
    assert c["rows_taken"] == 30  # 28 clean rows, upsampled to the requested 30
    res = M.build(str(planted(tmp_path, fpb_test_doc["text"], "allow")), tmp_path / "o")
    assert fpb_test_doc["text"] in res.jsonl.read_text()
    assert len(res.summary["contamination"]["hits_kept"]) == 2


def test_unrelated_text_is_not_flagged():
    items = [M.EvalItem("t", "test", "1", "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in "
                        "the corresponding period in 2007 representing 7.7 % of net sales .")]
    idx = M.ContaminationIndex(items, M.Contamination())
    hits = idx.check([["Operating profit rose sharply."], ["x"]],
                     ["Operating profit rose sharply this year, said the CEO.",
                      "In the corresponding period in 2007 operating profit rose to EUR 13.1 mn "
                      "from EUR 8.7 mn , representing 7.7 % of net sales ."])
    assert hits[0] == []
    assert hits[1] == []  # reordered: shares some words, not half of the 13-grams


# -- the study's design ------------------------------------------------------------------------


def test_design_members_for_any_ingredient_list():
    got = M.design_members(["a", "b", "c", "d"], ["singles", "pairs", "leave_one_out", "all"])
    assert len(got) == 4 + 6 + 4 + 1
    assert got["a+c"] == ["a", "c"] and got["without-b"] == ["a", "c", "d"]
    # with three ingredients, pairs and leave-one-out coincide: kept once
    assert len(M.design_members(["a", "b", "c"], ["singles", "pairs", "leave_one_out", "all"])) == 7


def test_paper55_design_has_exactly_the_studys_members():
    missing = [t for t in PAPER_INGREDIENTS[:7] if t not in T.discover()]
    if missing:
        pytest.skip(f"finance tasks not in tasks/ yet: {missing}")
    members = M.generate_design(PAPER55)
    sets = {frozenset(spec["components"]) for spec in members.values()}
    ing = PAPER_INGREDIENTS
    expected = (
        {frozenset([a]) for a in ing}
        | {frozenset(p) for p in itertools.combinations(ing, 2)}
        | {frozenset(ing) - {a} for a in ing}
        | {frozenset(ing)}
    )
    assert len(members) == 55 and sets == expected
    full = members["all"]["components"]
    assert sum(full[t]["count"] for t in ing[:7]) == 31500
    assert full["openorca"]["relative_to"] == ing[:7] and full["orcamath"]["factor"] == 0.5
    assert members["fpb+openorca"]["components"]["openorca"]["relative_to"] == ["fpb"]
    assert members["openorca"]["components"]["openorca"] == {
        "dataset": full["openorca"]["dataset"], "count": 31500}
    assert members["openorca+orcamath"]["components"]["orcamath"]["count"] == 15750
    mix = M.load_mixture("paper55/without-openorca")
    assert list(mix.components) == ing[:7] + ["orcamath"]
    assert M.resolve_sizes(mix, {})["orcamath"] == 15750
    paper = M.load_mixture("paper_cocktail")
    sizes = M.resolve_sizes(paper, {})
    assert sum(sizes.values()) == 78750 and sizes["openorca"] == 31500


# -- bad input ---------------------------------------------------------------------------------


def _refused_naming_file_and_key(tmp_path, components, key, words):
    """Loading a mixture of `components` fails with a message that starts with its path and names `key`."""
    path = write_mixture(tmp_path, spec(components))
    with pytest.raises(M.MixtureError) as err:
        M.load_mixture(str(path))
    msg = str(err.value)
    assert msg.startswith(str(path)) and key in msg and words in msg, msg


@pytest.mark.parametrize(
    "components,key,words",
    [
        ({"x": {"task": "no_such_task", "count": 5}}, "components.x.task", "unknown finbench task"),
        ({"x": {"task": "fpb", "count": 0}}, "components.x.count", "positive"),
        ({"x": {"task": "fpb", "count": 2.5}}, "components.x.count", "whole number"),
        ({"x": {"task": "fpb", "count": "10"}}, "components.x.count", "number"),
        ({"x": {"task": "fpb", "fraction": -0.1}}, "components.x.fraction", "positive"),
        ({"x": {"task": "fpb", "count": 3, "fraction": 0.5}}, "components.x", "exactly one size"),
        ({"x": {"task": "fpb"}}, "components.x", "exactly one size"),
        ({"x": {"task": "fpb", "count": 3, "factor": 2}}, "components.x.factor", "relative_to"),
        ({"x": {"task": "fpb", "relative_to": ["y"]}, "y": {"task": "fpb", "relative_to": ["z"]},
          "z": {"task": "fpb", "relative_to": ["x"]}}, "relative_to", "circular relative sizes"),
        ({"x": {"task": "fpb", "relative_to": ["x"]}}, "relative_to", "x -> x"),
        ({"x": {"task": "fpb", "relative_to": ["nope"]}}, "components.x.relative_to", "unknown component"),
        ({"x": {"dataset": {"file": "a.csv", "format": "alpaca"}, "count": 1}},
         "components.x.dataset.file", ".parquet"),
        ({"x": {"dataset": {"file": "a.jsonl"}, "count": 1}}, "components.x.dataset.format", "missing"),
        ({"x": {"dataset": {"file": "a.jsonl", "format": "orca"}, "count": 1}},
         "components.x.dataset.format.type", "alpaca"),
        ({"x": {"dataset": {"hub": {"path": "Open-Orca/OpenOrca"}, "format": "alpaca"}, "count": 1}},
         "components.x.dataset.hub.revision", "pin"),
        ({"x": {"task": "fpb", "count": 1, "weight": 2}}, "components.x", "unknown key"),
    ],
)
def test_bad_specs_name_the_file_and_key(tmp_path, components, key, words):
    _refused_naming_file_and_key(tmp_path, components, key, words)


def test_missing_file_and_wrong_columns_fail_before_any_output(tmp_path):
    out = tmp_path / "out"
    comps = {"x": {"dataset": {"file": "missing.jsonl", "format": "alpaca"}, "count": 1}}
    with pytest.raises(M.MixtureError, match=r"mix.yaml: components.x.dataset.file: .*missing"):
        M.build(str(write_mixture(tmp_path, spec(comps))), out)
    comps = {"x": openorca(count=2)}
    comps["x"]["dataset"]["format"] = {"user": "prompt", "assistant": "response"}
    with pytest.raises(M.MixtureError, match=r"components.x.dataset.format: column\(s\) \['prompt'\]"):
        M.build(str(write_mixture(tmp_path, spec(comps))), out)
    monkey_raw = {"x": openorca(count=2)}
    monkey_raw["x"]["dataset"]["raw"]["folder"] = "no_such_folder"
    with pytest.raises(M.MixtureError, match=r"components.x.dataset.raw: .*no_such_folder.*missing"):
        M.build(str(write_mixture(tmp_path, spec(monkey_raw))), out)
    assert not out.exists() or not any(out.iterdir())


def test_too_many_malformed_rows_is_an_error(tmp_path):
    src = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"question": ["q1", "", "q3", None], "answer": ["a", "b", "c", "d"]}), src)
    comps = {"bad": {"dataset": {"file": str(src), "format": {"user": "question", "assistant": "answer"}},
                     "count": 2}}
    with pytest.raises(M.MixtureError, match=r"components.bad: 50.0% of 4 rows are malformed"):
        M.build(str(write_mixture(tmp_path, spec(comps))), tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.jsonl"))


def test_unknown_mixture_name_lists_known_ones():
    with pytest.raises(M.MixtureError, match="unknown mixture 'nope'.*demo"):
        M.load_mixture("nope")


# -- CLI ---------------------------------------------------------------------------------------


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="finbench")
    M.add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_builds_the_demo_mixture(tmp_path, capsys):
    assert cli(["mixture", "build", "demo", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "built:" in out and "requested=60" in out
    jsonl = next(tmp_path.glob("demo-*.jsonl"))
    rows = read_rows(jsonl)
    assert Counter(r["task"] for r in rows) == {"fpb": 60, "openorca": 15, "orcamath": 30}
    assert cli(["mixture", "build", "demo", "--out", str(tmp_path), "--no-progress"]) == 0
    assert "cached:" in capsys.readouterr().out
    assert cli(["mixture", "show", "demo"]) == 0
    assert json.loads(capsys.readouterr().out)["components"]["fpb"] == {"task": "fpb", "count": 60}


def test_cli_design_lists_and_writes_members(tmp_path, capsys):
    design = tmp_path / "d.yaml"
    base = write_mixture(tmp_path, spec({"fpb": {"task": "fpb", "count": 9},
                                         "openorca": openorca(relative_to=["fpb"], factor=2)}), "b")
    design.write_text(yaml.safe_dump({"design": "d", "base": base.name}))
    assert cli(["mixture", "design", str(design)]) == 0
    assert "# 3 mixtures" in capsys.readouterr().out  # fpb, openorca, fpb+openorca (dedup)
    assert cli(["mixture", "design", str(design), "--write", str(tmp_path / "w")]) == 0
    written = sorted(p.name for p in (tmp_path / "w").glob("*.yaml"))
    assert written == ["fpb+openorca.yaml", "fpb.yaml", "openorca.yaml"]
    alone = M.load_mixture(str(tmp_path / "w" / "openorca.yaml"))
    assert alone.components["openorca"].size.count == 18


def test_token_counts_with_a_tokenizer(tmp_path):
    from transformers import AutoTokenizer

    from finbench.train.models import tiny_model

    tok_dir = tiny_model(tmp_path / "tiny", arch="llama")
    comps = {"openorca": openorca(count=25)}  # 20 rows: 5 counted twice
    path = write_mixture(tmp_path, spec(comps, contamination="allow"))
    res = M.build(str(path), tmp_path / "out", tokenizer=str(tok_dir), progress=False)
    tok = AutoTokenizer.from_pretrained(tok_dir)
    expected = sum(
        len(tok.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"])
        for r in read_rows(res.jsonl)
    )
    assert res.summary["components"]["openorca"]["tokens"] == expected == res.summary["tokens"]


# -- CSV / TSV source (a source type added as one module + one registry line) -------------------


def test_csv_and_tsv_sources_build_through_the_real_builder(tmp_path):
    (tmp_path / "qa.csv").write_text(
        'question,answer\nWhat is 2+2?,4\n"Quoted, with a comma",007\nNo answer here,\n', encoding="utf-8"
    )
    (tmp_path / "chat.tsv").write_text("prompt\treply\nHello there\tHi\nPrice?\t1.50\n", encoding="utf-8")
    (tmp_path / "semi.txt.csv").write_text("u;a\nsemi one;x\n", encoding="utf-8")
    comps = {
        "qa": {"dataset": {"csv": "qa.csv", "format": {"user": "question", "assistant": "answer"}},
               "count": 4},
        "chat": {"dataset": {"csv": ["chat.tsv"], "format": {"user": "prompt", "assistant": "reply"}},
                 "count": 2},
        "semi": {"dataset": {"csv": {"files": ["semi.txt.csv"], "delimiter": ";"},
                             "format": {"user": "u", "assistant": "a"}}, "count": 1},
    }
    mix = spec(comps, contamination="allow")
    mix["max_malformed"] = 0.5
    res = M.build(str(write_mixture(tmp_path, mix)), tmp_path / "out", progress=False)
    rows = read_rows(res.jsonl)
    assert Counter(r["task"] for r in rows) == {"qa": 4, "chat": 2, "semi": 1}
    pairs = {(r["messages"][0]["content"], r["messages"][1]["content"]) for r in rows}
    # quoted commas survive, and values stay text ("007" and "1.50", not 7 and 1.5)
    assert pairs == {("What is 2+2?", "4"), ("Quoted, with a comma", "007"), ("Hello there", "Hi"),
                     ("Price?", "1.50"), ("semi one", "x")}
    qa = res.summary["components"]["qa"]
    assert qa["source"]["type"] == "csv" and qa["source"]["delimiter"] == ","
    assert res.summary["components"]["chat"]["source"]["delimiter"] == "\t"
    assert qa["rows_in_source"] == 3 and qa["rows_available"] == 2 and qa["upsampling_factor"] == 2.0
    assert list(qa["malformed_skipped"]) == ["'answer' missing or empty"]
    again = M.build(str(write_mixture(tmp_path, mix)), tmp_path / "out", progress=False)
    assert again.cached and again.jsonl == res.jsonl
    (tmp_path / "chat.tsv").write_text("prompt\treply\nHello there\tHello\nPrice?\t1.50\n", encoding="utf-8")
    changed = M.build(str(write_mixture(tmp_path, mix)), tmp_path / "out", progress=False)
    assert not changed.cached and changed.jsonl != res.jsonl


@pytest.mark.parametrize(
    "csv_value,key,words",
    [
        ("a.jsonl", "components.x.dataset.csv.files", ".csv or .tsv"),
        ({"files": ["a.csv"], "delimiter": ";;"}, "components.x.dataset.csv.delimiter", "one character"),
        ({"files": ["a.csv"], "sep": ";"}, "components.x.dataset.csv", "unknown key"),
        ([], "components.x.dataset.csv.files", "a path"),
    ],
)
def test_bad_csv_sources_name_the_key(tmp_path, csv_value, key, words):
    comps = {"x": {"dataset": {"csv": csv_value, "format": "alpaca"}, "count": 1}}
    with pytest.raises(M.MixtureError) as err:
        M.load_mixture(str(write_mixture(tmp_path, spec(comps))))
    assert key in str(err.value) and words in str(err.value), str(err.value)


def test_csv_wrong_columns_fail_before_the_pass(tmp_path):
    (tmp_path / "qa.csv").write_text("q,a\nx,y\n", encoding="utf-8")
    comps = {"x": {"dataset": {"csv": "qa.csv", "format": {"user": "question", "assistant": "a"}},
                   "count": 1}}
    with pytest.raises(M.MixtureError, match=r"components.x.dataset.format: column\(s\) \['question'\]"):
        M.build(str(write_mixture(tmp_path, spec(comps))), tmp_path / "out")


def test_sources_and_component_keys_come_from_the_registry():
    assert {"task", "file", "csv", "raw", "hub"} <= set(M.REGISTRY)
    assert {"task", "dataset", "count", "fraction", "relative_to", "factor", "rounding",
            "upsample", "emit", "sampler", "pool"} == M.COMPONENT_KEYS
    assert set(M.FORMATS) == {"alpaca", "sharegpt", "messages", "fields", "template"}


# -- did-you-mean and bounds --------------------------------------------------------------------


@pytest.mark.parametrize(
    "components,key,words",
    [
        ({"x": {"task": "fpb", "count": 1, "coutn": 2}}, "components.x", "Did you mean 'count'?"),
        ({"x": {"dataset": {"filees": "a.jsonl", "format": "alpaca"}, "count": 1}},
         "components.x.dataset", "Did you mean 'file'?"),
        ({"x": {"task": "fpbb", "count": 1}}, "components.x.task", "Did you mean 'fpb'"),
        ({"x": {"dataset": {"raw": {"folder": "o", "filees": ["a.parquet"]}, "format": "alpaca"},
                "count": 1}}, "components.x.dataset.raw", "Did you mean 'files'?"),
        ({"x": {"dataset": {"hub": {"path": "a/b", "revison": "main"}, "format": "alpaca"},
                "count": 1}}, "components.x.dataset.hub", "Did you mean 'revision'?"),
        ({"x": {"task": "fpb", "count": 4294967296}}, "components.x.count", "(0, 1,000,000,000]"),
        ({"x": {"task": "fpb", "relative_to": ["y"], "factor": 9223372036854775808},
          "y": {"task": "fpb", "count": 1}}, "components.x.factor", "(0, 1,000]"),
        ({"x": {"task": "fpb", "relative_to": ["y"], "factor": 1e308},
          "y": {"task": "fpb", "count": 1}}, "components.x.factor", "(0, 1,000]"),
        ({"x": {"task": "fpb", "fraction": float("inf")}}, "components.x.fraction", "positive"),
        ({"x": {"dataset": {"raw": {"folder": "o", "files": [["a.parquet"]]}, "format": "alpaca"},
                "count": 1}}, "components.x.dataset.raw.files", "file name"),
        ({"x": {"dataset": {"raw": {"folder": "o", "files": [{"a": 1}]}, "format": "alpaca"},
                "count": 1}}, "components.x.dataset.raw.files", "file name"),
        ({"x": {"dataset": {"file": [["a.jsonl"]], "format": "alpaca"}, "count": 1}},
         "components.x.dataset.file", "a path"),
    ],
)
def test_typos_and_out_of_range_numbers_get_clear_errors(tmp_path, components, key, words):
    _refused_naming_file_and_key(tmp_path, components, key, words)


def test_top_level_typo_and_unknown_mixture_suggest_a_name(tmp_path):
    path = write_mixture(tmp_path, {"componentss": {}, "seed": 1})
    with pytest.raises(M.MixtureError, match="Did you mean 'components'"):
        M.load_mixture(str(path))
    with pytest.raises(M.MixtureError, match="unknown mixture 'dem'.*Did you mean 'demo'"):
        M.load_mixture("dem")


@pytest.mark.parametrize("ingredients", ["[[fpb]]", "[{fpb: 1}]", "!!set {fpb: null}", "[7]"])
def test_design_with_non_name_ingredients_is_a_clean_error(tmp_path, ingredients):
    base = write_mixture(tmp_path, spec({"fpb": {"task": "fpb", "count": 9}}), "b")
    design = tmp_path / "d.yaml"
    design.write_text(f"design: d\nbase: {base.name}\ningredients: {ingredients}\n", encoding="utf-8")
    with pytest.raises(M.MixtureError, match=r"d.yaml: ingredients: expected"):
        M.generate_design(design)


def test_a_broken_design_breaks_neither_list_nor_other_mixtures(tmp_path, monkeypatch, capsys):
    mixdir = tmp_path / "mixtures"
    (mixdir / "designs").mkdir(parents=True)
    write_mixture(mixdir, spec({"fpb": {"task": "fpb", "count": 3}}), "good")
    (mixdir / "designs" / "broken.yaml").write_text("design: [unclosed\n", encoding="utf-8")
    monkeypatch.setenv("FINBENCH_MIXTURES_DIR", str(mixdir))
    assert M.list_mixtures() == ["good"]
    assert "broken.yaml" in capsys.readouterr().err
    assert M.load_mixture("good").components["fpb"].size.count == 3
    with pytest.raises(M.MixtureError, match="unknown mixture 'nope'.*good"):
        M.load_mixture("nope")


def test_temporaries_of_killed_builds_are_removed_by_the_next_build(tmp_path):
    import os
    import time

    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".small-0123456789abcdef.jsonl.k1ll3d.tmp"
    fresh = out / ".small-0123456789abcdef.jsonl.w0rk1n.tmp"  # a build writing right now
    theirs = out / ".notes.txt.tmp"  # not ours: never touched
    for p in (stale, fresh, theirs):
        p.write_text("partial")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(theirs, (old, old))
    path = write_mixture(tmp_path, spec({"openorca": openorca(count=2)}), "small")
    M.build(str(path), out, progress=False)
    assert not stale.exists() and fresh.exists() and theirs.exists()
