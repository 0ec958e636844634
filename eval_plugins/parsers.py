"""Map free model output to one of a task's labels, or to MISSING: commit or abstain, never guess.

Two modes, both reported by every generative task so a format penalty is visible:
- strict: after trimming case, whitespace, quotes and trailing punctuation (and an optional
  "Answer:" prefix), the output must BE a label or a declared synonym;
- tolerant: exactly one label asserted. The output is read line by line; the answer is the first
  line that asserts exactly one label (a line naming several, such as an echo of the options
  "negative, neutral, or positive." or a hedge "could be positive or negative", commits to
  nothing and is passed over, and so are enumerated lines, two or more of them being a list of
  options "A) ...\nB) ..."). A mention is NOT an assertion when it is
  - negated: a negation word ("not", "no", "isn't", "neither", "without", ...) scopes over the
    rest of its clause, so "not very positive" is not positive, while "no, negative" is negative
    (the comma ends the clause) and "not positive but negative" is negative;
  - part of a compound word: "non-negative" is not negative, "N/A" is not the synonym "n",
    "positive/negative" asserts neither (a phrase must cover whole compounds: "M&A" is fine).

Anything else is MISSING: never a silent default class (FinGPT maps it to "neutral", which
hides format failures behind a plausible score). The parser never raises on any input.

Bounded work (issue 21): every parser in eval_plugins reads at most the first
`MAX_OUTPUT_CHARS` (32,768) characters of an output (`clip`), far beyond any task's generation
length (lm-eval's default `max_gen_toks` is 256 tokens, about 1 KB; tasks/ set 64 or less), and is linear
in what it reads: one long generation from a model that never stops cannot hold an evaluation.
What lies beyond the cap is not read, as if the model had stopped there: tolerant readings take
the answer from the first 32 KB; a strict reading of an output still longer than the cap after
trimming whitespace abstains (MISSING), as no label or number is that long. `make bench`
(bench/bench_parsers.py) shows the time per KB of each parser from 1 KB to 1 MB.
Agreement with hand-labelled real SmolLM2 outputs (tests/fixtures/parser_gold/parser_gold.jsonl) is reported by
`make bench` (bench/bench_parsers.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

MISSING = "[missing]"
MAX_OUTPUT_CHARS = 32_768  # characters of an output any parser reads (see the module docstring)


def clip(output: str) -> str:
    """The part of a model output the parsers read: its first MAX_OUTPUT_CHARS characters."""
    return output[:MAX_OUTPUT_CHARS]

# Words that open a negation scope (apostrophes are folded away: "isn't" -> "isnt").
_NEGATIONS = frozenset(
    """not no never neither nor without hardly barely nothing none cannot cant isnt arent wasnt
    werent doesnt dont didnt wont wouldnt shouldnt couldnt hasnt havent hadnt aint lacks lacking""".split()
)
# A prefix glued to a label by a hyphen negates it ("non-negative", "not-positive").
_NEGATING_PREFIXES = frozenset({"non", "not", "un", "no"})
# Words that end a negation scope: a new clause starts ("not positive but negative").
_CLAUSE_WORDS = frozenset(
    """but so rather instead however therefore thus hence because since although though while
    whereas yet and overall""".split()
)
_CLAUSE_PUNCT = re.compile(r"[,;.:!?()\[\]\n]|\s[-\u2013\u2014]\s")
# Characters that glue two words into one compound when nothing else separates them.
_JOINERS = frozenset("/-&_+\u2010\u2011\u2013")
_WORD = re.compile(r"[0-9a-z]+")
_ANSWER_PREFIX = re.compile(
    r"^\s*(?:the\s+)?(?:final\s+)?(?:answer|label|sentiment|output|response|prediction)\s*(?:is)?\s*[:\-=]?\s*",
    re.IGNORECASE,
)
_TRIM = " \t\r\n\"'`*.,;:!?()[]{}<>"
_ITEM = re.compile(r"^\s*(?:\(?[A-Za-z]\)|[A-Za-z]\.|\(?\d{1,2}[.)]|[-*\u2022])\s+")


def fold(text: str) -> str:
    """Lowercase, fold accents, drop apostrophes (so "isn't" is one word)."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.lower().replace("'", "").replace("\u2019", "")


