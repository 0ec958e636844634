"""Build the demo's shipped data sample (finbench/samples/) from the upstream raw files. Developers only.

    python tests/make_demo_sample.py                     # reads ../shared/data (see --help)
    python tests/make_demo_sample.py --check             # rebuild in memory, compare with the shipped files

A seeded draw of real rows, written in the raw layout the task loaders read under FINBENCH_DATA_DIR,
so `make demo` trains and scores on real data with no data settings and no network. Both files are
drawn from the upstream TRAIN file (sent_train.csv, the one upstream file this project's developers
have from a sanctioned copy): the scored rows first (natural label mix), then the training rows from
the rest, so a scored tweet is never trained on (a drawn training tweet whose text also occurs among
the scored rows is skipped too). The scored rows are written as `sent_valid.csv`, the file name the
`tfns` loader reads as its test split; finbench/samples/README.md says they are held-out rows of the
upstream train file, not of upstream validation. The input is pinned by the sha256 of its text with
CR stripped (the raw copy uses CRLF), so a different upstream copy is refused.

Only datasets whose licence allows redistribution are sampled (finbench/samples/README.md).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "finbench" / "samples"
SHARED = ROOT.parent / "shared" / "data"

# zeroshot/twitter-financial-news-sentiment (MIT): upstream sent_train.csv, 9,543 rows (its origin
# and commit: ../shared/data/twitter_financial_news_sentiment/SOURCES.md).
TFNS = "twitter_financial_news_sentiment"
PINNED = {"sent_train.csv": "71aa99d0d37feced03c999ec23b5b25302c92f39d69b6acb0a37aa076c5420e8"}
SEED = 19
TRAIN_ROWS = 480
TEST_ROWS = 300


def read_pinned(path: Path, pinned: dict[str, str]) -> list[dict[str, str]]:
    """The CSV's rows, after checking its CR-stripped text against the pinned sha256."""
    if not path.is_file():
        sys.exit(f"{path}: missing; pass its folder with --tfns (see the module doc)")
    text = path.read_bytes().replace(b"\r", b"").decode("utf-8")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if digest != pinned[path.name]:
        sys.exit(f"{path}: sha256 {digest} (CR stripped), expected {pinned[path.name]}: another copy")
    return list(csv.DictReader(io.StringIO(text)))


def draw(rows: list[dict[str, str]], k: int, rng: random.Random, skip: set[str] = frozenset()) -> list[dict]:
    """`k` rows in a seeded random order, skipping texts in `skip`, then back in upstream order."""
    order = list(range(len(rows)))
    rng.shuffle(order)
    picked = [i for i in order if rows[i]["text"].strip() not in skip][:k]
    return [rows[i] for i in sorted(picked)]


def draw_balanced(rows: list[dict[str, str]], k: int, rng: random.Random, skip: set[str]) -> list[dict]:
    """`k` rows, as many of each label as the others (seeded), back in upstream order."""
    labels = sorted({r["label"] for r in rows})
    picked = []
    for label in labels:
        own = [r for r in rows if r["label"] == label]
        picked += draw(own, k // len(labels), rng, skip)
    index = {id(r): i for i, r in enumerate(rows)}
    return sorted(picked, key=lambda r: index[id(r)])


def to_csv(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["text", "label"])
    writer.writerows([r["text"], r["label"]] for r in rows)
    return buf.getvalue()


def build(src: Path, seed: int = SEED, train_rows: int = TRAIN_ROWS, test_rows: int = TEST_ROWS,
          pinned: dict[str, str] = PINNED) -> dict[str, str]:
    """{relative path: file text} of the sample (same inputs and seed, same bytes)."""
    rng = random.Random(seed)
    upstream = read_pinned(src / "sent_train.csv", pinned)
    test = draw(upstream, test_rows, rng)
    scored = {r["text"].strip() for r in test}
    # Training rows balanced by label: on the natural mix (65% neutral) a few LoRA steps teach the
    # label prior (every answer 'neutral'), not the text. The scored rows keep the natural mix.
    train = draw_balanced(upstream, train_rows, rng, scored)
    return {f"{TFNS}/sent_train.csv": to_csv(train), f"{TFNS}/sent_valid.csv": to_csv(test)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tfns", type=Path, default=SHARED / TFNS,
                    help="folder with the upstream sent_train.csv")
    ap.add_argument("--check", action="store_true", help="compare with the shipped files, write nothing")
    args = ap.parse_args()
    files = build(args.tfns)
    stale = [name for name, text in files.items()
             if not (OUT / name).is_file() or (OUT / name).read_text(encoding="utf-8") != text]
    if args.check:
        print("sample up to date" if not stale else f"sample differs from a rebuild: {stale}")
        return 1 if stale else 0
    for name, text in files.items():
        path = OUT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        print(f"wrote {path.relative_to(ROOT)} ({text.count(chr(10)) - 1} rows, {len(text.encode())} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
