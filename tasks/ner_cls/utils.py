"""FinNER classification: one question per distinct entity of every sentence.

A sentence where the same text is tagged with two different types would make an ill-posed
question ("what is the type of X?" with two answers): such entities are skipped and counted in
the log (none in FIN5).
"""

from __future__ import annotations

import logging

from eval_plugins import ner as NER
from finbench.data import raw as D
from finbench.data import readers as R

log = logging.getLogger(__name__)


def questions(sentence: dict) -> list[D.Row]:
    pairs = NER.entity_list(sentence["tokens"], sentence["tags"])
    types: dict[str, set[str]] = {}
    for entity, label in pairs:
        types.setdefault(entity, set()).add(label)
    rows = []
    for entity, label in pairs:
        if len(types[entity]) > 1:
            log.warning(
                "%s: %r is tagged %s; no question asked",
                sentence["id"],
                entity,
                sorted(types[entity]),
            )
            continue
        rows.append(
            {
                "id": f"{sentence['id']}-e{len(rows):02d}",
                "sentence": sentence["id"],
                "text": " ".join(sentence["tokens"]),
                "entity": entity,
                "label": label,
            }
        )
    return rows


# One reader for both tasks (eval_plugins.ner): the raw folder, or tner/fin main's same files.
read_raw = NER.sentence_splits
read_hub = NER.hub_sentence_splits


def make_splits(upstream: D.Splits) -> D.Splits:
    return {split: [q for s in upstream[split] for q in questions(s)] for split in D.SPLITS}


def load(labels, synonyms, source, test_fraction=0.2, dev_fraction=0.1, **_):
    fractions = {"test_fraction": float(test_fraction), "dev_fraction": float(dev_fraction)}
    return R.load("ner_cls", source, read_raw, read_hub, make_splits, labels, synonyms, bind=fractions)
