"""`finbench data check`: load every data source once and compare its row counts per split.

One line per dataset: `PASS`, `FAIL` or, for raw files, `OK`. Where the data comes from follows
the same rule as every load:

- `FINBENCH_DATA_DIR` set: the raw upstream files. Their counts are printed beside the hub's
  expected ones but not compared (raw copies need not match the hub's: FiQA's raw files count
  (sentence, target) pairs, some copies ship only its headline half, and test fixtures are
  samples); a source that is missing or fails to load or validate is a FAIL.
- otherwise the hub, or the mirror under `FINBENCH_HUB_MIRROR` (a copy of the hub, so compared):
  each count must equal the task YAML's `source.rows` (the counts of the full hub datasets).

Counts are of the upstream rows a task's loader returns before our own train/dev/test split
(`total` compares the sum over splits); a test-only variant (a peer's split, e.g.
`fiqa_sa_fingpt`) is a source of its own, checked against the hub only. The mixtures' datasets
(OpenOrca, Orca-Math) are checked by finbench.mixtures.check, which adds its lines to this run.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from finbench.core import settings
from finbench.data import hub as H
from finbench.data import raw as D
from finbench.data.finben import is_finben


@dataclass
class Line:
    status: str  # PASS, FAIL, OK (raw files: loaded, not compared), INFO (no expected counts)
    dataset: str
    used_by: str
    detail: str

    def __str__(self) -> str:
        return f"{self.status:<4}  {self.dataset}  [{self.used_by}]  {self.detail}"


def _utils_module(yaml_path: Path):
    """The task folder's utils.py, imported by path as lm-eval's `!function utils.load` does."""
    path = yaml_path.parent / "utils.py"
    name = f"finbench_check_{yaml_path.parent.name}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise D.DataError(f"{path}: cannot import")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"[:400]


def _compare(counts: dict[str, int], expected: dict[str, int]) -> tuple[bool, str]:
    got = dict(counts)
    if "total" in expected:
        got = {"total": sum(counts.values())}
    ok = all(got.get(k) == v for k, v in expected.items())
    parts = []
    for k, v in expected.items():
        have = got.get(k, 0)
        parts.append(f"{k} {have:,}" + ("" if have == v else f" (expected {v:,})"))
    return ok, ", ".join(parts)


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items())


def task_lines(mode: str) -> Iterator[Line]:
    """One line per distinct data source of the tasks (tner/fin serves ner and ner_cls: once)."""
    from finbench.data import tasks as T
    seen: dict[str, list[str]] = {}
    infos = {}
    folders: set[str] = set()
    hub_only = []  # test-only variants with raw files set: a peer's split has no raw files
    for info in T.discover().values():
        if is_finben(info.config):  # checked by finben_lines
            continue
        if info.eval_only and mode == "raw":
            hub_only.append(info)
            continue
        # fpb and fpb_mc share one loader; a test-only variant has a source of its own
        key = info.name if info.eval_only else info.folder
        if key in folders:
            continue
        folders.add(key)
        hub = info.source.get("hub") or {}
        raw = info.source.get("raw") or {}
        ident = (
            f"raw {raw.get('folder')}/"
            if mode == "raw"
            else H.key(hub.get("path", "?"), hub.get("revision", "main"))
        )
        seen.setdefault(ident, []).append(info.name)
        infos.setdefault(ident, info)
    for info in hub_only:
        hub = info.source.get("hub") or {}
        yield Line("INFO", H.key(hub.get("path", "?"), hub.get("revision", "main")), info.name,
                   "hub only (a peer's test split, no raw files); not checked with raw files")
    for ident, info in infos.items():
        users = ",".join(seen[ident])
        expected = {str(k): int(v) for k, v in (info.source.get("rows") or {}).items()}
        try:
            with D.upstream_counts() as sink:
                meta = dict(info.config.get("metadata") or {})
                # the YAML's `custom_dataset: !function utils.<name>` (unresolved: a path ending in it)
                loader = str(info.config.get("custom_dataset") or "utils.load").rsplit(".", 1)[-1]
                getattr(_utils_module(info.yaml_path), loader)(**meta)
            counts = sink.get(info.folder) or next(iter(sink.values()), {})
        except Exception as err:  # one broken source must not hide the others
            yield Line("FAIL", ident, users, f"cannot load: {_first_line(err)}")
            continue
        if mode == "raw":
            note = f"; the full hub dataset has {_counts_text(expected)}" if expected else ""
            yield Line("OK", ident, users, f"loaded {_counts_text(counts)} (raw files: not compared{note})")
        elif not expected:
            yield Line("INFO", ident, users, f"loaded {_counts_text(counts)} (no expected counts declared)")
        else:
            ok, text = _compare(counts, expected)
            yield Line("PASS" if ok else "FAIL", ident, users, text)


def mode() -> str:
    if settings.data_dir() is not None:
        return "raw"
    return "mirror" if settings.hub_mirror() is not None else "hub"


def run(out=None, extra: Sequence[Callable[[str], Iterable[Line]]] = ()) -> int:
    """Print one line per dataset; 0 when nothing failed, 1 otherwise. `extra`: more line sources
    of later stages, called with the mode (`finbench data check` adds the mixtures' datasets:
    finbench.mixtures.check.run)."""
    import datasets

    datasets.disable_progress_bars()
    out = out or sys.stdout
    m = mode()
    where = {
        "raw": f"raw files under {settings.DATA_DIR_ENV}={settings.data_dir()}",
        "mirror": f"hub mirror {settings.HUB_MIRROR_ENV}={settings.hub_mirror()}",
        "hub": "the Hugging Face hub (locked shas from data.lock.yaml where resolved)",
    }[m]
    print(f"# data check: {where}", file=out)
    failed = 0
    lines = list(task_lines(m)) + list(finben_lines(m)) + [line for source in extra for line in source(m)]
    for line in lines:
        print(line, file=out, flush=True)
        failed += line.status == "FAIL"
    print(
        f"# {len(lines) - failed} of {len(lines)} datasets passed"
        + ("" if not failed else f"; {failed} FAILED"),
        file=out,
    )
    return 1 if failed else 0


# --- FinBen (tasks/finben_*): hub-only sources, counts from each YAML's `source.rows` ---------------


def _approx_ok(have: int, want: int | str) -> bool:
    """An exact count, or a hub viewer's rounded one ("7.97k": within half a unit of its last digit)."""
    if isinstance(want, int):
        return have == want
    text = str(want).strip().lower()
    scale = 1000 if text.endswith("k") else 1
    digits = text.removesuffix("k")
    step = 10 ** -len(digits.partition(".")[2]) * scale
    return abs(have - float(digits) * scale) <= step / 2


