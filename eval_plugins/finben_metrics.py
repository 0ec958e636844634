"""FinBen's answer extraction and metrics, computed as PIXIU computes them.

Reference: The-FinAI/PIXIU `src/tasks/flare.py` and `src/tasks/utils.py` @
da45ac467ca3a828621315881e33c68bca3bbb1f (the code behind the FinBen paper, arXiv:2402.12659,
and the Open FinLLM Leaderboard). Each `process_*` below is one PIXIU task class's
`process_results`; each aggregation is the class's `aggregation()` entry of the same name. The
numbers come from the libraries PIXIU calls (scikit-learn, seqeval, rouge-score through
`evaluate`'s rouge), never re-derived by hand. Where PIXIU has a known defect, the faithful figure
keeps PIXIU's name and a corrected one sits beside it under its own name:

- TSA's number regex `[0-9]+(?:\\.[0-9]+)?` drops the minus sign: `rmse` is PIXIU's figure,
  `rmse_signed` parses the sign.
- Stock-movement and credit tasks fall back to a default label, so PIXIU's `missing` is always 0;
  `unparsed` is the share of answers that named no label (before that fallback).

`score` is the task's leaderboard column metric (the row's `finben_score`, set by the loader
from the task YAML), so groups can average one metric across tasks; `score_category` is the value
the leaderboard puts in its family averages. Both follow The-FinAI/Open-Financial-LLMs-Leaderboard
`src/leaderboard/read_evals.py` @856625ff: the overall "Average" is the plain mean of every
task's column value (TSA's RMSE included as it is, MCC as it is), and a family's "Average RM"
takes each MCC as (MCC + 1) / 2 (the leaderboard's `(score + 100) / 2` on its 0-100 scale).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from eval_plugins.registry import MEAN, Metric, declare
from finbench.core import settings

log = logging.getLogger(__name__)
Items = Sequence[Any]
MISSING = "missing"
BERTSCORE_ENV = "FINBENCH_BERTSCORE"  # opt-in: "1" computes BERTScore with BERTSCORE_MODEL
BERTSCORE_MODEL = "bert-base-multilingual-cased"  # PIXIU AbstractiveSummarization.bert_score
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")  # evaluate's rouge default
ROUGE_SEED = 1234  # rouge-score's BootstrapAggregator resamples with numpy's global RNG
TSA_FAITHFUL = re.compile(r"[0-9]+(?:\.[0-9]+)?")  # PIXIU TSA.process_results (sign dropped)
TSA_SIGNED = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?")
TSA_MISSING = -100.0

# PIXIU StockMovement.CHOICE_DICT / DEFAULT (BigData22, ACL18, CIKM18) and German/Australian's.
STOCK = ({"rise": ["yes", "positive"], "fall": ["no", "negative", "neutral"]}, "fall")
CREDIT = ({"good": ["yes", "positive"], "bad": ["no", "negative", "neutral"]}, "good")


# --- answer extraction ---------------------------------------------------------------------------


def first_choice(output: str, choices: Sequence[str], synonyms: dict[str, list[str]] | None = None) -> str | None:
    """PIXIU Classification: the first choice (list order, lower-cased) that is a substring of the
    stripped, lower-cased output; with `synonyms` (StockMovement) a synonym also selects its choice."""
    text = output.strip().lower()
    for choice in choices:
        c = choice.lower()
        if c in text or any(s in text for s in (synonyms or {}).get(c, ())):
            return c
    return None


def _score_item(doc: dict, item: Any) -> tuple[str, Any]:
    return (str(doc.get("finben_score") or ""), item)


def _scored(doc: dict, item: Any, out: dict[str, Any]) -> dict[str, Any]:
    """`out` plus `score` and `score_category` (the same item: they differ only in aggregation)."""
    named = _score_item(doc, item)
    return dict(out, score=named, score_category=named)


def process_classification(doc: dict, results: Sequence[str]) -> dict[str, Any]:
    gold = doc["choices"][doc["gold"]].lower()
    pred = first_choice(results[0], doc["choices"]) or MISSING
    pair = (pred, gold)
    out = {"acc": float(pred == gold), "missing": int(pred == MISSING), "f1": pair, "macro_f1": pair,
           "micro_f1": pair, "mcc": pair}
    return _scored(doc, pair, out)


def _process_defaulted(doc: dict, results: Sequence[str], table: tuple[dict, str]) -> dict[str, Any]:
    synonyms, default = table
    gold = doc["choices"][doc["gold"]].lower()
    found = first_choice(results[0], doc["choices"], synonyms)
    pred = found or default
    pair = (pred, gold)
    out = {"acc": float(pred == gold), "missing": int(pred == MISSING), "unparsed": int(found is None),
           "f1": pair, "macro_f1": pair, "mcc": pair}
    return _scored(doc, pair, out)


def process_stock_movement(doc: dict, results: Sequence[str]) -> dict[str, Any]:
    return _process_defaulted(doc, results, STOCK)


def process_credit(doc: dict, results: Sequence[str]) -> dict[str, Any]:
    return _process_defaulted(doc, results, CREDIT)


def _tsa_number(output: str, pattern: re.Pattern) -> float:
    found = pattern.findall(output.split("\n")[0])
    return float(found[0]) if found else TSA_MISSING


def process_tsa(doc: dict, results: Sequence[str]) -> dict[str, Any]:
    gold = float(doc["answer"])
    faithful = _tsa_number(results[0], TSA_FAITHFUL)
    out = {"rmse": (gold, faithful), "rmse_signed": (gold, _tsa_number(results[0], TSA_SIGNED)),
           "missing": int(faithful == TSA_MISSING)}
    return _scored(doc, (gold, faithful), out)


def process_headlines(doc: dict, results: Sequence[str]) -> dict[str, Any]:
    # PIXIU Headlines: prediction 0 when the stripped output is exactly "Yes", else 1; gold index.
    item = (doc["label_type"], int(results[0].strip() != "Yes"), int(doc["gold"]))
    return _scored(doc, item, {"avg_f1": item})


def ner_labels(entity_string: str, text: str) -> list[str]:
    """PIXIU utils.process_text: `entity, TYPE` lines mapped back onto `text.split()` as BIO tags."""
    entities = [(", ".join(v.split(", ")[:-1]), v.split(", ")[-1]) for v in entity_string.split("\n")]
    words = text.split()
    labels = ["O"] * len(words)
    starts = [0]
    for word in words[:-1]:
        starts.append(starts[-1] + len(word) + 1)
    for entity, kind in entities:
        start = 0
        while True:
            start = text.find(entity, start)
            if not entity or start == -1:
                break
            end = start + len(entity) - 1
            first = next((i for i, s in enumerate(starts) if s >= start), None)
            last = next((i for i, s in enumerate(starts) if s > end), None)
            if first is not None and last is not None:  # PIXIU: StopIteration swallowed, no label
                labels[first] = "B-" + kind
                for i in range(first + 1, last):
                    labels[i] = "I-" + kind
            start = end + 1
    return labels


def process_ner(doc: dict, results: Sequence[str]) -> dict[str, Any]:
    item = (ner_labels(results[0], doc["text"]), list(doc["label"]))
    return _scored(doc, item, {"entity_f1": item})


def process_sequence_labeling(doc: dict, results: Sequence[str]) -> dict[str, Any]:
    item = (list(doc["label"]), results[0], list(doc["token"]), list(doc["finben_tags"]))
    return _scored(doc, item, {"entity_f1": item, "f1": item})


def process_relation(doc: dict, results: Sequence[str]) -> dict[str, Any]:
    item = (list(doc["label"]), results[0])
    return _scored(doc, item, {"precision": item, "recall": item, "f1": item})


def process_qa(doc: dict, results: Sequence[str]) -> dict[str, Any]:
    acc = float(results[0].strip() == doc["answer"])
    return _scored(doc, acc, {"acc": acc})


def process_abstractive(doc: dict, results: Sequence[str]) -> dict[str, Any]:
    item = (doc["answer"], results[0])
    out = {m: item for m in ("rouge1", "rouge2", "rougeL", "bert_score_f1")}
    return _scored(doc, item, out)


def extractive_summary(labels: Sequence[Any], text: str) -> str:
    """PIXIU ExtractiveSummarization.get_sum: the lines of `text` whose label is 1."""
    lines = text.split("\n")
    return "\n".join(lines[i] for i in range(len(lines)) if i < len(labels) and labels[i] == 1)


def process_extractive(doc: dict, results: Sequence[str]) -> dict[str, Any]:
    # PIXIU compares the model's per-line labels as they are split from the output: strings, so
    # `label[index] == 1` never holds for them (the source of ECTSum's 0 for every model).
    gold = extractive_summary(list(doc["label"]), doc["text"])
    pred = extractive_summary(results[0].split("\n"), doc["text"])
    item = (gold, pred)
    out = {m: item for m in ("rouge1", "rouge2", "rougeL", "bert_score_f1")}
    return _scored(doc, item, out)


# --- aggregations ----------------------------------------------------------------------------------


def _pairs(items: Items) -> tuple[list[str], list[str]]:
    preds, golds = zip(*items, strict=True)
    return list(preds), list(golds)


def weighted_f1(items: Items) -> float:
    from sklearn.metrics import f1_score

    preds, golds = _pairs(items)
    return float(f1_score(golds, preds, average="weighted", labels=sorted(set(golds))))


def macro_f1(items: Items) -> float:
    from sklearn.metrics import f1_score

    preds, golds = _pairs(items)
    return float(f1_score(golds, preds, average="macro", labels=sorted(set(golds))))


def micro_f1(items: Items) -> float:
    """The leaderboard's MicroF1 column. PIXIU has no micro aggregator (which value fills that
    column is unconfirmed): sklearn micro F1 over the gold labels, PIXIU's `labels=set(golds)`
    convention, so a `missing` answer counts as a miss, never as a label."""
    from sklearn.metrics import f1_score

    preds, golds = _pairs(items)
    return float(f1_score(golds, preds, average="micro", labels=sorted(set(golds))))


def mcc(items: Items) -> float:
    """PIXIU Classification.matthews_corrcoef: labels indexed over the golds, other answers -1."""
    from sklearn.metrics import matthews_corrcoef

    preds, golds = _pairs(items)
    index = {label: i for i, label in enumerate(sorted(set(golds)))}
    return float(matthews_corrcoef([index.get(g, -1) for g in golds], [index.get(p, -1) for p in preds]))


def _rmse(items: Items) -> float:
    from sklearn.metrics import mean_squared_error

    kept = [(g, max(min(p, 1.0), -1.0)) for g, p in items if p != TSA_MISSING]
    if not kept:
        return math.nan  # PIXIU raises on an empty list; every answer was missing
    golds, preds = zip(*kept, strict=True)
    return float(math.sqrt(mean_squared_error(golds, preds)))


def rmse(items: Items) -> float:
    """PIXIU TSA.rmse: parsed answers only, clipped to [-1, 1] (sign dropped by the faithful parser)."""
    return _rmse(items)


def rmse_signed(items: Items) -> float:
    """TSA RMSE with the sign kept (the corrected parser); otherwise as PIXIU."""
    return _rmse(items)


def avg_f1(items: Items) -> float:
    """PIXIU Headlines.label_avg: weighted F1 (labels [0, 1]) per `label_type`, then the mean."""
    import numpy as np
    from sklearn.metrics import f1_score

    kinds, preds, golds = (np.array(x) for x in zip(*items, strict=True))
    scores = [f1_score(golds[kinds == k], preds[kinds == k], average="weighted", labels=[0, 1])
              for k in sorted(set(kinds.tolist()))]
    return float(np.mean(scores))


def entity_f1_ner(items: Items) -> float:
    from seqeval.metrics import f1_score

    preds, golds = _pairs(items)
    return float(f1_score(golds, preds))


def tagged(output: str, tokens: Sequence[str], n: int, tags: Sequence[str]) -> list[str | None]:
    """PIXIU SequentialLabeling: line i `word:label` counts when word == tokens[i]; the label is
    kept when it is one of the task's tags, else None (PIXIU's -1 in `label_f1`)."""
    known = set(tags)
    out: list[str | None] = [None] * n
    for i, line in enumerate(output.split("\n")[: len(tokens)]):
        parts = line.split(":")
        if len(parts) != 2:
            continue
        word, label = parts
        if word == tokens[i]:
            out[i] = label if label in known else None
    return out


def entity_f1_tokens(items: Items) -> float:
    """PIXIU SequentialLabeling.entity_f1: unparsed or unknown tags become O; seqeval F1."""
    from seqeval.metrics import f1_score

    golds, preds = [], []
    for gold, output, tokens, tags in items:
        golds.append(list(gold))
        preds.append([t or "O" for t in tagged(output, tokens, len(gold), tags)])
    return float(f1_score(golds, preds))


def token_f1(items: Items) -> float:
    """PIXIU SequentialLabeling.label_f1: token-level weighted F1; unparsed tokens are a class of
    their own (-1 there), with no gold support."""
    from sklearn.metrics import f1_score

    golds, preds = [], []
    for gold, output, tokens, tags in items:
        golds += list(gold)
        preds += [t if t is not None else "<unparsed>" for t in tagged(output, tokens, len(gold), tags)]
    return float(f1_score(golds, preds, average="weighted"))


def _relation_sets(items: Items) -> tuple[set[str], set[str]]:
    golds: set[str] = set()
    preds: set[str] = set()
    for gold, output in items:
        golds.update(gold)
        preds.update(output.split("\n"))
    return golds, preds


def relation_precision(items: Items) -> float:
    golds, preds = _relation_sets(items)
    return len(golds & preds) / len(preds)


def relation_recall(items: Items) -> float:
    golds, preds = _relation_sets(items)
    return len(golds & preds) / len(golds) if golds else 0.0


def relation_f1(items: Items) -> float:
    """PIXIU RelationExtraction.cal_f1: P/R/F1 of the split's gold-string set vs output-line set."""
    p, r = relation_precision(items), relation_recall(items)
    return 0.0 if p + r == 0.0 else 2 * p * r / (p + r)


