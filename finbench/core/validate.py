"""Value checks shared by recipes, mixtures and sweeps (one rule, one wording, every file kind).

Each check returns None for a good value, or what was wrong and what was expected (a short
phrase); the caller adds the file and key in its own error type (`RecipeError`, `MixtureError`,
`SweepError`), so a message reads `FILE: KEY: PROBLEM`. Values are shown through `short`, so no
message grows with its input: a 100 KB string is shown as its first characters and its length
(the whole value is what the file holds). `one_line` bounds a message already built.

Nothing here imports the rest of the package.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

MAX_SHOWN = 60  # characters of a value shown in a message
MAX_MESSAGE = 300  # characters a message built from these checks stays under, the file path aside
MAX_LINE = 600  # the CLI's hard cap on the one line it prints (guidance such as the hub's two ways
# out runs to 400-500 characters and is printed whole); `finbench -v` shows any message whole
NAME_MAX = 255  # bytes of one path component (Linux, macOS)
PATH_MAX = 4096

# Hub revisions: a branch, tag or commit sha (git's ref rules, less what a file never needs).
_REVISION = re.compile(r"^(?!/)(?!.*(?:\.\.|//|@\{))[A-Za-z0-9._/+@-]{1,255}(?<![/.])$")
# Hub split names (`datasets`: `\w+(\.\w+)*`), with an optional slice such as `train[:10%]`.
_SPLIT = re.compile(r"^\w+(?:\.\w+)*(?:\[[0-9:%+-]{0,40}\])?$")
_CONFIG = re.compile(r"^[\w.+-]{1,200}$")  # a hub dataset's config (`name:`)


def short(value: Any, limit: int = MAX_SHOWN) -> str:
    """repr(value), cut to `limit` characters with its length added when longer."""
    text = "null" if value is None else repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}... ({len(text):,} characters)"


def one_line(message: str, limit: int = MAX_LINE) -> str:
    """The message on one line of at most `limit` characters: its start (the file, the key) and its
    end (what was expected); `finbench -v` shows the whole message and where it came from."""
    flat = " ".join(str(message).split())
    if len(flat) <= limit:
        return flat
    tail = limit // 3  # the end says what was expected: keep it
    return f"{flat[: limit - tail - 22]} ... {flat[-tail:]} (-v: the whole)"


def listing(names: Sequence[str], limit: int = 8) -> str:
    """The first `limit` names, and how many there are in all when that is more."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names)} in all)"


def duplicates(values: Sequence[Any]) -> str | None:
    """Repeated entries of a list (task names, file names, mixtures): each may appear once."""
    seen: set[Any] = set()
    dup: list[Any] = []
    for v in values:
        try:
            if v in seen and v not in dup:
                dup.append(v)
            seen.add(v)
        except TypeError:  # unhashable: the caller's type check reports it
            return None
    return f"duplicate entries {short(dup)}; list each once" if dup else None


def description(value: Any) -> str | None:
    """A file's `description:`: a string (leave it out for none)."""
    if not isinstance(value, str):
        return f"expected a string, got {short(value)}"
    return None


def path_name(value: str) -> str | None:
    """A name that may be a file or folder: one the OS can look up (no NUL byte, no part over 255
    bytes), so a `Path.exists` on it is an answer and not an OSError (issue 21)."""
    if "\x00" in value:
        return "holds a NUL byte"
    encoded = value.encode("utf-8", "surrogatepass")
    if len(encoded) > PATH_MAX:
        return f"is {len(encoded):,} bytes long; a path is at most {PATH_MAX}"
    longest = max((len(p) for p in encoded.split(b"/")), default=0)
    if longest > NAME_MAX:
        return f"has a name part of {longest:,} bytes; a file or folder name is at most {NAME_MAX}"
    return None


def hub_repo(value: Any) -> str | None:
    """A hub dataset id, `name` or `org/name` (huggingface_hub's own rule: no `..`, no leading `/`)."""
    if not isinstance(value, str):
        return f"expected a hub dataset id org/name, got {short(value)}"
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(value)
    except HFValidationError:
        return f"expected a hub dataset id org/name (letters, digits, '-', '_', '.'), got {short(value)}"
    return None


def hub_revision(value: Any) -> str | None:
    """A hub revision: a branch, tag or commit sha such as main, v1.0, refs/convert/parquet."""
    if not isinstance(value, str) or not value:
        return f"missing or empty: pin the hub dataset's revision (main, a tag or a sha), got {short(value)}"
    if not _REVISION.match(value):
        return f"expected a branch, tag or commit sha (such as main or refs/convert/parquet), got {short(value)}"
    return None


def hub_split(value: Any) -> str | None:
    """A split name such as train, validation or train[:10%]."""
    if not isinstance(value, str) or not _SPLIT.match(value):
        return f"expected a split name such as train or test, got {short(value)}"
    return None


def hub_config(value: Any) -> str | None:
    """A hub dataset's config name (`name:`), or null for the default."""
    if value is not None and (not isinstance(value, str) or not _CONFIG.match(value)):
        return f"expected a config name (letters, digits, '_', '.', '-') or null, got {short(value)}"
    return None


HUB_CHECKS = {"path": hub_repo, "revision": hub_revision, "split": hub_split, "name": hub_config}
