"""Every Hugging Face hub dataset load goes through `load_dataset` here.

Two places a hub source can come from, and one lock:

- the hub itself, at the commit sha the lock file (`data.lock.yaml`, written by
  `finbench data lock`) records for `repo@revision` (resolved online, or found in public
  evidence and marked so: that one warns once); an unlocked source loads at its branch and
  warns once (branches move);
- a hub-shaped mirror, `FINBENCH_HUB_MIRROR=DIR`, for machines without the hub: one folder per
  repo and branch, laid out exactly as the hub serves it (`mirror_folder` says where). The same
  `datasets.load_dataset` then reads that folder, so a mirror behaves as the hub does (README
  `configs:`, split names inferred from file names, a parquet branch read as a plain tree).

A load that cannot reach the hub (offline, no network) raises a one-line `DataError` naming the
dataset and the two ways out (`FINBENCH_DATA_DIR`, `FINBENCH_HUB_MIRROR`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from finbench.core import settings
from finbench.core.files import write_atomic
from finbench.data.raw import DataError, read_yaml

log = logging.getLogger(__name__)
LOCK_FILE = "data.lock.yaml"  # in the repository root
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
PARQUET_BRANCH = "refs/convert/parquet"
_warned: set[str] = set()


def lock_path() -> Path:
    return settings.ROOT / LOCK_FILE


def key(repo: str, revision: str) -> str:
    return f"{repo}@{revision}"


def mirror_folder(mirror: Path, repo: str, revision: str) -> Path:
    """`DIR/<org>/<name>` for `main` (or a pinned sha), `DIR/<org>/<name>@<branch>` for another branch.

    So main of `takala/financial_phrasebank` lives in `DIR/takala/financial_phrasebank/`, and a
    branch such as `refs/convert/parquet` would live in nested folders
    `DIR/<org>/<name>@refs/convert/parquet/` (the branch name has slashes).
    """
    if revision == "main" or SHA_RE.match(revision):
        return mirror / repo
    return mirror / f"{repo}@{revision}"


def mirror_cache_dir(folder: Path) -> Path:
    """A `datasets` cache folder for one mirror folder's current files.

    `datasets` 4.8 caches a local folder's prepared Arrow data by dataset name and config, and can
    hand back another folder's (or an older copy's) rows; keying the cache by the folder's path and
    its files' sizes and mtimes keeps every mirror load exact (a stat walk, no hashing of data).
    """
    import hashlib

    h = hashlib.sha256(str(folder.resolve()).encode())
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return settings.cache_dir() / "hub-mirror" / h.hexdigest()[:20]


ORIGINS = ("hub", "public-evidence")  # who gave a lock entry its sha


def read_lock(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """{repo@revision: {"sha": str | None, "origin"?, "evidence"?, ...}} from the lock ({} when absent).

    `origin: hub` (what `finbench data lock` writes) is a sha the hub itself returned;
    `origin: public-evidence` is one found in public code or pages pinning that repo (`evidence`
    names the source), not yet resolved online: loads use it, and warn once.
    """
    path = path or lock_path()
    if not path.is_file():
        return {}
    data = read_yaml(path)
    sources = data.get("sources") or {}
    if not isinstance(sources, dict):
        raise DataError(f"{path}: key 'sources': expected a mapping of repo@revision to {{sha}}")
    out = {}
    for name, entry in sources.items():
        if not isinstance(entry, dict):
            raise DataError(f"{path}: sources.{name}: expected a mapping with 'sha'")
        sha = entry.get("sha")
        if sha is not None and not (isinstance(sha, str) and SHA_RE.match(sha)):
            raise DataError(f"{path}: sources.{name}.sha: expected a 40-hex commit sha or null, got {sha!r}")
        origin = entry.get("origin", "hub" if sha else None)
        if origin is not None and origin not in ORIGINS:
            raise DataError(f"{path}: sources.{name}.origin: expected one of {list(ORIGINS)}, got {origin!r}")
        if origin == "public-evidence" and not (sha and isinstance(entry.get("evidence"), str) and entry["evidence"].strip()):
            raise DataError(
                f"{path}: sources.{name}: origin 'public-evidence' needs a 'sha' and an 'evidence' "
                "string naming the public code or page that gives it"
            )
        out[str(name)] = dict(entry, origin=origin)
    return out


def lock_entry(repo: str, revision: str) -> dict[str, Any]:
    if SHA_RE.match(revision):
        return {"sha": revision, "origin": "declared"}
    return read_lock().get(key(repo, revision)) or {}


def locked_sha(repo: str, revision: str) -> str | None:
    return lock_entry(repo, revision).get("sha")


def _warn_unresolved(repo: str, revision: str, sha: str | None) -> None:
    """Once per source and process: a load at a moving branch, or at a sha not resolved online."""
    k = key(repo, revision)
    if k in _warned or SHA_RE.match(revision):
        return
    _warned.add(k)
    entry = lock_entry(repo, revision)
    if sha is None:
        log.warning("%s is not locked to a commit sha; loaded the moving branch. Run `finbench data lock`.", k)
    elif entry.get("origin") == "public-evidence":
        log.warning(
            "%s is pinned to %s, a sha found in public evidence (%s) and not yet resolved online; "
            "run `finbench data lock` on a machine with hub access.", k, sha[:12], entry.get("evidence"),
        )


def record(hub: dict[str, Any], with_mirror: bool = True) -> dict[str, Any]:
    """What a manifest records about a hub source: its declaration, the locked sha, the mirror.

    Fingerprints leave the mirror out (`with_mirror=False`): the same sha read from a mirror or the
    hub is the same data.
    """
    if not hub.get("path"):
        return dict(hub)
    out = dict(hub)
    revision = str(hub.get("revision", "main"))
    entry = lock_entry(hub["path"], revision)
    out["sha"] = entry.get("sha")
    if entry.get("origin") == "public-evidence":
        out["sha_origin"] = "public-evidence"  # not yet resolved online
    mirror = settings.hub_mirror()
    if with_mirror and mirror is not None:
        out["mirror"] = str(mirror_folder(mirror, hub["path"], revision))
    return out


def _ways_out(repo: str, revision: str) -> str:
    return (
        f"set {settings.DATA_DIR_ENV}=DIR (the upstream raw files, README 'Data') or "
        f"{settings.HUB_MIRROR_ENV}=DIR (a hub-shaped copy with {repo} in "
        f"DIR/{mirror_folder(Path('.'), repo, revision).as_posix()}/)"
    )


def _is_unreachable(err: BaseException) -> bool:
    names = {type(e).__name__ for e in _chain(err)}
    return bool(names & {"OfflineModeIsEnabled", "ConnectionError", "ConnectTimeout", "ReadTimeout"}) or any(
        isinstance(e, ConnectionError | TimeoutError) for e in _chain(err)
    )


def _chain(err: BaseException | None) -> Iterable[BaseException]:
    seen = 0
    while err is not None and seen < 10:
        yield err
        err = err.__cause__ or err.__context__
        seen += 1


def load_dataset(
    repo: str,
    *,
    revision: str,
    data_dir: str | None = None,
    data_files: Any = None,
    split: str | None = None,
    streaming: bool = False,
    name: str | None = None,
    loader: Callable[..., Any] | None = None,
):
    """`datasets.load_dataset` on the mirror folder when FINBENCH_HUB_MIRROR is set, else on the hub.

    On the hub the locked sha of `repo@revision` is used when the lock has one; `revision` stays the
    branch a source declares (its name says which tree: `main` or `refs/convert/parquet`).
    """
    import datasets

    load = loader or datasets.load_dataset
    kwargs: dict[str, Any] = {"split": split, "streaming": streaming}
    if data_dir is not None:
        kwargs["data_dir"] = data_dir
    if data_files is not None:
        kwargs["data_files"] = data_files
    mirror = settings.hub_mirror()
    where = f"hub dataset {key(repo, revision)}"
    if mirror is not None:
        folder = mirror_folder(mirror, repo, revision)
        if not folder.is_dir():
            raise DataError(
                f"{settings.HUB_MIRROR_ENV}={mirror}: no folder {folder} for {where}; copy the repo "
                f"there as the hub lays it out (README 'Hub mirror')"
            )
        if data_dir is not None and not (folder / data_dir).is_dir():
            raise DataError(f"{folder}: no folder {data_dir!r} ({where} is read from it)")
        where = f"{where} (mirror {folder})"
        target, rev = str(folder), None
        if not streaming:
            kwargs["cache_dir"] = str(mirror_cache_dir(folder))
    else:
        sha = locked_sha(repo, revision)
        target, rev = repo, sha or revision
    try:
        ds = load(target, name, revision=rev, **kwargs) if rev else load(target, name, **kwargs)
    except DataError:
        raise
    except Exception as err:  # datasets/huggingface_hub raise many types; give one line
        if mirror is None and (settings.hub_offline() or _is_unreachable(err)):
            raise DataError(
                f"{where}: the hub is not reachable (offline or no network); {_ways_out(repo, revision)}"
            ) from err
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise DataError(f"{where}: cannot load: {type(err).__name__}: {first[:300]}") from err
    if mirror is None:
        _warn_unresolved(repo, revision, locked_sha(repo, revision))
    return ds


def download_file(repo: str, filename: str, *, revision: str) -> Path:
    """One file of a dataset repo, for files `datasets` cannot type (e.g. JSON whose fields mix
    lists, numbers and strings): the mirror's copy when FINBENCH_HUB_MIRROR is set, else
    `hf_hub_download` at the locked sha (or `revision`). Errors are one line, as for load_dataset."""
    where = f"hub dataset {key(repo, revision)}"
    mirror = settings.hub_mirror()
    if mirror is not None:
        path = mirror_folder(mirror, repo, revision) / filename
        if not path.is_file():
            raise DataError(f"{settings.HUB_MIRROR_ENV}={mirror}: no file {path} for {where}")
        return path
    from huggingface_hub import hf_hub_download

    sha = locked_sha(repo, revision)
    try:
        path = Path(hf_hub_download(repo, filename, repo_type="dataset", revision=sha or revision))
    except Exception as err:  # offline, unknown revision or file, network
        if settings.hub_offline() or _is_unreachable(err):
            raise DataError(
                f"{where}: cannot download {filename!r}: the hub is not reachable (offline or no "
                f"network); {_ways_out(repo, revision)}"
            ) from err
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise DataError(f"{where}: cannot download {filename!r}: {type(err).__name__}: {first[:300]}") from err
    _warn_unresolved(repo, revision, sha)
    return path


def require_columns(ds: Any, columns: Iterable[str], where: str) -> None:
    """A one-line error naming the first missing column (a hub copy with another schema)."""
    found = list(getattr(ds, "column_names", None) or [])
    for col in columns:
        if col not in found:
            raise DataError(f"{where}: missing field {col!r} (found {found})")


# --- the lock ---------------------------------------------------------------------------------


def hub_sources() -> dict[str, dict[str, str]]:
    """Every hub source the repo declares: tasks' `metadata.source.hub` and mixtures' `dataset.hub`.

    {repo@revision: {"path", "revision", "used_by"}}, sorted by key.
    """
    from finbench.data import tasks as T
    found: dict[str, dict[str, Any]] = {}

    def add(hub: Any, user: str) -> None:
        if isinstance(hub, dict) and isinstance(hub.get("path"), str):
            rev = str(hub.get("revision", "main"))
            if SHA_RE.match(rev):
                return  # already pinned in place
            entry = found.setdefault(
                key(hub["path"], rev), {"path": hub["path"], "revision": rev, "used_by": []}
            )
            if user not in entry["used_by"]:
                entry["used_by"].append(user)

    for info in T.discover().values():
        add(info.source.get("hub"), f"task {info.name}")
    for path in sorted(settings.mixtures_dir().glob("*.yaml")):
        try:
            mix = read_yaml(path)
        except DataError as err:
            log.warning("skipping %s: %s", path, err)
            continue
        for comp_name, comp in (mix.get("components") or {}).items():
            ds = comp.get("dataset") if isinstance(comp, dict) else None
            if isinstance(ds, dict):
                hub = ds.get("hub")
                add({"path": hub} if isinstance(hub, str) else hub, f"mixture {path.stem}.{comp_name}")
    return {k: found[k] for k in sorted(found)}


def resolve_sha(repo: str, revision: str) -> str:
    """The commit sha `revision` of dataset `repo` points at now (needs the hub)."""
    from huggingface_hub import HfApi

    info = HfApi().dataset_info(repo, revision=revision)
    sha = getattr(info, "sha", None)
    if not isinstance(sha, str) or not SHA_RE.match(sha):
        raise DataError(f"hub dataset {key(repo, revision)}: the hub returned no commit sha ({sha!r})")
    return sha


LOCK_HEADER = """\
# Hub revisions pinned to commit shas. Written by `finbench data lock` (or `make data-lock`) on a
# machine with hub access; commit the result. Every hub load uses `sha` for its repo@revision, and
# mixture manifests record it; a mirror (FINBENCH_HUB_MIRROR) should be a copy at these shas.
# `origin: hub`: the hub returned this sha. `origin: public-evidence`: a sha that public code or
# pages pin for this repo (`evidence` names them), NOT yet resolved online: loads use it and warn
# once; `finbench data lock` replaces it when run online. `sha: null`: not resolved yet; that
# source loads its moving branch and warns once.
"""


def write_lock(
    sources: dict[str, dict[str, Any]],
    resolved: dict[str, str | None],
    path: Path | None = None,
    previous: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Write the lock; a source the hub did not resolve keeps its public-evidence entry, if any."""
    import yaml

    path = path or lock_path()
    previous = previous or {}
    body_sources: dict[str, dict[str, Any]] = {}
    for k, v in sources.items():
        old = previous.get(k) or {}
        if resolved.get(k):
            entry: dict[str, Any] = {"sha": resolved[k], "origin": "hub"}
        elif old.get("origin") == "public-evidence":
            entry = {"sha": old["sha"], "origin": "public-evidence", "evidence": old["evidence"]}
        else:
            entry = {"sha": None}
        body_sources[k] = {**entry, "used_by": list(v["used_by"])}
    body = {
        "resolved": all(e.get("origin") == "hub" for e in body_sources.values()),
        "sources": body_sources,
    }
    text = LOCK_HEADER + yaml.safe_dump(body, sort_keys=False, width=100)
    return write_atomic(path, text)


def lock(
    path: Path | None = None, resolver: Callable[[str, str], str] = resolve_sha
) -> tuple[Path, list[str]]:
    """Resolve every hub source to its commit sha and write the lock. Returns (path, errors)."""
    sources = hub_sources()
    previous = read_lock(path or lock_path())
    resolved: dict[str, str | None] = {}
    errors = []
    for k, src in sources.items():
        try:
            resolved[k] = resolver(src["path"], src["revision"])
        except Exception as err:  # one unreachable repo must not hide the others
            resolved[k] = None
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            errors.append(f"{k}: {type(err).__name__}: {first[:200]}")
    return write_lock(sources, resolved, path, previous), errors
