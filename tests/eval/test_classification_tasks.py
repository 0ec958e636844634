"""The classification half of finbench through REAL lm-eval runs on fixture rows."""

from __future__ import annotations

import math

import pytest
from lm_eval import simple_evaluate
from lm_eval.api.model import LM
from sklearn.metrics import f1_score

from eval_plugins.parsers import MISSING
from finbench.data import tasks as T

CLASSIFICATION = ["fpb", "fiqa_sa", "tfns", "twitter_topic", "headline"]
METRICS = ["score", "acc", "f1_weighted", "f1_macro", "missing_rate"]


class ScriptedLM(LM):
    """A stand-in model with known answers: chatty correct answers on even docs, junk on odd."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def generate_until(self, requests):
        out = []
        for req in requests:
            self.seen.append(req.args[0])
            doc = req.doc
            out.append(
                f" Well, I think: {doc['label'].upper()}!" if req.doc_id % 2 == 0 else " hmm, hard to say"
            )
        return out

    def loglikelihood(self, requests):
        # The gold continuation gets the best score on even docs, the first choice otherwise.
        res = []
        for req in requests:
            cont = req.args[1].strip()
            gold = req.doc["label"]
            best = gold if req.doc_id % 2 == 0 else req.doc["choices"][0]
            res.append((0.0 if cont == best else -5.0, cont == best))
        return res

    def loglikelihood_rolling(self, requests):  # pragma: no cover - unused by finbench
        raise NotImplementedError


def test_every_task_has_both_variants():
    infos = T.discover()
    for name in CLASSIFICATION:
        assert infos[name].output_type == "generate_until"
        assert infos[f"{name}_mc"].output_type == "multiple_choice"
        assert infos[name].source.get("raw") and infos[name].source.get("hub")


@pytest.mark.slow
def test_tiny_model_runs_every_task_and_variant(fixture_data, tiny_llama, task_manager):
    names = CLASSIFICATION + [f"{n}_mc" for n in CLASSIFICATION]
    out = simple_evaluate(
        model="hf",
        model_args={"pretrained": str(tiny_llama), "device": "cpu"},
        tasks=names,
        task_manager=task_manager,
        limit=6,
        batch_size=8,
        apply_chat_template=True,
    )
    for name in CLASSIFICATION:
        res = out["results"][name]
        for metric in METRICS:
            for filt in ("tolerant", "strict"):
                value = res[f"{metric},{filt}"]
                assert 0.0 <= value <= 1.0, (name, metric, filt, value)
        mc = out["results"][f"{name}_mc"]
        assert 0.0 <= mc["acc,none"] <= 1.0
        assert mc["missing_rate,none"] == 0.0
    # generation budgets are tight: a label is a few tokens
    assert out["configs"]["fpb"]["generation_kwargs"]["max_gen_toks"] <= 16


def test_scores_through_lm_eval_match_sklearn(fixture_data, task_manager):
    lm = ScriptedLM()
    out = simple_evaluate(
        model=lm, tasks=["fpb", "fpb_mc", "headline"], task_manager=task_manager, log_samples=True
    )
    test = T.split_docs(T.load_task("fpb"), "test")
    gold = [d["label"] for d in test]
    pred_tolerant = [g if i % 2 == 0 else MISSING for i, g in enumerate(gold)]
    res = out["results"]["fpb"]
    labels = sorted(set(gold))
    assert res["acc,tolerant"] == pytest.approx(sum(i % 2 == 0 for i in range(len(gold))) / len(gold))
    assert res["f1_macro,tolerant"] == pytest.approx(
        f1_score(gold, pred_tolerant, labels=labels, average="macro")
    )
    assert res["missing_rate,tolerant"] == pytest.approx(sum(i % 2 for i in range(len(gold))) / len(gold))
    # strict mode rejects the chatty answers: everything is missing, and that is visible
    assert res["missing_rate,strict"] == 1.0 and res["acc,strict"] == 0.0
    mc = out["results"]["fpb_mc"]
    pred_mc = [g if i % 2 == 0 else "negative" for i, g in enumerate(gold)]
    assert mc["f1_weighted,none"] == pytest.approx(f1_score(gold, pred_mc, average="weighted"))
    # headline: score is the mean over question types, which differs from pooled weighted F1
    hl = out["results"]["headline"]
    assert not math.isclose(hl["score,tolerant"], hl["f1_weighted,tolerant"])
    # the prompt the model saw carries the answer prefix (the model answers first)
    assert all(p.endswith("The sentiment is") or p.endswith("The answer is") for p in lm.seen)


def test_training_messages_are_the_eval_prompt(fixture_data):
    task = T.load_task("fpb")
    doc = T.split_docs(task, "test")[0]
    msgs = T.training_messages(task, doc)
    assert msgs[0] == {"role": "user", "content": task.doc_to_text(doc)}
    assert msgs[-1] == {"role": "assistant", "content": f"The sentiment is {doc['label']}"}
    # lm-eval's own plain-text eval context is the training prompt up to the answer
    context = task.fewshot_context(doc, num_fewshot=0, gen_prefix=task.doc_to_prefix(doc))
    assert context == msgs[0]["content"] + msgs[1]["content"][: len("The sentiment is")]
