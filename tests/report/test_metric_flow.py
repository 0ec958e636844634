"""A declared metric flows from its one declaration to the report: MCC (eval_plugins.metrics.METRICS)
through a REAL lm-eval run, the sweep's record of it, the bootstrap statistics and the report."""

from __future__ import annotations

import csv
import dataclasses
import math

import pytest
from lm_eval import simple_evaluate
from lm_eval.api.model import LM
from sklearn.metrics import matthews_corrcoef

from eval_plugins import metrics as EM
from eval_plugins.parsers import MISSING
from finbench import sweep as SW
from finbench.data import tasks as T
from finbench.eval import evaluate as E
from finbench.report import build as RP
from finbench.report import stats as S
from finbench.sweep import scoring


class ScriptedLM(LM):
    """Known answers: the gold label, a wrong label, or junk (missing), by document."""

    def generate_until(self, requests):
        out = []
        for req in requests:
            doc, k = req.doc, req.doc_id % 3
            wrong = next(c for c in doc["choices"] if c != doc["label"])
            out.append(f" {doc['label']}" if k == 0 else f" {wrong}" if k == 1 else " no idea")
        return out

    def loglikelihood(self, requests):  # pragma: no cover - generative tasks only
        raise NotImplementedError

    def loglikelihood_rolling(self, requests):  # pragma: no cover
        raise NotImplementedError


def _store(tmp_path, split_eval: dict) -> SW.Store:
    ev = {"tasks": ["fpb"], "general": [], "splits": ["test"], "limit": None, "backend": "hf",
          "batch_size": 4, "num_fewshot": None}
    runs = [SW.RunSpec(key=f"k-{seed}", sweep="mcc", recipe="r1", recipe_path="/r1.yaml", mixture="fpb",
                       seed=seed, job="train_eval", eval=ev, components={"fpb": "fpb"}, recipe_sha="x",
                       mixture_sha="fpb") for seed in (1, 2)]
    path = tmp_path / "sweep.sqlite"
    sw = SW.Sweep(name="mcc", path=path.with_suffix(".yaml"), description="", recipes=["r1"], mixtures=["fpb"],
                  seeds=[1, 2], base_eval=False, eval=ev, job="train_eval", ray={}, store=path, runs=runs)
    with SW.Store(path) as st:
        st.register(sw)
        for spec in runs:
            st.mark_running(spec)
            st.record(spec, {"evals": {"test": split_eval}, "seconds": 1.0, "model_dir": "/m"})
    return path


def test_mcc_flows_from_its_declaration_to_the_report(fixture_data, task_manager, tmp_path) -> None:
    assert "mcc" in EM.METRICS.names  # the one declaration; no template, statistics or report edit
    out = simple_evaluate(model=ScriptedLM(), tasks=["fpb"], task_manager=task_manager, log_samples=True)
    docs = T.split_docs(T.load_task("fpb"), "test")
    golds = [d["label"] for d in docs]
    preds = [g if i % 3 == 0 else next(c for c in d["choices"] if c != g) if i % 3 == 1 else MISSING
             for i, (g, d) in enumerate(zip(golds, docs, strict=True))]
    expected = matthews_corrcoef(golds, preds)
    assert -1.0 < expected < 1.0 and expected != 0.0
    # lm-eval: reported under every filter, with the declared direction
    assert out["results"]["fpb"]["mcc,tolerant"] == pytest.approx(expected)
    assert out["higher_is_better"]["fpb"]["mcc"] is True

    # the sweep: results and samples as finbench.eval writes them, collected as a run records them
    E.write_results(out, tmp_path)
    split_eval = scoring.collect(tmp_path, ["fpb"])
    assert split_eval.aggregations["fpb"]["mcc"] == ("eval_plugins.metrics.mcc", True)
    store = _store(tmp_path, dataclasses.asdict(split_eval))

    # the statistics: the declared aggregation recomputed on resamples (the generic path)
    items = _items(split_eval)
    assert S.Metric("eval_plugins.metrics.mcc", items).kind == "generic"
    ci = S.bootstrap_ci("eval_plugins.metrics.mcc", [items], n_resamples=300)
    assert ci.estimate == pytest.approx(expected) and ci.low < expected < ci.high

    # the report on --metric mcc: the per-task table and CSV carry it with its CI
    md = RP.build_report(store, tmp_path / "report", metric="mcc", resamples=300).read_text()
    assert "- metric: `mcc` with the `tolerant` parser" in md
    rows = list(csv.DictReader((tmp_path / "report" / "per_task.csv").open()))
    (row,) = [r for r in rows if r["metric"] == "mcc" and r["filter"] == "tolerant"]
    assert float(row["mean"]) == pytest.approx(expected, abs=1e-5)
    assert float(row["low"]) < float(row["mean"]) < float(row["high"]) and int(row["n_items"]) == len(docs)
    assert not math.isnan(float(row["low"]))


def _items(split_eval) -> list[tuple[str, str, str]]:
    """The tolerant filter's (group, gold, prediction) items, in document order."""
    rows = sorted((i for i in split_eval.items if i["filter"] == "tolerant"), key=lambda i: i["doc_id"])
    return [tuple(next(iter(i["metrics"].values()))) for i in rows]
