"""FinNER reading, output parsing, mapping to tokens, and entity-level scoring vs seqeval."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.scheme import IOB2

from eval_plugins import ner as NER
from finbench.data import raw as D

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "data"
SHARED = ROOT.parent / "shared" / "data"
needs_shared = pytest.mark.skipif(
    not (SHARED / "finner_sec" / "FIN5.txt").is_file(), reason="../shared/data/finner_sec absent"
)

TOKENS = "Bank means Silicon Valley Bank , a Santa Clara , California bank ; John Smith signed .".split()
TAGS = [
    "I-ORG",
    "O",
    "I-ORG",
    "I-ORG",
    "I-ORG",
    "O",
    "O",
    "I-LOC",
    "I-LOC",
    "O",
    "I-LOC",
    "O",
    "O",
    "I-PER",
    "I-PER",
    "O",
    "O",
]


def _task_utils(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_utils", ROOT / "tasks" / name / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _score(tokens, tags, output, strict=False):
    doc = {"id": "t", "tokens": tokens, "tags": tags}
    filtered = NER.NerFilter(strict=strict).one(output, doc)
    item = NER.process_results(doc, [filtered])["f1"]
    return item, {m: getattr(NER, m)([item]) for m in ("f1", "precision", "recall")}


def test_io_to_iob2_and_spans() -> None:
    assert NER.io_to_iob2(["I-ORG", "I-ORG", "O", "I-LOC", "I-PER", "I-PER"]) == [
        "B-ORG",
        "I-ORG",
        "O",
        "B-LOC",
        "B-PER",
        "I-PER",
    ]
    assert NER.spans(["I-ORG", "I-ORG", "O", "I-LOC", "I-PER"]) == [
        (0, 2, "ORG"),
        (3, 4, "LOC"),
        (4, 5, "PER"),
    ]
    assert NER.target_text(TOKENS, TAGS).splitlines() == [
        "Bank, organization",
        "Silicon Valley Bank, organization",
        "Santa Clara, location",
        "California, location",
        "John Smith, person",
    ]


def test_perfect_output_scores_one_and_agrees_with_seqeval() -> None:
    item, scores = _score(TOKENS, TAGS, NER.target_text(TOKENS, TAGS))
    assert scores == {"f1": 1.0, "precision": 1.0, "recall": 1.0}
    assert item[0] == item[1] == NER.io_to_iob2(TAGS)


@pytest.mark.parametrize(
    "output",
    [
        "- silicon valley bank (ORG)\n* Santa Clara: location\n1. California - loc\n"
        "2) JOHN SMITH, Person.\n"
        "Bank, company\nSome explanation without a type.",
        "Entity: Silicon Valley Bank, Type: organization\n"
        '"Bank", organization\nSanta Clara, location\n'
        "California, location\n\u2022 John Smith, person",
    ],
)
def test_tolerant_parsing_repairs_format(output: str) -> None:
    _, tolerant = _score(TOKENS, TAGS, output)
    assert tolerant["f1"] == 1.0
    _, strict = _score(TOKENS, TAGS, output, strict=True)
    assert strict["f1"] < 1.0  # the format penalty is visible


def test_hand_made_partial_output_matches_seqeval() -> None:
    # Right: Silicon Valley Bank (ORG), John Smith (PER). Wrong type: Santa Clara as ORG.
    # Wrong span: "Smith" alone would be wrong but is covered by "John Smith" placed first.
    # Hallucinated: "Acme Corp" (not in the sentence) -> one extra false positive.
    output = (
        "Silicon Valley Bank, organization\nSanta Clara, organization\n"
        "John Smith, person\nAcme Corp, organization"
    )
    item, scores = _score(TOKENS, TAGS, output)
    gold = NER.io_to_iob2(TAGS)
    pred_io = ["O"] * len(TOKENS)
    pred_io[2:5] = ["I-ORG"] * 3
    pred_io[7:9] = ["I-ORG"] * 2
    pred_io[13:15] = ["I-PER"] * 2
    expected_gold, expected_pred = [gold + ["O"]], [NER.io_to_iob2(pred_io) + ["B-ORG"]]
    assert [item[0]] == expected_gold and [item[1]] == expected_pred
    kw = {"mode": "strict", "scheme": IOB2}
    assert scores["f1"] == pytest.approx(f1_score(expected_gold, expected_pred, **kw))
    assert scores["precision"] == pytest.approx(precision_score(expected_gold, expected_pred, **kw)) == 0.5
    assert scores["recall"] == pytest.approx(recall_score(expected_gold, expected_pred, **kw)) == 0.4


def test_corpus_level_pooling_matches_seqeval() -> None:
    docs = [
        (TOKENS, TAGS, "Bank, organization\nJohn Smith, person"),
        (
            "Jane Doe met Acme".split(),
            ["I-PER", "I-PER", "O", "I-ORG"],
            "Jane Doe, person\nAcme, location",
        ),
        ("Nothing here".split(), ["O", "O"], "none"),
    ]
    items = [_score(*d)[0] for d in docs]
    golds, preds = [i[0] for i in items], [i[1] for i in items]
    assert NER.f1(items) == pytest.approx(f1_score(golds, preds, mode="strict", scheme=IOB2))
    assert NER.missing_rate(items) == 0.0  # "none" is an answer, not a format failure


@pytest.mark.parametrize(
    ("line", "entity"),
    [
        ("A. Smith, person", "A. Smith"),  # issue 13: the initial was taken for a bullet
        ("J. P. Morgan, organization", "J. P. Morgan"),
        ("a. Apple Inc., organization", "Apple Inc."),  # a lowercase letter bullet
        ("b) Apple Inc., organization", "Apple Inc."),
        ("(C) Apple Inc., organization", "Apple Inc."),
        ("1. A. Smith, person", "A. Smith"),
    ],
)
def test_initials_are_kept_and_letter_bullets_dropped(line: str, entity: str) -> None:
    assert NER.parse_lines(line)[0][0] == entity


def test_initial_maps_onto_its_tokens() -> None:
    tokens = "A. Smith joined Acme".split()
    tags = ["I-PER", "I-PER", "O", "I-ORG"]
    _, scores = _score(tokens, tags, "A. Smith, person\nAcme, organization")
    assert scores["f1"] == 1.0
    _, strict = _score(tokens, tags, "A. Smith, person\nAcme, organization", strict=True)
    assert strict["f1"] == 1.0


def test_utf8_bom_does_not_glue_onto_docstart(tmp_path: Path) -> None:
    path = tmp_path / "FIN5.txt"
    path.write_text("\ufeff-DOCSTART- -X- O O\n\nJohn NNP O I-PER\npaid VBD O O\n", encoding="utf-8")
    sentences = NER.read_conll(path)
    assert [s["tokens"] for s in sentences] == [["John", "paid"]]


def test_every_occurrence_and_repeated_lines_cost_precision() -> None:
    tokens = "Agent pays Agent in Texas".split()
    tags = ["I-PER", "O", "I-PER", "O", "I-LOC"]
    _, scores = _score(tokens, tags, "Agent, person\nTexas, location")
    assert scores["f1"] == 1.0  # one line tags every occurrence
    # A repeated line (or a case variant with no free occurrence) places nothing: an unplaced
    # false positive, as seqeval scores it on the oracle's placement (../shared/oracles README).
    _, scores = _score(tokens, tags, "Agent, person\nagent, PERSON\nTexas, location\nTexas, location")
    assert (scores["precision"], scores["recall"]) == (3 / 5, 1.0)


def test_case_variant_is_not_merged_away() -> None:
    # The bug: "Bank" and "bank" were merged case-insensitively, then only "Bank" was placed
    # (case-sensitively), so the lower-case mention was lost.
    tokens = "Bank said the bank paid".split()
    tags = ["I-ORG", "O", "O", "I-ORG", "O"]
    pairs = NER.parse_lines("Bank, organization\nbank, organization")
    assert pairs == [("Bank", "organization"), ("bank", "organization")]
    item, scores = _score(tokens, tags, "Bank, organization\nbank, organization")
    assert item[1] == ["B-ORG", "O", "O", "B-ORG", "O"] and scores["f1"] == 1.0


def test_missing_and_garbage_never_crash() -> None:
    item, scores = _score(TOKENS, TAGS, "I cannot help with that.")
    assert item[2] is True and scores["recall"] == 0.0
    doc = {"id": "x", "tokens": TOKENS, "tags": TAGS}
    broken = NER.process_results(doc, ["not json"])["f1"]  # unreadable filtered output
    assert broken[2] is True and broken[1] == ["O"] * len(TOKENS)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300), strict=st.booleans())
def test_fuzz_filter(text: str, strict: bool) -> None:
    doc = {"id": "f", "tokens": TOKENS, "tags": TAGS}
    out = json.loads(NER.NerFilter(strict=strict).one(text, doc))
    assert len(out["tags"]) == len(TOKENS)
    item = NER.process_results(doc, [json.dumps(out)])["score"]
    assert 0.0 <= NER.f1([item]) <= 1.0


def test_bad_conll_line_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "finner_sec"
    bad.mkdir()
    (bad / "FIN5.txt").write_text("Acme NNP - I-ORG\nBank NNP - B-XYZ\n")
    with pytest.raises(D.DataError, match=r"FIN5.txt:2: expected 'token POS chunk tag'"):
        NER.read_conll(bad / "FIN5.txt")


def test_fixture_splits_use_fin3_when_present(tmp_path: Path) -> None:
    with_fin3 = NER.sentence_splits(FIXTURES)
    assert {s["file"] for s in with_fin3["test"]} == {"FIN3.txt"}
    (tmp_path / "finner_sec").mkdir()
    shutil.copy(FIXTURES / "finner_sec" / "FIN5.txt", tmp_path / "finner_sec" / "FIN5.txt")
    without = NER.sentence_splits(tmp_path)
    assert {s["file"] for s in without["test"]} == {"FIN5.txt"}
    ids = [s["id"] for split in without.values() for s in split]
    assert (
        len(ids)
        == len(set(ids))
        == sum(NER.has_entity(s) for s in NER.read_conll(tmp_path / "finner_sec" / "FIN5.txt"))
    )
    assert without == NER.sentence_splits(tmp_path)  # deterministic


@needs_shared
def test_real_fin5_counts() -> None:
    sentences = NER.read_conll(SHARED / "finner_sec" / "FIN5.txt")
    assert len(sentences) == 1164
    counts = Counter(tag for s in sentences for tag in s["tags"])
    assert (counts["I-PER"], counts["I-ORG"], counts["I-LOC"], counts["I-MISC"]) == (
        783,
        384,
        356,
        7,
    )


@needs_shared
def test_real_ner_cls_asks_about_every_entity() -> None:
    ner_cls = _task_utils("ner_cls")
    splits = NER.sentence_splits(SHARED)
    rows = ner_cls.make_splits(splits)
    for split, sentences in splits.items():
        asked = Counter((r["sentence"], r["entity"], r["label"]) for r in rows[split])
        expected = Counter(
            (s["id"], entity, label)
            for s in sentences
            for entity, label in NER.entity_list(s["tokens"], s["tags"])
        )
        assert asked == expected, split
    # FinGPT's copy asked about one entity per sentence; here sentences average more than one.
    n_sentences = sum(len(v) for v in splits.values())
    n_questions = sum(len(v) for v in rows.values())
    assert n_questions > 1.5 * n_sentences