def rouge(items: Items) -> dict[str, float]:
    """`evaluate.load("rouge").compute(predictions, references)` as PIXIU calls it: rouge-score's
    RougeScorer (no stemmer), BootstrapAggregator, the mid F-measure; numpy's RNG seeded for the
    bootstrap and restored after, so the same items give the same numbers."""
    import numpy as np
    from rouge_score import rouge_scorer, scoring

    scorer = rouge_scorer.RougeScorer(rouge_types=list(ROUGE_TYPES), use_stemmer=False)
    aggregator = scoring.BootstrapAggregator()
    for ref, pred in items:
        aggregator.add_scores(scorer.score(ref, pred))
    state = np.random.get_state()
    np.random.seed(ROUGE_SEED)
    try:
        result = aggregator.aggregate()
    finally:
        np.random.set_state(state)
    return {k: float(v.mid.fmeasure) for k, v in result.items()}


def rouge1(items: Items) -> float:
    return rouge(items)["rouge1"]


def rouge2(items: Items) -> float:
    return rouge(items)["rouge2"]


def rougeL(items: Items) -> float:  # noqa: N802 (PIXIU's and evaluate's metric name)
    return rouge(items)["rougeL"]


def bert_score_f1(items: Items) -> float:
    """Opt-in (FINBENCH_BERTSCORE=1): BERTScore F1 with PIXIU's model; NaN with a logged reason
    otherwise, or when the `bert_score` package or the model cannot be had (offline)."""
    if not settings.current().bertscore:  # [settings H3] FINBENCH_BERTSCORE, resolved at the boundary
        log.warning("bert_score_f1 skipped: opt-in, set %s=1 (model %s)", BERTSCORE_ENV, BERTSCORE_MODEL)
        return math.nan
    try:
        from bert_score import score as bert_score
    except ImportError:
        log.warning("bert_score_f1 skipped: the `bert_score` package is not installed")
        return math.nan
    refs, preds = _pairs(items)
    try:
        _, _, f1 = bert_score(list(preds), list(refs), model_type=BERTSCORE_MODEL)
    except Exception as err:  # offline hub, missing weights
        log.warning("bert_score_f1 skipped: %s cannot be loaded (%s)", BERTSCORE_MODEL, type(err).__name__)
        return math.nan
    return float(f1.mean())


