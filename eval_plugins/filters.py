"""lm-eval filter that maps generations to task labels (see eval_plugins.parsers).

Used from task YAML as `function: !function eval_plugins.filters.LabelFilter` with `strict:
true|false`; the labels and synonyms come from each doc (`choices`, `synonyms`), so one shared
template serves every classification task.
"""

from __future__ import annotations

from collections.abc import Iterable

from lm_eval.api.filter import Filter

from eval_plugins.parsers import LabelParser


class LabelFilter(Filter):
    def __init__(self, strict: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.strict = bool(strict)
        self._parsers: dict[tuple, LabelParser] = {}

    def _parser(self, doc: dict) -> LabelParser:
        synonyms = tuple(tuple(pair) for pair in doc.get("synonyms") or ())
        key = (tuple(doc["choices"]), synonyms)
        if key not in self._parsers:
            self._parsers[key] = LabelParser(doc["choices"], dict(synonyms))
        return self._parsers[key]

    def apply(self, resps: Iterable[list[str]], docs: Iterable[dict]) -> list[str]:
        # One generation per request: parse the first, like lm-eval's `take_first` closes a chain.
        return [
            self._parser(doc)(doc_resps[0] if doc_resps else None, strict=self.strict)
            for doc_resps, doc in zip(resps, docs, strict=True)
        ]
