"""Map free model output to one of a task's labels.

Two modes, both reported by every generative task so a format penalty is visible:
- strict: after trimming case, whitespace, quotes and trailing punctuation (and an optional
  "Answer:" prefix), the output must BE a label or a declared synonym;
- tolerant: the earliest label or synonym mentioned as a whole phrase that is not negated
  ("not positive" is not a vote for positive), whatever text surrounds it.

Anything else is MISSING: never a silent default class (FinGPT maps it to "neutral", which
hides format failures behind a plausible score). The parser never raises on any input.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

MISSING = "[missing]"

_NEGATIONS = frozenset({"not", "no", "never", "isnt", "arent", "wasnt", "nor", "neither", "without"})
_ANSWER_PREFIX = re.compile(
    r"^\s*(?:the\s+)?(?:final\s+)?(?:answer|label|sentiment|output|response|prediction)\s*(?:is)?\s*[:\-=]?\s*",
    re.IGNORECASE,
)
_TRIM = " \t\r\n\"'`*.,;:!?()[]{}<>"


def normalize(text: str) -> str:
    """Lowercase, fold accents and apostrophes, turn every non-alphanumeric run into one space."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.lower().replace("'", "").replace("\u2019", "")
    return re.sub(r"[^0-9a-z]+", " ", text).strip()


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
        # Longest phrases first so "central banks" wins over "banks" at the same position.
        alternatives = sorted(phrases, key=len, reverse=True)
        self._pattern = re.compile(r"\b(" + "|".join(map(re.escape, alternatives)) + r")\b")

    def strict(self, output: object) -> str:
        if not isinstance(output, str):
            return MISSING
        text = _ANSWER_PREFIX.sub("", output.strip(), count=1).strip(_TRIM)
        return self._phrases.get(normalize(text), MISSING) if text else MISSING

    def tolerant(self, output: object) -> str:
        if not isinstance(output, str):
            return MISSING
        text = normalize(output)
        for match in self._pattern.finditer(text):
            label = self._phrases[match.group(1)]
            before = text[: match.start()].split()
            negated = bool(before) and before[-1] in _NEGATIONS
            # "no" is itself a label in yes/no tasks: a negation word only negates other labels.
            if negated and normalize(label) not in _NEGATIONS:
                continue
            return label
        return MISSING

    def __call__(self, output: object, strict: bool = False) -> str:
        return self.strict(output) if strict else self.tolerant(output)