def normalize(text: str) -> str:
    """`fold`, then every non-alphanumeric run becomes one space."""
    return re.sub(r"[^0-9a-z]+", " ", fold(text)).strip()


def _glued(separator: str) -> bool:
    return bool(separator) and all(ch in _JOINERS for ch in separator)


class LabelParser:
    """Parser for one label set; build once per task, call per output."""

    def __init__(self, labels: Iterable[str], synonyms: Mapping[str, str] | None = None) -> None:
        self.labels = list(dict.fromkeys(labels))
        if not self.labels:
            raise ValueError("LabelParser needs at least one label")
        phrases: dict[str, str] = {}
        for label in self.labels:
            phrases[normalize(label)] = label
        for synonym, label in (synonyms or {}).items():
            if label not in self.labels:
                raise ValueError(f"synonym {synonym!r} maps to {label!r}, not one of {self.labels}")
            phrases.setdefault(normalize(synonym), label)
        phrases.pop("", None)
        self._phrases = phrases
        # First word -> phrases (as word tuples) starting with it, longest first, so
        # "central banks" wins over "banks" at the same position.
        self._by_first: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for phrase, label in phrases.items():
            words = tuple(phrase.split())
            self._by_first.setdefault(words[0], []).append((words, label))
        for options in self._by_first.values():
            options.sort(key=lambda item: -len(item[0]))

    def strict(self, output: object) -> str:
        if not isinstance(output, str):
            return MISSING
        output = output.strip()
        if len(output) > MAX_OUTPUT_CHARS:  # no label is that long
            return MISSING
        text = _ANSWER_PREFIX.sub("", output, count=1).strip(_TRIM)
        return self._phrases.get(normalize(text), MISSING) if text else MISSING

    def asserted(self, line: str) -> list[str]:
        """Labels asserted in one line, in order (negated and compound-internal mentions dropped)."""
        text = fold(line)
        words = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]
        seps = [text[words[k - 1][2] : w[1]] if k else "" for k, w in enumerate(words)]
        seps.append("")  # after the last word
        found: list[str] = []
        negating = False
        i = 0
        while i < len(words):
            if _CLAUSE_PUNCT.search(seps[i]) or words[i][0] in _CLAUSE_WORDS:
                negating = False
            hit = self._match_at(words, i)
            if hit is None:
                if words[i][0] in _NEGATIONS:
                    negating = True
                i += 1
                continue
            n, label = hit
            before, after = seps[i], seps[i + n]
            prefix_negates = _glued(before) and words[i - 1][0] in _NEGATING_PREFIXES
            compound = _glued(before) or _glued(after)
            # "no" is itself a label in yes/no tasks: a negation word only negates other labels.
            is_negation_word = normalize(label) in _NEGATIONS
            if not (compound or prefix_negates) and (is_negation_word or not negating):
                found.append(label)
            i += n
        return found

    def _match_at(self, words: list[tuple[str, int, int]], i: int) -> tuple[int, str] | None:
        for phrase, label in self._by_first.get(words[i][0], ()):
            n = len(phrase)
            if tuple(w[0] for w in words[i : i + n]) == phrase:
                return n, label
        return None

    def tolerant(self, output: object) -> str:
        if not isinstance(output, str):
            return MISSING
        lines = [(line, set(self.asserted(line))) for line in clip(output).splitlines()]
        # Two or more enumerated lines ("A) Analyst Update\nB) Fed |", cut short) are the
        # options listed, not an answer.
        listing = sum(bool(_ITEM.match(line)) for line, _ in lines) >= 2
        for line, found in lines:
            if len(found) == 1 and not (listing and _ITEM.match(line)):
                return found.pop()
        return MISSING

    def __call__(self, output: object, strict: bool = False) -> str:
        return self.strict(output) if strict else self.tolerant(output)
