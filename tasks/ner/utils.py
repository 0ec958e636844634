"""FinNER: one row per sentence with at least one PER/ORG/LOC entity; target = "entity, type" lines.

Reading and splitting live in eval_plugins.ner, shared with `ner_cls` so both tasks use the same
sentences on the same side of the split.
"""

from __future__ import annotations

from eval_plugins import ner as NER
from finbench.data import raw as D
from finbench.data import readers as R


def _rows(sentences: list[dict]) -> list[D.Row]:
    return [
        {
            "id": s["id"],
            "text": " ".join(s["tokens"]),
            "tokens": s["tokens"],
            "tags": NER.scored_tags(s["tags"]),
            "label": NER.target_text(s["tokens"], s["tags"]),
        }
        for s in sentences
    ]


# One reader for both tasks (eval_plugins.ner): the raw folder, or tner/fin main's same files.
read_raw = NER.sentence_splits
read_hub = NER.hub_sentence_splits


def make_splits(upstream: D.Splits) -> D.Splits:
    return {split: _rows(upstream[split]) for split in D.SPLITS}


def load(source, test_fraction=0.2, dev_fraction=0.1, **_):
    fractions = {"test_fraction": float(test_fraction), "dev_fraction": float(dev_fraction)}
    return R.load("ner", source, read_raw, read_hub, make_splits, bind=fractions)
