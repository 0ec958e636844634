"""FiQA-SA: one row per (sentence, target) of the labelled task-1 train files, score -> label.

The official task-1 test files carry no scores, so, as BloombergGPT and FinGPT did, the labelled
pool is re-split: test 20% (seed 42), dev 10% of the rest. Splits are by sentence, so the same
sentence never sits in two splits under different targets.
"""

from __future__ import annotations

import logging
import math
from functools import partial
from pathlib import Path

from finbench import data as D

log = logging.getLogger(__name__)
FILES = ("task1_headline_ABSA_train.json", "task1_post_ABSA_train.json")


def to_label(score: float, thresholds: tuple[float, float]) -> str:
    low, high = thresholds
    return "negative" if score < low else "neutral" if score < high else "positive"


def _rows_from_json(path: Path, blob, thresholds, kind: str) -> list[D.Row]:
    if not isinstance(blob, dict):
        raise D.DataError(f"{path}: expected a JSON object keyed by id, got {type(blob).__name__}")
    rows = []
    for key, rec in blob.items():
        sentence = rec.get("sentence") if isinstance(rec, dict) else None
        infos = rec.get("info") if isinstance(rec, dict) else None
        if not isinstance(sentence, str) or not isinstance(infos, list):
            raise D.DataError(f"{path}: record {key!r}: expected keys 'sentence' (str) and 'info' (list)")
        for i, info in enumerate(infos):
            try:
                score = float(info["sentiment_score"])
            except (KeyError, TypeError, ValueError) as err:
                raise D.DataError(
                    f"{path}: record {key!r} info[{i}]: expected a numeric 'sentiment_score' ({err})"
                ) from err
            if not math.isfinite(score):
                raise D.DataError(f"{path}: record {key!r} info[{i}]: sentiment_score is {score}")
            rows.append(
                {
                    "id": f"fiqa-{kind}-{key}-{i}",
                    "text": sentence.strip(),
                    "target": str(info.get("target", "")).strip(),
                    "score": score,
                    "label": to_label(score, thresholds),
                }
            )
    return rows


def read_raw(root: Path, thresholds) -> D.Splits:
    rows: list[D.Row] = []
    for name in FILES:
        path = root / "fiqa_sa" / name
        if name.startswith("task1_post") and not path.is_file():
            # Some copies ship only the headline half; say so rather than silently shrink.
            log.warning("%s: missing; FiQA-SA uses the headline half only (436 sentences)", path)
            continue
        path = D.raw_file(root, "fiqa_sa", name)
        found = _rows_from_json(path, D.read_json(path), thresholds, name.split("_")[1])
        D.require_rows(found, path, "records with a sentiment score")
        rows += found
    return {"train": rows}


def read_hub(path: str, revision: str, thresholds) -> D.Splits:
    # main: data/{train,valid,test}-00000-of-00001*.parquet (822 / 117 / 234), pooled and re-split
    # by sentence as the raw files are.
    from finbench import hub

    ds = hub.load_dataset(path, revision=revision)
    rows = []
    for split in sorted(ds):
        hub.require_columns(ds[split], ("sentence", "score"), f"hub {path}@{revision} {split}")
        for i, r in enumerate(ds[split]):
            rows.append(
                {
                    "id": f"fiqa-{split}-{i}",
                    "text": r["sentence"].strip(),
                    "target": str(r.get("target", "")).strip(),
                    "score": float(r["score"]),
                    "label": to_label(float(r["score"]), thresholds),
                }
            )
    return {"train": rows}


def make_splits(upstream: D.Splits) -> D.Splits:
    rest, test = D.split_grouped(upstream["train"], "text", 0.2, seed=42)
    train, dev = D.split_grouped(rest, "text", 0.1, seed=42)
    return {"train": train, "dev": dev, "test": test}


def load(labels, synonyms, source, thresholds=(-0.1, 0.1), **_):
    thresholds = tuple(float(t) for t in thresholds)
    return D.build_dataset(
        "fiqa_sa",
        read_raw=partial(read_raw, thresholds=thresholds),
        read_hub=partial(read_hub, thresholds=thresholds),
        make_splits=make_splits,
        labels=labels,
        synonyms=synonyms,
        hub=source["hub"],
    )
