"""Hub-shaped mirror copies of the FinBen English datasets (FINBENCH_HUB_MIRROR), for tests.

Layout as the hub serves FinBen's repos (push_to_hub uploads): `data/<split>-00000-of-00001-<hash>
.parquet` and a README whose only YAML is `dataset_info` (features, and splits with their
`num_examples`): no `configs:`, no loading script. Seen in stored hub pages, e.g. TheFinAI/
flare-headlines commit 39e4f9b ("Upload 4 files": README + data/{train,valid,test}-00000-of-00001-
<hash>.parquet) and ChanceFocus/flare-headlines/tree/main/data. `datasets` reads the split names
from those file names, so `valid` stays `valid` (a card's `validation` likewise). Columns and types
are each task's `metadata.source.columns` (FINBEN-EVIDENCE.md; TSA's `answer` a float, ConvFinQA's
`turn` and `dialogue_id` int64, ECTSum's `label` a list of ints, sequence labelling's
`label`/`token` lists of strings). Every row is written here by the project: no row comes from the
real datasets.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import datasets
import yaml

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"train": 4, "dev": 3, "test": 3}  # rows per split role for every dataset

# Labels written into the fixture rows (per-row `choices`); where the evidence gives none they are
# neutral placeholders, since the loader and metrics read the labels from each row.
CHOICES = {
    "fpb": ["negative", "neutral", "positive"], "fiqasa": ["negative", "neutral", "positive"],
    "fomc": ["HAWKISH", "DOVISH", "NEUTRAL"], "finarg_ecc_auc": ["label one", "label two"],
    "finarg_ecc_arc": ["label one", "label two", "label three"],
    "multifin_en": ["Finance", "Technology", "Tax & Accounting", "Business & Management",
                    "Government & Controls", "Industry"],
    "ma": ["complete", "rumour"], "mlesg": ["Carbon Emissions", "Board", "Pay"],
    "sc": ["label one", "label two"], "german": ["good", "bad"], "australian": ["good", "bad"],
    "lendingclub": ["good", "bad"], "ccf": ["no", "yes"], "ccfraud": ["good", "bad"],
    "polish": ["no", "yes"], "taiwan": ["no", "yes"], "portoseguro": ["no", "yes"],
    "travelinsurance": ["yes", "no"], "bigdata22": ["Rise", "Fall"], "acl18": ["Rise", "Fall"],
    "cikm18": ["Rise", "Fall"], "headlines": ["Yes", "No"],
}
TAGS = {"finer_ord": ("B-ORG", "I-ORG"), "cd": ("B-CAUSE", "I-CAUSE"), "fnxl": ("B-InterestExpense", "O"),
        "fsrl": ("B-AGENT", "I-AGENT")}


def specs() -> dict[str, dict[str, Any]]:
    """{dataset: metadata} of every tasks/finben_* folder (the YAML the loader reads)."""
    out = {}
    for path in sorted(ROOT.glob("tasks/finben_*/finben_*.yaml")):
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
        out[path.parent.name.removeprefix("finben_")] = cfg["metadata"]
    return out


def _value(name: str, col: str, split: str, i: int, n_lines: int = 3) -> Any:
    """One synthetic cell of column `col` for row i."""
    tag = f"{name} {split} {i}"
    if name in CHOICES and col == "choices":
        return CHOICES[name]
    if name in CHOICES and col == "gold":
        return i % len(CHOICES[name])
    if name in CHOICES and col == "answer":
        return CHOICES[name][i % len(CHOICES[name])]
    return {
        "id": f"{name}{split}{i}",
        "query": f"Synthetic {tag} prompt. Text: sample {i}\nAnswer:",
        "text": f"Company{i} Ltd reported line one.\nLine two of {tag}.\nLine three.",
        "label_type": ("price or not", "price up")[i % 2],
        "turn": i % 2,
        "dialogue_id": i // 2,
    }.get(col, f"{tag} {col}")


def _row(name: str, meta: dict, split: str, i: int) -> dict[str, Any]:
    cols = list(meta["source"]["columns"])
    if not meta["source"].get("exact_columns", True):
        cols = list(dict.fromkeys(["id", *cols, "text"]))  # a fuller copy: extra columns are allowed
    row = {c: _value(name, c, split, i) for c in cols}
    _special(name, row, i, split)
    return row


def _special(name: str, row: dict[str, Any], i: int, split: str) -> None:
    """Columns whose shape depends on the task family."""
    if name == "tsa":
        row["answer"] = (-0.5, 0.25, 0.0)[i % 3]
    elif name in ("finqa", "tatqa"):
        row["answer"] = str(10 + i)
    elif name == "convfinqa":
        row["answer"] = str(10 + i)
        row["query"] = (f"{split} question {i}, turn 1: add 1 to {{answer0}}" if row["turn"]
                        else f"{split} question {i}, turn 0")
    elif name == "ner":
        row["text"] = f"Acme Corp hired Jane Doe in Boston {split}{i}"
        row["label"] = ["B-ORG", "I-ORG", "O", "B-PER", "I-PER", "O", "B-LOC", "O"]
        row["answer"] = "Acme Corp, ORG\nJane Doe, PER\nBoston, LOC"
    elif name in TAGS:
        b, second = TAGS[name]
        row["token"] = ["Acme", "Corp", "rose", str(i)]
        row["label"] = [b, second, "O", "O"]
        row["answer"] = "\n".join(f"{t}:{lab}" for t, lab in zip(row["token"], row["label"], strict=True))
    elif name == "finred":
        row["label"] = [f"Acme{i} ; subsidiary ; Beta{i}"]
        row["answer"] = row["label"][0]
    elif name == "ectsum":
        row["label"] = [1, 0, 1]
        row["answer"] = "Company line one.\nLine three."
    elif name == "edtsum":
        row["answer"] = f"Company {i} reports results."


def write_repo(root: Path, name: str, meta: dict, sizes: dict[str, Any]) -> Path:
    """One repo as the hub lays it out: data/<split>-00000-of-00001-<hash>.parquet + a README with
    `dataset_info` (features and split sizes), no `configs:`."""
    hub = meta["source"]["hub"]["path"]
    folder = root / hub
    features, splits = None, []
    for role, split in meta["source"]["splits"].items():
        n = int(sizes.get(split, sizes.get(role, SMALL[role])))
        ds = datasets.Dataset.from_list([_row(name, meta, split, i) for i in range(n)])
        digest = hashlib.sha256(f"{hub}/{split}".encode()).hexdigest()[:16]  # the upload's hash suffix
        path = folder / "data" / f"{split}-00000-of-00001-{digest}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(path))
        features = features or ds.features
        splits.append({"name": split, "num_examples": n})
    info = {"dataset_info": {"features": features._to_yaml_list(), "splits": splits}}
    card = yaml.safe_dump(info, sort_keys=False)
    (folder / "README.md").write_text(f"---\n{card}---\n# Dataset Card for mirror test copy of {hub}\n", encoding="utf-8")
    return folder


def build(root: Path, only: list[str] | None = None, sizes: dict[str, dict[str, Any]] | None = None) -> Path:
    """Every FinBen dataset (or `only` those) under `root`, `sizes[name]` overriding SMALL."""
    for name, meta in specs().items():
        if only is None or name in only:
            write_repo(root, name, meta, (sizes or {}).get(name, {}))
    return root