def accuracy(items: Items) -> float:
    return float(sum(items) / len(items))


# The leaderboard column metric of each task, by the name its YAML gives in `finben.score`.
SCORE: dict[str, Callable[[Items], float]] = {
    "f1": weighted_f1,
    "micro_f1": micro_f1,
    "mcc": mcc,
    "acc": accuracy,
    "avg_f1": avg_f1,
    "entity_f1_ner": entity_f1_ner,
    "entity_f1": entity_f1_tokens,
    "relation_f1": relation_f1,
    "rouge1": rouge1,
    "rmse": rmse,
}
ACC_FROM_PAIRS = {"acc"}  # classification rows score `acc` from (pred, gold) pairs


def score(items: Items) -> float:
    """The task's leaderboard metric over (metric name, item) pairs (one name per task)."""
    names = {name for name, _ in items}
    if len(names) != 1 or next(iter(names)) not in SCORE:
        raise ValueError(f"finben score: expected one metric name from {sorted(SCORE)}, got {sorted(names)}")
    name = names.pop()
    inner = [item for _, item in items]
    if name in ACC_FROM_PAIRS and inner and isinstance(inner[0], tuple):
        return float(sum(p == g for p, g in inner) / len(inner))
    return SCORE[name](inner)


def score_category(items: Items) -> float:
    """The leaderboard's family-average value: `score`, except MCC rescaled to (MCC + 1) / 2."""
    value = score(items)
    return (value + 1) / 2 if items and items[0][0] == "mcc" else value


