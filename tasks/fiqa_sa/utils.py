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

from finbench.data import raw as D
from finbench.data import readers as R

log = logging.getLogger(__name__)
FILES = ("task1_headline_ABSA_train.json", "task1_post_ABSA_train.json")


def to_label(score: float, thresholds: tuple[float, float]) -> str:
    low, high = thresholds
    return "negative" if score < low else "neutral" if score < high else "positive"


def finite_score(value, where: str) -> float:
    """A `sentiment_score` as a finite float, or a DataError naming where it came from."""
    try:
        score = float(value)
    except (TypeError, ValueError) as err:
        raise D.DataError(f"{where}: expected a numeric 'sentiment_score', got {value!r}") from err
    if not math.isfinite(score):
        raise D.DataError(f"{where}: sentiment_score is {score}")
    return score


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
            where = f"{path}: record {key!r} info[{i}]"
            if not isinstance(info, dict):
                raise D.DataError(f"{where}: expected a mapping with 'sentiment_score', got {type(info).__name__}")
            score = finite_score(info.get("sentiment_score"), where)
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
    from finbench.data import hub
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
    train, dev, test = R.split_by_text(upstream["train"])
    return {"train": train, "dev": dev, "test": test}


def load(labels, synonyms, source, thresholds=(-0.1, 0.1), **_):
    thresholds = tuple(float(t) for t in thresholds)
    return R.load("fiqa_sa", source, read_raw, read_hub, make_splits, labels, synonyms, bind={"thresholds": thresholds})


# --- fiqa_sa_fingpt: FinGPT's own test split, made from the hub copy FinGPT reads ---------------
# FinGPT's benchmarks/fiqa.py (and FinNLP's finnlp/benchmarks/fiqa.py, which produced the published
# v3 numbers): load pauri32/fiqa-2018, concatenate train, validation and test in that order, keep
# `train_test_split(0.226, seed=42)["test"]`, label `sentiment_score` with the thresholds above.
FINGPT_SPLITS = ("train", "validation", "test")
FINGPT_COLUMNS = ("sentence", "sentiment_score", "format")


def fingpt_test_split(ds, test_size: float, seed: int, where: str):
    """FinGPT's split, with `datasets`' own calls: the permutation depends only on the row count and
    the seed, so the same copy in the same order gives FinGPT's rows."""
    import datasets

    for split in FINGPT_SPLITS:
        if split not in ds:
            raise D.DataError(f"{where}: no split {split!r} (found {sorted(ds)})")
    try:
        pool = datasets.concatenate_datasets([ds[split] for split in FINGPT_SPLITS])
        return pool.train_test_split(test_size, seed=seed)["test"]
    except ValueError as err:  # splits with different columns, or too few rows to split
        raise D.DataError(f"{where}: cannot make FinGPT's split: {err}") from err


def read_fingpt_test(path: str, revision: str, thresholds, test_size: float, seed: int) -> D.Splits:
    from finbench.data import hub
    where = f"hub {path}@{revision}"
    ds = hub.load_dataset(path, revision=revision)
    for split in FINGPT_SPLITS:
        if split in ds:
            hub.require_columns(ds[split], FINGPT_COLUMNS, f"{where} {split}")
    rows = []
    for i, rec in enumerate(fingpt_test_split(ds, test_size, seed, where)):
        score = finite_score(rec["sentiment_score"], f"{where}: FinGPT test row {i}")
        rows.append(
            {
                "id": f"fiqa-fingpt-test-{i:03d}",
                "text": str(rec["sentence"] or "").strip(),
                "format": str(rec["format"] or ""),
                "score": score,
                "label": to_label(score, thresholds),
            }
        )
    return {"test": rows}


def load_fingpt(labels, synonyms, source, thresholds=(-0.1, 0.1), test_size=0.226, seed=42, **_):
    thresholds = tuple(float(t) for t in thresholds)
    read = partial(read_fingpt_test, thresholds=thresholds, test_size=float(test_size), seed=int(seed))
    return R.load_test_only("fiqa_sa_fingpt", source, read, labels, synonyms)
