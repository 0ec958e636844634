"""FinNER: one row per sentence with at least one PER/ORG/LOC entity; target = "entity, type" lines.

Reading and splitting live in eval_plugins.ner, shared with `ner_cls` so both tasks use the same
sentences on the same side of the split.
"""

from __future__ import annotations

from pathlib import Path

from eval_plugins import ner as NER
from finbench import data as D


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


def read_raw(root: Path, test_fraction: float = 0.2, dev_fraction: float = 0.1) -> D.Splits:
    splits = NER.sentence_splits(root, test_fraction, dev_fraction)
    what = "sentences with a PER/ORG/LOC entity"
    D.require_rows(splits["train"] + splits["dev"], root / "finner_sec" / "FIN5.txt", what)
    if (root / "finner_sec" / "FIN3.txt").is_file():
        D.require_rows(splits["test"], root / "finner_sec" / "FIN3.txt", what)
    return splits


def read_hub(path: str, revision: str) -> D.Splits:
    return NER.hub_sentence_splits(path, revision)


def make_splits(upstream: D.Splits) -> D.Splits:
    return {split: _rows(upstream[split]) for split in D.SPLITS}


def load(source, test_fraction=0.2, dev_fraction=0.1, **_):
    return D.build_dataset(
        "ner",
        read_raw=lambda root: read_raw(root, float(test_fraction), float(dev_fraction)),
        read_hub=read_hub,
        make_splits=make_splits,
        hub=source["hub"],
    )