# --- metric sets: what each finben_*_yaml template reports (eval_plugins.registry) ------------


def _sets(*metrics: Metric, lower_is_better: bool = False) -> Any:
    """A FinBen set: `score` and `score_category` (the leaderboard column, lower is better for
    TSA's RMSE), then the task class's own metrics."""
    hib = not lower_is_better
    return declare(Metric("score", score, higher_is_better=hib),
                   Metric("score_category", score_category, higher_is_better=hib), *metrics)


_ACC = Metric("acc", "mean", bootstrap=MEAN)  # per-item 0/1 with lm-eval's own mean
_MISSING = Metric("missing", "mean", higher_is_better=False, bootstrap=MEAN)
_CLASS = (_ACC, Metric("f1", weighted_f1), Metric("macro_f1", macro_f1))
CLASSIFICATION_METRICS = _sets(*_CLASS, Metric("micro_f1", micro_f1), Metric("mcc", mcc), _MISSING)
STOCK_METRICS = _sets(*_CLASS, Metric("mcc", mcc), _MISSING,
              Metric("unparsed", "mean", higher_is_better=False, bootstrap=MEAN))
# TSA: the leaderboard's column is RMSE, averaged as it is (lower is better)
TSA_METRICS = _sets(Metric("rmse", rmse, higher_is_better=False), Metric("rmse_signed", rmse_signed, higher_is_better=False),
            _MISSING, lower_is_better=True)
HEADLINES_METRICS = _sets(Metric("avg_f1", avg_f1))
NER_METRICS = _sets(Metric("entity_f1", entity_f1_ner))
SEQUENCE_LABELING_METRICS = _sets(Metric("entity_f1", entity_f1_tokens), Metric("f1", token_f1))
RELATION_METRICS = _sets(Metric("precision", relation_precision), Metric("recall", relation_recall),
                 Metric("f1", relation_f1))
QA_METRICS = _sets(_ACC)
SUMMARIZATION_METRICS = _sets(Metric("rouge1", rouge1), Metric("rouge2", rouge2), Metric("rougeL", rougeL),
                      Metric("bert_score_f1", bert_score_f1))  # NaN unless FINBENCH_BERTSCORE=1
