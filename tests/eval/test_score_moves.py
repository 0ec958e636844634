"""The demo's one-line explanations of score drops, on synthetic lm-eval sample logs; per-split limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finbench import sweep as S
from finbench.eval import score_moves as SM
from finbench.sweep.model import split_limit

ROOT = Path(__file__).resolve().parents[2]
MISSING = "[missing]"


def write_samples(folder: Path, task: str, items: list[tuple[str, str, str]]) -> Path:
    """Sample records as lm-eval 0.4 logs them: one per doc and filter, the item under each metric."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, item in enumerate(items):
        for filt in ("tolerant", "strict"):
            pred = item[2] if filt == "tolerant" else MISSING
            rec = {"doc_id": i, "filter": filt, "metrics": ["score", "acc", "missing_rate"],
                   "filtered_resps": [pred], "target": item[1]}
            rec.update({m: [item[0], item[1], pred] for m in rec["metrics"]})
            rows.append(json.dumps(rec))
    (folder / f"samples_{task}.jsonl").write_text("\n".join(rows) + "\n")
    return folder


def write_mixture(path: Path, answers: dict[str, list[str]]) -> Path:
    lines = []
    for task, outs in answers.items():
        for out in outs:
            msgs = [{"role": "user", "content": f"a {task} question"}, {"role": "assistant", "content": out}]
            lines.append(json.dumps({"messages": msgs, "task": task}))
    path.write_text("\n".join(lines) + "\n")
    return path


GOLD = ["negative"] * 10 + ["neutral"] * 2 + ["positive"] * 12


def test_collapse_onto_a_label_carried_from_a_trained_task(tmp_path):
    base = write_samples(tmp_path / "base", "fiqa_sa", [("", g, p) for g, p in
                                                        zip(GOLD, ["negative"] * 12 + ["positive"] * 12, strict=True)])
    tuned = write_samples(tmp_path / "tuned", "fiqa_sa", [("", g, "neutral") for g in GOLD])
    mix = write_mixture(tmp_path / "mix.jsonl", {
        "fpb": ["The sentiment is neutral"] * 36 + ["The sentiment is positive"] * 16 + ["The sentiment is negative"] * 8,
        "orcamath": ["12 / 3 = 4, so $4."] * 30,
        "openorca": ["It is not positive or negative."] * 5,  # names two labels: not an answer
    })
    trained = SM.training_answers(mix, ["negative", "neutral", "positive"])
    assert trained == {"fpb": {"neutral": 36, "positive": 16, "negative": 8}}
    b_items, t_items = SM.read_items(base, "fiqa_sa"), SM.read_items(tuned, "fiqa_sa")
    assert len(b_items) == len(t_items) == 24  # the strict filter's records are skipped
    line = SM.explain("fiqa_sa", 0.297, 0.003, b_items, t_items, trained, missing=MISSING)
    assert line == (
        "fiqa_sa: 0.297 -> 0.003: after training 24/24 answers are 'neutral' (gold: 12 positive, "
        "10 negative, 2 neutral; before training: 12 negative, 12 positive) - fiqa_sa had no training "
        "rows; 'neutral' is 36/60 (60%) of fpb's training answers: a label prior carried over from fpb, "
        "not broken training"
    )


def test_collapse_on_a_trained_task_names_its_own_prior(tmp_path):
    items = [("", g, "neutral") for g in GOLD]
    trained = {"fpb": SM.Counter({"neutral": 30, "positive": 10})}
    line = SM.explain("fpb", 0.4, 0.1, [("", g, g) for g in GOLD], items, trained, missing=MISSING)
    assert "'neutral' is 30/40 (75%) of fpb's own training answers" in line


def test_missing_answers_and_partial_drop(tmp_path):
    gold = ["yes", "no"] * 10
    line = SM.explain("headline", 0.6, 0.1, [("q", g, g) for g in gold], [("q", g, MISSING) for g in gold], {},
                      missing=MISSING)
    assert line == ("headline: 0.600 -> 0.100: after training 20/20 answers name no label (before: 0/20); "
                    "the trained model stopped answering in the label format")
    tuned = [("q", g, "yes") if i < 10 else ("q", g, g) for i, g in enumerate(gold)]  # 75% 'yes': no collapse
    line = SM.explain("headline", 0.6, 0.4, [("q", g, g) for g in gold], tuned, {}, missing=MISSING)
    assert line.startswith("headline: 0.600 -> 0.400: correct answers 20/20 -> 15/20, answers now 15 yes, 5 no")
    assert line.endswith("most new errors: gold 'no' answered 'yes' (+5)")


def test_collapse_among_the_answers_given():
    gold = ["no"] * 6 + ["yes"] * 4
    tuned = [("q", g, "no") for g in gold[:7]] + [("q", g, MISSING) for g in gold[7:]]
    trained = {"headline": SM.Counter({"no": 59, "yes": 41})}
    line = SM.explain("headline", 0.57, 0.50, [("q", g, g) for g in gold], tuned, trained, missing=MISSING)
    assert line == ("headline: 0.570 -> 0.500: after training 7/10 answers are 'no' and 3 name no label "
                    "(gold: 6 no, 4 yes; before training: 6 no, 4 yes) - 'no' is 59/100 (59%) of headline's "
                    "own training answers: the model learned the label prior, not yet the text")


def test_many_labels_are_summarised():
    gold = [f"topic {i}" for i in range(20)]
    tuned = [("", g, "topic 0") if i < 8 else ("", g, MISSING) for i, g in enumerate(gold)]
    line = SM.explain("twitter_topic", 0.6, 0.1, [("", g, g) for g in gold], tuned, {}, missing=MISSING)
    assert "(gold: 1 topic 0, 1 topic 1, 1 topic 10, 1 topic 11, 16 more labels;" in line


def test_unsurprising_moves_get_no_line():
    assert not SM.surprising(0.50, 0.47) and SM.surprising(0.50, 0.44) and SM.surprising(0.08, 0.03)
    assert SM.explain("fpb", 0.5, 0.6, [("", "a", "a")], [("", "a", "a")], {}) is None


def test_sweep_limit_per_split(tmp_path):
    text = (ROOT / "recipes" / "sweeps" / "mini.yaml").read_text()
    sweep = S.load_sweep("mini")
    assert sweep.eval["limit"] == {"dev": 60, "test": 300}
    assert split_limit(sweep.eval, "test") == 300 and split_limit(sweep.eval, "dev") == 60
    assert split_limit({"limit": 25}, "dev") == 25 and split_limit({"limit": None}, "test") is None
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("limit: {dev: 60, test: 300}", "limit: {dev: 60, tset: 300}"))
    with pytest.raises(S.SweepError, match=r"eval.limit: \['tset'\]: expected split names"):
        S.load_sweep(str(bad))
    bad.write_text(text.replace("limit: {dev: 60, test: 300}", "limit: {dev: 60, test: -3}"))
    with pytest.raises(S.SweepError, match=r"eval.limit.test: expected a fraction in \(0, 1\)"):
        S.load_sweep(str(bad))
