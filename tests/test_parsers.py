from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eval_plugins.parsers import MISSING, LabelParser, normalize

SENT = LabelParser(["negative", "neutral", "positive"], {"bearish": "negative", "bullish": "positive"})
TOPIC = LabelParser(
    ["Fed | Central Banks", "Markets", "M&A | Investments", "Stock Movement"],
    {"Central Banks": "Fed | Central Banks"},
)
YESNO = LabelParser(["yes", "no"], {"true": "yes", "false": "no"})


@pytest.mark.parametrize(
    ("output", "strict", "tolerant"),
    [
        (" positive.", "positive", "positive"),
        ("Negative", "negative", "negative"),
        ("Answer: NEUTRAL!", "neutral", "neutral"),
        ("The answer is: bearish", "negative", "negative"),
        ('"positive"', "positive", "positive"),
        ("The sentiment of this sentence is positive.", MISSING, "positive"),
        ("It is not positive, it is negative.", MISSING, "negative"),
        ("not positive", MISSING, MISSING),
        ("positivity is high", MISSING, MISSING),  # whole words only
        ("", MISSING, MISSING),
        ("I cannot tell.", MISSING, MISSING),
        ("\n\nThe sentiment is\nneutral", "neutral", "neutral"),  # an answer prefix is allowed
    ],
)
def test_sentiment_cases(output, strict, tolerant):
    assert SENT.strict(output) == strict
    assert SENT.tolerant(output) == tolerant


def test_multiword_labels_and_synonyms():
    assert TOPIC.tolerant("The topic is Fed | Central Banks.") == "Fed | Central Banks"
    assert TOPIC.strict("fed | central banks") == "Fed | Central Banks"
    assert TOPIC.tolerant("central banks, mostly") == "Fed | Central Banks"
    assert TOPIC.tolerant("M&A | Investments") == "M&A | Investments"
    assert TOPIC.tolerant("stock movement and markets") == "Stock Movement"  # earliest mention


def test_yes_no_is_not_treated_as_negation():
    assert YESNO.strict("No.") == "no"
    assert YESNO.tolerant("No, it does not.") == "no"
    assert YESNO.tolerant("The answer is yes") == "yes"
    assert YESNO.tolerant("False") == "no"


def test_non_strings_are_missing():
    for value in (None, 3, ["positive"], b"positive"):
        assert SENT.tolerant(value) == MISSING
        assert SENT.strict(value) == MISSING


def test_bad_synonym_is_rejected():
    with pytest.raises(ValueError, match="not one of"):
        LabelParser(["yes", "no"], {"maybe": "unsure"})


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_fuzz_never_raises_and_returns_a_label_or_missing(text):
    for parser in (SENT, TOPIC, YESNO):
        for mode in (parser.strict, parser.tolerant):
            assert mode(text) in {*parser.labels, MISSING}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["negative", "neutral", "positive"]), st.text(alphabet=" .!?\"'\n\t"))
def test_fuzz_label_with_punctuation_is_parsed_in_both_modes(label, noise):
    text = noise + label.upper() + noise
    assert SENT.strict(text) == label
    assert SENT.tolerant(text) == label


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_fuzz_strict_hit_implies_tolerant_agrees(text):
    strict = SENT.strict(text)
    if strict != MISSING:
        assert SENT.tolerant(text) == strict


def test_normalize():
    assert normalize("  Fed | Central-Banks!! ") == "fed central banks"
    assert normalize("Isn't") == "isnt"
