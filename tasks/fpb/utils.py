"""Financial PhraseBank: `sentence@label` lines; FinGPT's split (75/25, seed 42) plus a dev split."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from finbench.data import raw as D
from finbench.data import readers as R

HUB_LABELS = ("negative", "neutral", "positive")  # the label words of the upstream lines


ZIP_FILE = "data/FinancialPhraseBank-v1.0.zip"  # on takala/financial_phrasebank main
MEMBER_RE = re.compile(r"^FinancialPhraseBank-v1\.0/Sentences_(\w+)Agree\.txt$")


def parse_lines(data: bytes, where: str, agree: str) -> list[D.Row]:
    """`sentence@label` lines: ISO-8859-1 upstream (some copies were re-encoded to UTF-8)."""
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        lines = data.decode("iso-8859-1").splitlines()
    rows = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        text, sep, label = line.rpartition("@")
        if not sep or label.strip() not in HUB_LABELS:
            raise D.DataError(
                f"{where}:{n}: expected 'sentence@label' with label in {list(HUB_LABELS)}, got {line[:80]!r}"
            )
        rows.append({"id": f"fpb{agree}-{len(rows):05d}", "text": text.strip(), "label": label.strip()})
    D.require_rows(rows, where, "'sentence@label' lines")
    return rows


def read_raw(root: Path, agree: str = "50") -> D.Splits:
    path = D.raw_file(root, "financial_phrasebank", f"Sentences_{agree}Agree.txt")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise D.DataError(f"{path}: cannot read: {err}") from err
    return {"train": parse_lines(data, str(path), agree)}


def read_zip(path: Path, agree: str, where: str) -> list[D.Row]:
    """One agreement level's member of the upstream zip, chosen from the members it holds."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = {m.group(1): name for name in zf.namelist() if (m := MEMBER_RE.match(name))}
            if agree not in members:
                raise D.DataError(
                    f"{where}: no member 'FinancialPhraseBank-v1.0/Sentences_{agree}Agree.txt'; "
                    f"metadata.agree must be one of {sorted(members)}"
                )
            data = zf.read(members[agree])
    except (OSError, zipfile.BadZipFile) as err:
        raise D.DataError(f"{where}: cannot read as a zip archive: {err}") from err
    return parse_lines(data, f"{where}!{members[agree]}", agree)


def read_hub(path: str, revision: str, agree: str = "50") -> D.Splits:
    # main is script-based (`financial_phrasebank.py`; datasets 4 refuses scripts): read the zip
    # the script reads, as public code does with hf_hub_download (README "Hub source").
    from finbench.data import hub
    local = hub.download_file(path, ZIP_FILE, revision=revision)
    return {"train": read_zip(local, agree, f"hub {path}@{revision} {ZIP_FILE}")}


def make_splits(upstream: D.Splits) -> D.Splits:
    # FinGPT: train_test_split(test_size=0.25, seed=42) on sentences_50agree; dev = 10% of train.
    rest, test = D.seeded_split(upstream["train"], 0.25, seed=42)
    train, dev = D.seeded_split(rest, 0.1, seed=42)
    return {"train": train, "dev": dev, "test": test}


def load(labels, synonyms, source, agree=50, **_):
    return R.load("fpb", source, read_raw, read_hub, make_splits, labels, synonyms, bind={"agree": str(agree)})
