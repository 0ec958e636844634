"""Sizes and selection: how many rows each component takes, and which.

Selection is bottom-k by a per-row key. The default sampler (`hash`) keys a row by a seeded 64-bit
hash of (seed, component name, row index): exact counts, memory bounded by the rows kept, one
streaming pass, no reservoir. The key depends on the component name and not on the other
components, so mixtures of one design draw nested samples. `shuffle_head` keys a row by its
position in `datasets.Dataset.shuffle(seed=...)`, so bottom-k = the authors' `.shuffle(seed)
.select(range(k))` (needs the row count first). A new sampler = one class + one SAMPLERS entry.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from finbench.mixtures.errors import MAX_ROWS, err

Messages = list[dict[str, str]]
Kept = tuple[tuple[int, int], Messages, dict[str, Any]]  # ((key, row index), messages, raw row)


@dataclass(frozen=True)
class Size:
    count: int | None = None
    fraction: float | None = None
    relative_to: tuple[str, ...] = ()
    factor: float = 1.0
    rounding: str = "half_up"  # a ROUNDINGS name: how factor x sum becomes whole rows

    def to_dict(self) -> dict[str, Any]:
        if self.count is not None:
            return {"count": self.count}
        if self.fraction is not None:
            return {"fraction": self.fraction}
        out: dict[str, Any] = {"relative_to": list(self.relative_to), "factor": self.factor}
        return out if self.rounding == "half_up" else {**out, "rounding": self.rounding}


class _Sized(Protocol):
    size: Size


class _Sizable(Protocol):
    where: str
    components: Mapping[str, _Sized]


def round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


# `floor` is the study's `general // 2` for Orca-Math.
ROUNDINGS: dict[str, Any] = {"half_up": round_half_up, "floor": lambda x: int(math.floor(x))}


def salt(*parts: Any) -> int:
    data = json.dumps(parts, sort_keys=True).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def row_keys(salt: int, start: int, n: int):
    """Sampling keys of rows start..start+n: splitmix64(salt + index), vectorised, portable."""
    import numpy as np

    with np.errstate(over="ignore"):
        z = np.arange(start, start + n, dtype=np.uint64) + np.uint64(salt)
        z = z * np.uint64(0x9E3779B97F4A7C15) + np.uint64(0x632BE59BD9B4E5F)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


Keyer = Any  # (start, n) -> numpy uint64 keys of rows start..start+n


@dataclass(frozen=True)
class HashSampler:
    """Bottom-k by splitmix64(salt + row index): today's default."""

    name: ClassVar[str] = "hash"
    needs_total: ClassVar[bool] = False

    @staticmethod
    def keyer(salt_: int, seed: int, total: int | None) -> Keyer:
        return lambda start, n: row_keys(salt_, start, n)


@dataclass(frozen=True)
class ShuffleHeadSampler:
    """The first k rows of `Dataset.shuffle(seed=seed)`: key = position in the permutation.

    `datasets` shuffles with `np.random.default_rng(seed).permutation(len)`; the mixture seed is
    used as is (the authors used 42 for every dataset), not salted by the component name.
    """

    name: ClassVar[str] = "shuffle_head"
    needs_total: ClassVar[bool] = True

    @staticmethod
    def keyer(salt_: int, seed: int, total: int | None) -> Keyer:
        import numpy as np

        assert total is not None
        perm = np.random.default_rng(seed).permutation(total)
        position = np.empty(total, dtype=np.uint64)
        position[perm] = np.arange(total, dtype=np.uint64)
        return lambda start, n: position[start : start + n]


SAMPLERS: dict[str, Any] = {s.name: s for s in (HashSampler, ShuffleHeadSampler)}


def resolve_sizes(
    mix: _Sizable, available: dict[str, int], sizing: Mapping[str, _Sized] | None = None
) -> dict[str, int]:
    """Requested rows per component (and per sizing-only component).

    `available` is needed for fractions, and for components that do not upsample: they are capped
    at their available rows (`min(count, len)`, the study's rule) before others are sized from them.
    """
    out: dict[str, int] = {}
    comps = {**(sizing or {}), **mix.components}

    def size(name: str) -> int:
        if name in out:
            return out[name]
        s = comps[name].size
        key = f"components.{name}.relative_to"
        if s.count is not None:
            n = s.count
        elif s.fraction is not None:
            key = f"components.{name}.fraction"
            n = round_half_up(s.fraction * available[name])
            if n < 1:
                raise err(mix.where, key, f"{s.fraction} of {available[name]} rows is less than one row")
        else:
            n = ROUNDINGS[s.rounding](s.factor * sum(size(r) for r in s.relative_to))
            if n < 1:
                raise err(mix.where, key, "resolves to zero rows")
        if n > MAX_ROWS:
            raise err(mix.where, key, f"resolves to {n} rows; at most {MAX_ROWS} rows a component")
        if not getattr(comps[name], "upsample", True) and name in available:
            n = min(n, available[name])
        out[name] = n
        return n

    for name in comps:
        size(name)
    return out


@dataclass
class Pick:
    """What one bottom-k pass over a source found."""

    rows: list[Kept] = field(default_factory=list)  # ascending by (key, index)
    rows_seen: int = 0
    available: int = 0
    exhausted: bool = False  # fewer eligible rows than asked for
    malformed: Counter = field(default_factory=Counter)
    malformed_examples: dict[str, list[int]] = field(default_factory=dict)

    def count_malformed(self, why: str, indices: list[int], count: int | None = None) -> None:
        self.malformed[why] += len(indices) if count is None else count
        ex = self.malformed_examples.setdefault(why, [])
        ex += indices[: max(5 - len(ex), 0)]


def bottom_k_in_memory(salt_: int, rows: list[Any], k: int, keyer: Keyer | None = None) -> tuple[list[int], list[int]]:
    """(keys, positions of the k smallest keys, ascending) for rows already in memory."""
    import numpy as np

    keys = keyer(0, len(rows)) if keyer else row_keys(salt_, 0, len(rows))
    order = np.argsort(keys, kind="stable")[:k].tolist()  # ties (never seen) by index
    return [int(keys[j]) for j in order], order


class BottomK:
    """The k smallest (key, index) pairs seen so far, with their payloads (a max-heap)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.heap: list[tuple[int, int, Messages, dict[str, Any]]] = []  # (-key, -index, ...)

    def threshold(self) -> int | None:
        """Keys above this cannot enter (None while fewer than k rows are held)."""
        return -self.heap[0][0] if len(self.heap) >= self.k else None

    def beats(self, key: int, idx: int) -> bool:
        return len(self.heap) < self.k or (key, idx) < (-self.heap[0][0], -self.heap[0][1])

    def push(self, key: int, idx: int, msgs: Messages, row: dict[str, Any]) -> None:
        if len(self.heap) < self.k:
            heapq.heappush(self.heap, (-key, -idx, msgs, row))
        else:
            heapq.heapreplace(self.heap, (-key, -idx, msgs, row))

    def sorted_rows(self) -> list[Kept]:
        return [((-nk, -ni), msgs, row) for nk, ni, msgs, row in sorted(self.heap, reverse=True)]