def finben_lines(mode: str) -> Iterator[Line]:
    """One line per FinBen dataset. FinBen's data lives only on the hub: with raw files set it is
    not checked; on a mirror, a dataset the mirror does not hold is reported, not failed (FinBen
    is optional there; several sets are gated)."""
    from finbench.data import finben_load
    from finbench.data import tasks as T
    for info in T.discover().values():
        if not is_finben(info.config):
            continue
        hub = info.source.get("hub") or {}
        ident = H.key(hub.get("path", "?"), hub.get("revision", "main"))
        mirror = settings.hub_mirror()
        if mode == "raw":
            yield Line("INFO", ident, info.name, "FinBen: hub only (no raw files); not checked with raw files")
            continue
        if mode == "mirror" and mirror is not None and not H.mirror_folder(mirror, hub["path"], hub.get("revision", "main")).is_dir():
            yield Line("INFO", ident, info.name, "FinBen: not in the mirror; not checked")
            continue
        expected = dict(info.source.get("rows") or {})
        try:
            with D.upstream_counts() as sink:
                finben_load.load(**dict(info.config.get("metadata") or {}))
            counts = next(iter(sink.values()), {})
        except Exception as err:  # one broken source must not hide the others
            yield Line("FAIL", ident, info.name, f"cannot load: {_first_line(err)}")
            continue
        if not expected:
            yield Line("INFO", ident, info.name, f"loaded {_counts_text(counts)} (no expected counts in the evidence)")
            continue
        ok = all(_approx_ok(counts.get(k, 0), v) for k, v in expected.items())
        text = ", ".join(f"{k} {counts.get(k, 0):,}" + ("" if _approx_ok(counts.get(k, 0), v) else f" (expected {v})")
                         for k, v in expected.items())
        yield Line("PASS" if ok else "FAIL", ident, info.name, text)
