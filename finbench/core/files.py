"""File helpers every module shares: atomic writes, content digests, did-you-mean, name-or-path.

Nothing here imports the rest of the package (but finbench.core.validate, which imports nothing), so
any module can use it without an import circle.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from finbench.core.validate import listing, short


def write_atomic(
    path: Path,
    content: str | bytes | Callable[[IO[Any]], None],
    *,
    binary: bool = False,
    newline: str | None = "\n",
    fsync: bool = False,
    mode: int | None = None,
) -> Path:
    """Write `path` via a temp file in the same folder and `os.replace`: readers never see half a file.

    `content` is the text/bytes, or a callable that writes to the open handle (streams large files).
    The file gets `mode`, else what `open` would give it (0666 less the umask: 0644 or 0664), not
    the 0600 of `mkstemp`, so a shared cluster group can read mixtures, configs and results.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = binary or isinstance(content, bytes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        opts: dict[str, Any] = {} if binary else {"encoding": "utf-8", "newline": newline}
        with os.fdopen(fd, "wb" if binary else "w", **opts) as fh:
            if callable(content):
                content(fh)
            else:
                fh.write(content)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, default_mode(0o666) if mode is None else mode)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


def default_mode(base: int) -> int:
    """`base` (0o666 for a file, 0o777 for a folder) less the process umask, as `open`/`mkdir` do."""
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return base & ~mask


def build_dir_atomic(final: Path, build: Callable[[Path], None], marker: str = ".complete") -> Path:
    """Build a folder in a sibling temp folder, mark it complete, then move it into place."""
    final = Path(final)
    if (final / marker).exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=final.name + ".tmp-", dir=final.parent))
    try:
        os.chmod(tmp, default_mode(0o777))  # mkdtemp's 0700 would hide the folder from the group
        build(tmp)
        (tmp / marker).write_text("ok\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(folder: Path) -> dict[str, str]:
    """{relative path: sha256} for every file under `folder` (no __pycache__); {} if absent."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def is_file(path: Path) -> bool:
    """Path.is_file, but False (not an OSError) for a name the OS refuses, such as one too long."""
    try:
        return path.is_file()
    except OSError:
        return False


def did_you_mean(
    name: object, candidates: Iterable[str], n: int = 3, cutoff: float = 0.6, *, quote: bool = True
) -> str:
    """' Did you mean 'a' or 'b'?' for close candidates, else '' (`quote=False`: bare names)."""
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=n, cutoff=cutoff)
    shown = [repr(c) if quote else c for c in close]
    return f" Did you mean {' or '.join(shown)}?" if close else ""


def name_or_path(
    value: str | os.PathLike[str],
    known: dict[str, Path],
    *,
    what: str,
    where: Path,
    error: type[Exception],
    suffixes: tuple[str, ...] = (".yaml", ".yml"),
) -> Path:
    """A bare name looked up in `known` (with did-you-mean), or a file path that must exist."""
    text = str(value)
    path = Path(text).expanduser()
    if path.suffix in suffixes or os.sep in text:
        if not is_file(path):
            shown = str(path) if len(str(path)) <= 120 else short(str(path), 120)
            raise error(f"{shown}: {what} file not found")
        return path.resolve()
    if text not in known:
        hint = did_you_mean(text, known)
        raise error(
            f"unknown {what} {short(text)} (looked in {where}).{hint or ' Known: ' + (listing(sorted(known)) or 'none')}"
        )
    return known[text]
