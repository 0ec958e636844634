"""The mixture error type and the checks every spec module shares (numbers are finite and bounded)."""

from __future__ import annotations

import math
from typing import Any

from finbench.core.files import did_you_mean
from finbench.core.validate import duplicates, short

MAX_ROWS = 1_000_000_000  # a component's count, and any size it resolves to
MAX_FACTOR = 1_000.0  # `factor` and `fraction`: a mixture of 1,000x its inputs is a typo


class MixtureError(ValueError):
    """A bad mixture or design file, or input it names; the message names the file and key."""


def err(where: str, key: str, msg: str) -> MixtureError:
    return MixtureError(f"{where}: {key}: {msg}")


def number(
    where: str, key: str, value: Any, *, integer: bool = False, upper: float | None = None
) -> float | int:
    """A positive finite number (a whole one if `integer`), at most `upper` when given."""
    bounds = "" if upper is None else f" in (0, {int(upper) if float(upper).is_integer() else upper:,}]"
    shown = _short(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise err(where, key, f"expected a {'whole ' if integer else ''}number{bounds}, got {shown}")
    if integer and isinstance(value, float) and not value.is_integer():
        raise err(where, key, f"expected a whole number{bounds}, got {shown}")
    if (isinstance(value, float) and not math.isfinite(value)) or value <= 0:
        raise err(where, key, f"expected a positive number{bounds}, got {shown}")
    if upper is not None and value > upper:
        raise err(where, key, f"expected a positive number{bounds}, got {shown}")
    return int(value) if integer else float(value)


def _short(value: Any, limit: int = 40) -> str:
    return short(value, limit)


def string_list(where: str, key: str, value: Any, what: str) -> list[str]:
    """A non-empty list of non-empty strings (one string is a list of one)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(x, str) and x for x in items):
        raise err(where, key, f"expected {what} or a list of them, got {_short(value)}")
    if duplicates(items):
        raise err(where, key, duplicates(items) or "")
    return items


def unknown_keys(where: str, key: str, found: Any, allowed: set[str] | list[str] | tuple[str, ...]) -> None:
    """Refuse keys outside `allowed`, suggesting the closest allowed one for each."""
    extra = sorted({str(k) for k in found} - set(allowed))
    if extra:
        hint = "".join(did_you_mean(x, allowed) for x in extra)
        raise err(where, key, f"unknown key(s) {extra}; expected {sorted(allowed)}.{hint}")
