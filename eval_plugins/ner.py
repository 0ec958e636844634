"""FinNER (SEC filings, CoNLL, IO tags): reading, splitting, parsing model output, scoring.

Shared by the `ner` (list the entities) and `ner_cls` (type of one entity) tasks so both use the
same sentences and the same splits.

Scoring `ner`: the model writes lines "entity, type". Each line is mapped back onto the sentence
tokens (case-insensitive, whitespace-insensitive, on token boundaries; every occurrence), giving a
predicted IO tag sequence; gold and prediction are converted to IOB2 the same way (a run of one
type is one entity, which is all IO tags can say) and scored by seqeval at the entity level
(exact span and type). A listed entity that does not occur in the sentence cannot be placed on
tokens: it is counted as a false positive by appending one extra token (gold O, predicted B-type)
to both sequences, so hallucinated entities cost precision instead of vanishing.
Parsing modes: strict takes only lines that are exactly `entity, type` with a known type word;
tolerant also accepts bullets, numbering, quotes, case, other separators (`-`, `:`, `(type)`),
type synonyms (ORG, company, ...) and ignores lines without a type. Lines are never merged: a
repeated line is an unplaced false positive (see `map_to_tags`).
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from lm_eval.api.filter import Filter

from eval_plugins.parsers import clip
from eval_plugins.registry import Metric, declare
from finbench.data import raw as D

log = logging.getLogger(__name__)

TYPES = {"PER": "person", "ORG": "organization", "LOC": "location"}
LABELS = list(TYPES.values())
SYNONYMS = {
    "per": "person",
    "people": "person",
    "persons": "person",
    "individual": "person",
    "org": "organization",
    "organisation": "organization",
    "company": "organization",
    "corporation": "organization",
    "institution": "organization",
    "bank": "organization",
    "loc": "location",
    "place": "location",
    "gpe": "location",
    "country": "location",
    "city": "location",
    "address": "location",
}
_TYPE_WORDS = {**{label: label for label in LABELS}, **SYNONYMS}
_CODE = {label: code for code, label in TYPES.items()}
CONLL_TAGS = ("O", "I-PER", "I-ORG", "I-LOC", "I-MISC")
PAPER_METRICS = {"finben_entity_f1": "finben", "fingpt_entity_f1": "fingpt"}  # own items: (paper gold, output tag)

Sentence = dict  # {"id", "tokens", "tags" (IO, PER/ORG/LOC/MISC), "file"}


# ---------------------------------------------------------------------------------------------
# Reading CoNLL


def read_conll(path: Path) -> list[Sentence]:
    """Sentences of a CoNLL file (`token POS chunk tag` per line, blank line between sentences)."""
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []

    def flush() -> None:
        if tokens:
            sentences.append(
                {
                    "id": f"{path.stem}-{len(sentences):04d}",
                    "tokens": list(tokens),
                    "tags": list(tags),
                    "file": path.name,
                }
            )
            tokens.clear()
            tags.clear()

    for n, line in enumerate(D.read_lines(path), start=1):
        if n == 1:
            line = line.removeprefix("\ufeff")  # a UTF-8 BOM would glue onto "-DOCSTART-"
        if line.startswith("-DOCSTART-"):
            flush()
            continue
        if not line.strip():
            flush()
            continue
        parts = line.split()
        if len(parts) < 2 or parts[-1] not in CONLL_TAGS:
            raise D.DataError(
                f"{path}:{n}: expected 'token POS chunk tag' with tag in {list(CONLL_TAGS)}, "
                f"got {line[:80]!r}"
            )
        tokens.append(parts[0])
        tags.append(parts[-1])
    flush()
    return sentences


def scored_tags(tags: Sequence[str]) -> list[str]:
    """IO tags restricted to the scored types (MISC, 7 tokens in FIN5, is not asked for)."""
    return [t if t[2:] in TYPES else "O" for t in tags]


def has_entity(sentence: Sentence) -> bool:
    return any(t != "O" for t in scored_tags(sentence["tags"]))


ENTITY_SENTENCES = "sentences with a PER/ORG/LOC entity"
# tner/fin main holds the upstream CoNLL files (public code downloads them from
# https://huggingface.co/datasets/tner/fin/resolve/main/dataset/FIN5.txt and .../FIN3.txt);
# its card: train/validation from FIN5, test FIN3. Reading the same files as the raw folder
# gives the same sentences, ids and splits from either source.
HUB_FILES = ("dataset/FIN5.txt", "dataset/FIN3.txt")


def split_sentences(
    fin5: Path, fin3: Path | None, test_fraction: float = 0.2, dev_fraction: float = 0.1
) -> dict[str, list[Sentence]]:
    """Sentences with at least one PER/ORG/LOC entity (as FinGPT: 511 of FIN5's 1,164), split.

    FIN3 (the published test file) is the test split when given; otherwise a seeded
    `test_fraction` of FIN5 is held out. dev is a seeded `dev_fraction` of the remaining FIN5.
    """
    train = [s for s in read_conll(fin5) if has_entity(s)]
    D.require_rows(train, fin5, ENTITY_SENTENCES)
    if fin3 is not None:
        test = [s for s in read_conll(fin3) if has_entity(s)]
        D.require_rows(test, fin3, ENTITY_SENTENCES)
    else:
        train, test = D.seeded_split(train, test_fraction, seed=42)
    train, dev = D.seeded_split(train, dev_fraction, seed=42)
    return {"train": train, "dev": dev, "test": test}


def sentence_splits(
    root: Path, test_fraction: float = 0.2, dev_fraction: float = 0.1
) -> dict[str, list[Sentence]]:
    """The raw folder `finner_sec/`: FIN5.txt (+ FIN3.txt when present). `read_raw` of ner and ner_cls."""
    fin3 = root / "finner_sec" / "FIN3.txt"
    fin5 = D.raw_file(root, "finner_sec", "FIN5.txt")
    return split_sentences(fin5, fin3 if fin3.is_file() else None, test_fraction, dev_fraction)


def hub_sentence_splits(
    path: str, revision: str, test_fraction: float = 0.2, dev_fraction: float = 0.1
) -> dict[str, list[Sentence]]:
    """The same files from the hub (`tner/fin` main, or its mirror folder). `read_hub` of both tasks."""
    from finbench.data import hub
    fin5, fin3 = (hub.download_file(path, name, revision=revision) for name in HUB_FILES)
    return split_sentences(fin5, fin3, test_fraction, dev_fraction)


# ---------------------------------------------------------------------------------------------
# Entities, targets, IOB2


def io_to_iob2(tags: Sequence[str]) -> list[str]:
    out, prev = [], "O"
    for tag in tags:
        if tag == "O":
            out.append("O")
        else:
            kind = tag[2:]
            out.append(("I-" if prev == tag else "B-") + kind)
        prev = tag
    return out


def spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """(start, end exclusive, type) of each maximal run of one IO type."""
    found, start = [], None
    for i, tag in enumerate(list(tags) + ["O"]):
        if start is not None and tag != tags[start]:
            found.append((start, i, tags[start][2:]))
            start = None
        if start is None and tag != "O" and i < len(tags):
            start = i
    return found


def entity_list(tokens: Sequence[str], tags: Sequence[str]) -> list[tuple[str, str]]:
    """Distinct (entity text, type label) pairs in order of first mention."""
    pairs = [(" ".join(tokens[a:b]), TYPES[kind]) for a, b, kind in spans(scored_tags(tags))]
    return list(dict.fromkeys(pairs))


def target_text(tokens: Sequence[str], tags: Sequence[str]) -> str:
    return "\n".join(f"{entity}, {label}" for entity, label in entity_list(tokens, tags))


# ---------------------------------------------------------------------------------------------
# Parsing model output

# Bullets: "-", "*", "1.", "2)", "(a)", "b)", and a LOWERCASE "a. ": an uppercase letter and a dot
# is a person's initial ("A. Smith, person"), kept as part of the entity.
_BULLET = re.compile(r"^\s*(?:[-*\u2022\u2013>]+|\(?\d{1,3}[.)]|\(?[A-Za-z]\)(?=\s)|[a-z]\.(?=\s))\s*")
_STRICT_LINE = re.compile(r"^(?P<entity>\S.*?), (?P<type>person|organization|location)$", re.IGNORECASE)
_TYPE_ALT = "|".join(sorted(map(re.escape, _TYPE_WORDS), key=len, reverse=True))
_TOLERANT_LINE = re.compile(
    r"^(?:entity\s*[:=]\s*)?[\"'`\u201c]?(?P<entity>.+?)[\"'`\u201d]?\s*"
    r"(?:[,:;|\t=]|\s[-\u2013]|->|\(|\[|\bis\s+an?\b)\s*(?:type\s*[:=]\s*)?"
    rf"(?P<type>{_TYPE_ALT})\s*[)\]]?\s*[.;,]?\s*$",
    re.IGNORECASE,
)
_WS_RUN = re.compile(r"\s{2,}")
_NONE = re.compile(r"^\s*(?:none|no entities|n/?a|no named entities)\b", re.IGNORECASE)


def parse_lines(output: object, strict: bool = False) -> list[tuple[str, str]]:
    """(entity text, type label) pairs in the output, in order (repeats kept)."""
    if not isinstance(output, str):
        return []
    pairs = []
    for raw in clip(output).splitlines():  # bounded work (eval_plugins.parsers.MAX_OUTPUT_CHARS)
        line = raw.strip()
        if not line:
            continue
        if strict:
            m = _STRICT_LINE.match(line)
            if m:
                pairs.append((m.group("entity"), m.group("type").lower()))
            continue
        m = _TOLERANT_LINE.match(_BULLET.sub("", _squeeze(line)).strip().strip("*"))
        if m:
            entity = m.group("entity").strip().strip("\"'`*").strip()
            if entity:
                pairs.append((entity, _TYPE_WORDS[m.group("type").lower()]))
    # Nothing is merged: placement is case-sensitive ("Bank" and "bank" tag different tokens), so
    # merging case variants lost one; a line listed twice is placed once and its copy is an
    # unplaced false positive, exactly as seqeval scores it on the oracle's placement.
    return pairs


def _squeeze(line: str) -> str:
    """One space per whitespace run (a tab if the run has one: a separator). _TOLERANT_LINE's lazy
    entity and the \\s* around the type are cubic in a long run (issue 21); entities are matched
    to tokens with whitespace ignored, so no score changes."""
    return _WS_RUN.sub(lambda m: "\t" if "\t" in m.group() else " ", line)


def _squash(text: str) -> str:
    return "".join(text.split()).lower()


def map_to_tags(
    tokens: Sequence[str], pairs: Iterable[tuple[str, str]], strict: bool = False
) -> tuple[list[str], list[str]]:
    """Predicted IO tags for `tokens`, plus the types of entities that could not be placed.

    Every occurrence of an entity is tagged (on token boundaries, whitespace ignored). Occurrences
    with the same case win: "Bank" tags "Bank", not the common noun "bank"; only when there is no
    same-case occurrence (tolerant mode) is case ignored. Longer entities are placed first and
    never overwritten, so "Silicon Valley Bank" wins over "Bank" on the tokens they share.
    An entity that gets no token (it occurs nowhere, or every occurrence is already taken, as
    for a repeated line) is returned as unplaced: it costs precision, as in the oracle figures.
    """
    exact = ["".join(t.split()) for t in tokens]
    lowered = [t.lower() for t in exact]
    starts, ends, pos = {}, {}, 0
    for i, tok in enumerate(exact):
        starts[pos] = i
        pos += len(tok)
        ends[pos] = i + 1
    tags = ["O"] * len(tokens)
    unmapped = []

    def occurrences(joined: str, needle: str) -> list[tuple[int, int]]:
        found, at = [], joined.find(needle) if needle else -1
        while at != -1:
            a, b = starts.get(at), ends.get(at + len(needle))
            if a is not None and b is not None:
                found.append((a, b))
            at = joined.find(needle, at + 1)
        return found

    for entity, label in sorted(pairs, key=lambda p: -len(_squash(p[0]))):
        needle = "".join(entity.split())
        places = occurrences("".join(exact), needle)
        if not places and not strict:
            places = occurrences("".join(lowered), needle.lower())
        placed = False
        for a, b in places:
            if all(t == "O" for t in tags[a:b]):
                tags[a:b] = ["I-" + _CODE[label]] * (b - a)
                placed = True
        if not placed:
            unmapped.append(_CODE[label])
    return tags, unmapped


# ---------------------------------------------------------------------------------------------
# The entity F1 of FinBen/PIXIU and of FinGPT, re-implemented so a user can compare with either
# paper's table (named metrics beside seqeval on our placement, never in its place).


def finben_tags(output: object, tokens: Sequence[str]) -> list[str]:
    """PIXIU/FinBen's `process_text` (The-FinAI/PIXIU src/tasks/utils.py @
    9d6cd7c6dced1020a5bb1a8f56f703fa9c80761a, called by src/tasks/flare.py class `NER` @
    b92bc75703b7e530b06325a4e710c9fa5075fba9) on the raw output and the sentence text.

    Each output line is "entity, type" (split at the last ", "); every case-sensitive substring
    occurrence of the entity in the text tags the words from the first word starting at or after
    it (B-) up to the last word starting before its end (I-); an occurrence whose end has no word
    starting after it (the sentence's last word) tags nothing, as upstream. One adaptation: our
    type words person / organization / location become PER/ORG/LOC; any other type string
    stays as written (upstream's labels are "B-" + the type as written).
    """
    words = ["".join(t.split()) or "_" for t in tokens]
    labels = ["O"] * len(words)
    if not isinstance(output, str):
        return labels
    text = " ".join(words)
    starts = [0]
    for word in words[:-1]:
        starts.append(starts[-1] + len(word) + 1)
    for line in output.split("\n"):
        parts = line.split(", ")
        entity, kind = ", ".join(parts[:-1]), parts[-1]
        kind = _CODE.get(kind, kind)
        at = text.find(entity) if entity else -1
        while at != -1:
            end = at + len(entity) - 1
            first, last = bisect.bisect_left(starts, at), bisect.bisect_right(starts, end)
            if first < len(starts) and last < len(starts):
                labels[first] = "B-" + kind
                labels[first + 1 : last] = ["I-" + kind] * max(last - first - 1, 0)
            at = text.find(entity, end + 1)
    return labels


_FINGPT_PART = re.compile(r"^(.*) is an? (.*)$")


def fingpt_tags(tokens: Sequence[str], pairs: Iterable[tuple[str, str]]) -> list[str]:
    """FinGPT's `cvt_text_to_pred` (AI4Finance-Foundation/FinGPT
    fingpt/FinGPT_Benchmark/benchmarks/ner.py @ fa66c94d5a4d6e2a7dcf2c64d6377d3d1162be55).

    FinGPT reads answers written "X is a person, Y is an organization": the pairs are written so,
    lower-cased, split at ",", and each entity tags only its FIRST free occurrence as a lower-cased
    token sequence. FinGPT builds its gold the same way from the reference text, so gold mentions
    after the first are not scored either. One guard: an empty entity (upstream inserts a tag and
    shifts the sequence) is skipped.
    """
    words = " ".join(tokens).lower().split()
    preds = ["O"] * len(words)
    text = ", ".join(f"{e} is {'an' if label[0] in 'aeiou' else 'a'} {label}" for e, label in pairs)
    for part in text.lower().strip(".").split(","):
        m = _FINGPT_PART.match(part)
        if m is None:
            continue
        code = _CODE.get(m.group(2).strip(), "O")
        entity = m.group(1).strip().split()
        n = len(entity)
        for i in range(len(words) - n + 1 if n else 0):
            if words[i : i + n] == entity and preds[i : i + n] == ["O"] * n:
                preds[i : i + n] = ["B-" + code] + ["I-" + code] * (n - 1)
                break
    return preds


# ---------------------------------------------------------------------------------------------
# lm-eval plumbing


class NerFilter(Filter):
    """Maps a generation to JSON {"tags": IO tags per token, "unmapped": [...], "empty": bool}."""

    def __init__(self, strict: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.strict = bool(strict)

    def one(self, resp: object, doc: dict) -> str:
        pairs = parse_lines(resp, strict=self.strict)
        tags, unmapped = map_to_tags(doc["tokens"], pairs, strict=self.strict)
        # "Missing" = nothing readable and not an explicit "none": a format failure, not a claim.
        empty = not pairs and not (isinstance(resp, str) and _NONE.match(resp))
        if unmapped:
            log.debug("doc %s: %d listed entities not in the sentence", doc.get("id"), len(unmapped))
        tokens = doc["tokens"]
        extra = {"finben": finben_tags(resp, tokens), "fingpt": fingpt_tags(tokens, parse_lines(resp))}
        return json.dumps({"tags": tags, "unmapped": unmapped, "empty": empty, **extra})

    def apply(self, resps: Iterable[list[str]], docs: Iterable[dict]) -> list[list[str]]:
        return [[self.one(r, doc) for r in doc_resps] for doc_resps, doc in zip(resps, docs, strict=True)]


Item = tuple[list[str], list[str], bool]  # (gold IOB2, predicted IOB2, missing)


def process_results(doc: dict, results: Sequence[object]) -> dict[str, Item]:
    gold = io_to_iob2(scored_tags(doc["tags"]))
    pred = None
    try:
        pred = json.loads(results[0]) if results else None
        tags, unmapped, empty = list(pred["tags"]), list(pred["unmapped"]), bool(pred["empty"])
        if len(tags) != len(gold):
            raise ValueError("tag count differs from token count")
    except (TypeError, ValueError, KeyError) as err:
        log.warning("doc %s: unreadable filtered NER output (%s); scored as no entities", doc.get("id"), err)
        tags, unmapped, empty = ["O"] * len(gold), [], True
    pred_tags = io_to_iob2(tags) + ["B-" + code for code in unmapped]
    item = (gold + ["O"] * len(unmapped), pred_tags, empty)
    # every declared metric but the papers' scores this item (METRICS, at the end of the module)
    out: dict[str, object] = {name: item for name in METRICS.names if name not in PAPER_METRICS}
    out.update(_paper_items(doc, pred, gold))
    return out


def _paper_items(doc: dict, pred: object, gold: list[str]) -> dict[str, tuple[list[str], list[str]]]:
    """Items of the FinBen and FinGPT entity F1 (each against its own paper's gold)."""
    fingpt_gold = fingpt_tags(doc["tokens"], entity_list(doc["tokens"], doc["tags"]))
    out = {}
    refs = {"finben": gold, "fingpt": fingpt_gold}
    for name, key in PAPER_METRICS.items():
        ref = refs[key]
        tags = pred.get(key) if isinstance(pred, dict) else None
        if not isinstance(tags, list) or len(tags) != len(ref):
            tags = ["O"] * len(ref)
        out[name] = (list(ref), [str(t) for t in tags])
    return out


def _paper_f1(items: Sequence[tuple[list[str], list[str]]]) -> float:
    # Both papers call seqeval's default (conlleval-style) corpus F1.
    from seqeval.metrics import f1_score

    if not items:
        return math.nan
    return float(f1_score([list(g) for g, _ in items], [list(p) for _, p in items], zero_division=0))


def finben_entity_f1(items: Sequence[tuple[list[str], list[str]]]) -> float:
    """FinBen/PIXIU's NER `entity_f1` (see `finben_tags`)."""
    return _paper_f1(items)


def fingpt_entity_f1(items: Sequence[tuple[list[str], list[str]]]) -> float:
    """FinGPT's NER benchmark F1 (micro average of its seqeval report; see `fingpt_tags`)."""
    return _paper_f1(items)


def _seqeval(items: Sequence[Item], fn) -> float:
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    if not items:
        return math.nan
    metric = {"f1": f1_score, "precision": precision_score, "recall": recall_score}[fn]
    golds = [list(g) for g, _, _ in items]
    preds = [list(p) for _, p, _ in items]
    return float(metric(golds, preds, mode="strict", scheme=IOB2, zero_division=0))


def f1(items: Sequence[Item]) -> float:
    return _seqeval(items, "f1")


def precision(items: Sequence[Item]) -> float:
    return _seqeval(items, "precision")


def recall(items: Sequence[Item]) -> float:
    return _seqeval(items, "recall")


def missing_rate(items: Sequence[Item]) -> float:
    return sum(bool(m) for _, _, m in items) / len(items) if items else math.nan


def score(items: Sequence[Item]) -> float:
    """The headline number: f1, entity-level micro F1 (seqeval, strict IOB2)."""
    return f1(items)


# What the entity-extraction template (ner_generate_yaml) reports, under each filter.
METRICS = declare(
    Metric("score", score),
    Metric("f1", f1),
    Metric("precision", precision),
    Metric("recall", recall),
    Metric("missing_rate", missing_rate, higher_is_better=False),
    # The papers' own entity F1 definitions, for comparing with their tables (tasks/ner/README.md):
    Metric("finben_entity_f1", finben_entity_f1),  # FinBen/PIXIU: substring search of the raw output
    Metric("fingpt_entity_f1", fingpt_entity_f1),  # FinGPT: first lower-cased occurrence, gold alike
)
