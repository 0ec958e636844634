"""The interface every mixture source implements, and what parsing and opening one is given."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from finbench.mixtures.formats import Format, Messages
from finbench.mixtures.sampling import Pick


@dataclass(frozen=True)
class ParseContext:
    where: str  # the mixture file, for error messages
    base_dir: Path  # relative paths in the mixture are relative to this folder
    known_tasks: frozenset[str]


@dataclass(frozen=True)
class OpenContext:
    where: str
    key: str  # e.g. "components.openorca.dataset"
    fmt: Format | None = None  # dataset sources: the declared format
    streaming: bool = True


class Source(Protocol):
    """One component's rows in a fixed order, as chat messages."""

    total: int | None  # rows in the source, when known without a pass

    def describe(self) -> dict[str, Any]:
        """The manifest's record of the source (paths, hashes, revision)."""
        ...

    def fingerprint(self) -> dict[str, Any]:
        """What decides its rows, for the mixture's content hash (no absolute paths needed)."""
        ...

    def prepare(self, loaded: dict[str, Any]) -> None:
        """Load or peek (after the up-to-date check, before the pass); fail early on bad input."""
        ...

    def count_valid(self) -> int:
        """Rows that render (for `fraction:` sizes)."""
        ...

    def count_rows(self) -> int:
        """Rows in the source, valid or not (for samplers that need the length first)."""
        ...

    def bottom_k(self, salt: int, k: int, progress: bool, label: str, keyer: Any = None) -> Pick:
        """The k eligible rows with the smallest sampling keys (`keyer`, else the seeded hash), ascending."""
        ...

    def guard_texts(self, row: dict[str, Any], messages: Messages) -> tuple[list[str], str]:
        """(extra texts for the exact-match check, the user text for exact and n-gram checks)."""
        ...


class SourceType(Protocol):
    """A registry entry: parses its YAML value and opens a `Source`."""

    key: ClassVar[str]  # the YAML key that names it
    in_dataset: ClassVar[bool]  # under `dataset:` with a format, or a component key of its own

    @classmethod
    def parse(cls, ctx: ParseContext, key: str, value: Any) -> Any:
        """The normalised value (it enters the mixture's spec and hash); no data is read."""
        ...

    @classmethod
    def rebase(cls, value: Any, base_dir: Path) -> Any:
        """The raw YAML value with relative paths made absolute (design members live elsewhere)."""
        ...

    @classmethod
    def unavailable(cls, value: Any) -> str | None:
        """Why this declared source cannot be used now (e.g. no data folder), else None."""
        ...

    @classmethod
    def open(cls, value: Any, ctx: OpenContext) -> Source: ...


class SourceDefaults:
    """What most source types do: no relative paths to rebase, and usable whenever declared."""

    @classmethod
    def rebase(cls, value: Any, base_dir: Path) -> Any:
        return value

    @classmethod
    def unavailable(cls, value: Any) -> str | None:
        return None


def user_text(messages: Messages) -> str:
    return "\n".join(m["content"] for m in messages if m["role"] == "user")
