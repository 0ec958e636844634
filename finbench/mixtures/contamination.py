"""Contamination guard: training rows that overlap a finbench task's dev or test items.

Every dev and test item of every finbench task (or the mixture's list) is checked against the
selected training rows: normalised exact match of the text or prompt, and n-gram overlap (default
13-grams, or the whole item when it is shorter but has at least `min_tokens` words; a hit when at
least half of an item's n-grams appear in one training row; n-grams shared by more than
`max_items_per_gram` items are boilerplate and ignored). `contamination: fail` (default) stops the
build with a report, `drop` skips hits (the next rows by hash take their place, so counts stay
exact), `allow` keeps them and reports them.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from finbench.core import validate as V
from finbench.data import raw as D
from finbench.data import tasks as T
from finbench.mixtures.errors import MixtureError, err, number, unknown_keys

CONTAMINATION_MODES = ("fail", "drop", "allow")
_KEYS = ("mode", "tasks", "ngram", "min_overlap", "min_tokens", "max_items_per_gram")


@dataclass
class Contamination:
    mode: str = "fail"
    tasks: tuple[str, ...] | None = None  # None: every finbench task
    ngram: int = 13
    min_overlap: float = 0.5
    min_tokens: int = 5
    max_items_per_gram: int = 10

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "tasks": "all" if self.tasks is None else list(self.tasks),
            "ngram": self.ngram,
            "min_overlap": self.min_overlap,
            "min_tokens": self.min_tokens,
            "max_items_per_gram": self.max_items_per_gram,
        }


def parse_contamination(where: str, craw: Any, known: Collection[str]) -> Contamination:
    """`contamination:` is a mode or a mapping of the keys above."""
    if isinstance(craw, str):
        craw = {"mode": craw}
    if not isinstance(craw, dict):
        raise err(where, "contamination", f"expected a mode {list(CONTAMINATION_MODES)} or a mapping")
    unknown_keys(where, "contamination", craw, _KEYS)
    cont = Contamination(mode=craw.get("mode", "fail"))
    if cont.mode not in CONTAMINATION_MODES:
        raise err(
            where, "contamination.mode", f"expected one of {list(CONTAMINATION_MODES)}, got {V.short(cont.mode)}"
        )
    tasks = craw.get("tasks", "all")
    if tasks != "all":
        if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
            raise err(where, "contamination.tasks", f"expected 'all' or a list of tasks, got {V.short(tasks)}")
        if V.duplicates(tasks):
            raise err(where, "contamination.tasks", V.duplicates(tasks) or "")
        for t in tasks:
            if t not in known:
                raise err(where, "contamination.tasks", f"unknown finbench task {V.short(t)}")
        cont.tasks = tuple(tasks)

    def whole(key: str, default: int, upper: int) -> int:
        return int(number(where, f"contamination.{key}", craw.get(key, default), integer=True, upper=upper))

    cont.ngram = whole("ngram", 13, 1000)
    cont.min_overlap = float(
        number(where, "contamination.min_overlap", craw.get("min_overlap", 0.5), upper=1.0)
    )
    cont.min_tokens = whole("min_tokens", 5, 1000)
    cont.max_items_per_gram = whole("max_items_per_gram", 10, 1_000_000_000)
    return cont


def cached_task(name: str, loaded: dict[str, Any] | None):
    """lm-eval task by name, loaded once per build (loading builds its whole dataset)."""
    if loaded is None:
        return T.load_task(name)
    if name not in loaded:
        loaded[name] = T.load_task(name)
    return loaded[name]


_WORD = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def normalise(text: str) -> str:
    return " ".join(tokens(text))


@dataclass
class EvalItem:
    task: str
    split: str
    id: str
    text: str
    prompts: tuple[str, ...] = ()


class ContaminationIndex:
    """Dev/test items of finbench tasks, indexed for exact and n-gram lookups of training rows."""

    _P = 0x100000001B3  # FNV prime; any odd multiplier works: hits are verified on the tokens

    def __init__(self, items: list[EvalItem], cfg: Contamination) -> None:
        import numpy as np

        self.items = items
        self.cfg = cfg
        self.exact: dict[str, list[int]] = defaultdict(list)
        self.vocab: dict[str, int] = {}
        self.item_ids: list[list[int]] = []
        grams: dict[int, dict[int, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
        for i, item in enumerate(items):
            toks = tokens(item.text)
            self.exact[" ".join(toks)].append(i)
            for prompt in item.prompts:
                self.exact[normalise(prompt)].append(i)
            ids = [self.vocab.setdefault(t, len(self.vocab) + 1) for t in toks]
            self.item_ids.append(ids)
            if len(ids) < cfg.min_tokens:
                continue
            L = min(cfg.ngram, len(ids))
            arr = np.asarray(ids, dtype=np.uint64)
            for pos, h in enumerate(self._hash(arr, L).tolist()):
                grams[L][h].append((i, pos))
        self.need: list[int] = [0] * len(items)
        kept: dict[int, dict[int, list[tuple[int, int]]]] = {}
        for L, table in grams.items():
            # n-grams shared by many items are boilerplate (disclaimers, table headers), not leaks
            kept[L] = {
                h: occ for h, occ in table.items() if len({i for i, _ in occ}) <= cfg.max_items_per_gram
            }
            for occ in kept[L].values():
                for i in {i for i, _ in occ}:
                    self.need[i] += 1
        self.need = [math.ceil(cfg.min_overlap * n) if n else 0 for n in self.need]
        self.grams = kept
        self.sorted = {
            L: np.sort(np.fromiter(t.keys(), dtype=np.uint64, count=len(t))) for L, t in kept.items()
        }

    def _hash(self, arr, L: int):
        import numpy as np
        from numpy.lib.stride_tricks import sliding_window_view

        if len(arr) < L:
            return np.zeros(0, dtype=np.uint64)
        pows = np.array([pow(self._P, L - 1 - j, 1 << 64) for j in range(L)], dtype=np.uint64)
        with np.errstate(over="ignore"):
            return (sliding_window_view(arr, L) * pows).sum(axis=1, dtype=np.uint64)

    def check(self, exact_texts: list[list[str]], gram_texts: list[str]) -> list[list[dict[str, Any]]]:
        """Hits per training row: [{task, split, id, match, overlap}]."""
        import numpy as np

        out: list[list[dict[str, Any]]] = [[] for _ in gram_texts]
        found: list[dict[int, dict[str, Any]]] = [{} for _ in gram_texts]
        row_toks = [tokens(t) for t in gram_texts]
        for r, (extra, toks) in enumerate(zip(exact_texts, row_toks, strict=True)):
            for norm in [" ".join(toks)] + [normalise(t) for t in extra]:
                for i in self.exact.get(norm, ()):
                    found[r][i] = {"match": "exact", "overlap": 1.0}
        if self.sorted:
            vocab = self.vocab
            row_ids = [[vocab.get(t, 0) for t in toks] for toks in row_toks]
            offsets = np.cumsum([0] + [len(x) + 1 for x in row_ids])
            flat = np.fromiter(
                itertools.chain.from_iterable(x + [0] for x in row_ids),
                dtype=np.uint64,
                count=int(offsets[-1]),
            )
            matched: dict[tuple[int, int], set[int]] = defaultdict(set)  # (row, item) -> gram pos
            for L, keys in self.sorted.items():
                h = self._hash(flat, L)
                if not len(h) or not len(keys):
                    continue
                pos = np.searchsorted(keys, h)
                pos[pos >= len(keys)] = 0
                for w in np.nonzero(keys[pos] == h)[0].tolist():
                    r = int(np.searchsorted(offsets, w, side="right") - 1)
                    window = flat[w : w + L].tolist()
                    for i, ipos in self.grams[L][int(h[w])]:
                        if self.item_ids[i][ipos : ipos + L] == window:  # verify: no hash collision
                            matched[(r, i)].add(ipos)
            for (r, i), poss in matched.items():
                if i in found[r] or not self.need[i]:
                    continue
                if len(poss) >= self.need[i]:
                    total = len(self.item_ids[i]) - min(self.cfg.ngram, len(self.item_ids[i])) + 1
                    found[r][i] = {"match": "ngram", "overlap": round(len(poss) / max(total, 1), 3)}
        for r, hits in enumerate(found):
            for i, h in sorted(hits.items()):
                it = self.items[i]
                out[r].append({"task": it.task, "split": it.split, "id": it.id, **h})
        return out


def guard_tasks(mix: Any) -> list[str]:
    """One task per task folder (variants share their data), default (generative) variant first.

    Test-only variants (a peer's test split, read from the hub) have their own rows: each is guarded
    on its own, and only when the mixture names it (`contamination.tasks`), as reading it needs the hub.
    """
    from finbench.data.finben import is_finben

    infos = T.discover()
    # FinBen tasks (hub only) guard a mixture only when it names them (finben_cocktail does).
    everything = sorted(n for n, info in infos.items() if not info.eval_only and not is_finben(info.config))
    names = list(mix.contamination.tasks) if mix.contamination.tasks is not None else everything
    by_folder: dict[str, str] = {}
    for n in sorted(names, key=lambda n: (not infos[n].is_default_variant, n)):
        by_folder.setdefault(n if infos[n].eval_only else infos[n].folder, n)
    return sorted(by_folder.values())


@contextlib.contextmanager
def cached_lm_eval_templates() -> Iterator[None]:
    """Cache lm-eval's Jinja compilation for the length of a build.

    lm-eval 0.4.13 compiles a prompt template on every `doc_to_text` / `doc_to_target` call
    (`utils.apply_template` -> `env.from_string`), about 1 ms each: 30 s for the paper cocktail's
    finance rows. Compiled templates are immutable, so caching them on lm-eval's own Environment
    gives the same strings; the original method is restored afterwards.
    """
    from lm_eval import utils as lm_utils

    env = lm_utils.env
    original = env.from_string
    env.from_string = functools.lru_cache(maxsize=512)(original)  # type: ignore[method-assign]
    try:
        yield
    finally:
        env.from_string = original  # type: ignore[method-assign]


def load_eval_items(
    task_names: Sequence[str], where: str, loaded: dict[str, Any] | None = None
) -> list[EvalItem]:
    items: list[EvalItem] = []
    for name in task_names:
        try:
            task = cached_task(name, loaded)
            for split in ("dev", "test"):
                try:
                    docs = T.split_docs(task, split)
                except ValueError:
                    continue  # a task without that split has nothing to leak into
                for doc in docs:
                    text = doc.get("text")
                    prompt = task.doc_to_text(doc)
                    items.append(
                        EvalItem(
                            name,
                            split,
                            str(doc.get("id", "")),
                            text if isinstance(text, str) else "",
                            (prompt,) if isinstance(prompt, str) else (),
                        )
                    )
        except (D.DataError, T.UnknownTaskError, FileNotFoundError) as exc:
            raise MixtureError(
                f"{where}: contamination.tasks: cannot load eval items of task {V.short(name)}: {exc}"
            ) from exc
    return items

