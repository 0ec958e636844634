"""Build one exact, reproducible JSONL of chat examples from a mixture.

Axolotl concatenates datasets, only downsamples with `weight`, loses task identity and caches by
file name, so the project builds each mixture itself and hands Axolotl one file.

The output file name carries a hash over the spec, the seed, the builder's code (this package and
the task modules it renders with), and every input (data file hashes or hub revisions, task
folders): a rebuild with nothing changed is a no-op, and the same inputs give byte-identical
output. Files are written to a temporary name and renamed; temporaries of killed builds are
removed by the next build into the same folder.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finbench.core import settings
from finbench.core.files import sha256_file, tree_digest, write_atomic
from finbench.mixtures.catalog import load_mixture
from finbench.mixtures.contamination import (
    ContaminationIndex,
    cached_lm_eval_templates,
    guard_tasks,
    load_eval_items,
)
from finbench.mixtures.errors import err
from finbench.mixtures.sampling import Kept, resolve_sizes, salt
from finbench.mixtures.sources.base import Source
from finbench.mixtures.sources.rows import BATCH
from finbench.mixtures.sources.task import task_fingerprint
from finbench.mixtures.spec import Component, Mixture

BUILDER_VERSION = 1
PACKAGE_DIR = Path(__file__).resolve().parent
STALE_TMP_SECONDS = 600  # a temporary this old is a killed build's (writing takes seconds)
_TMP_RE = re.compile(r"^\..+-[0-9a-f]{16}\.(jsonl|manifest\.json|timings\.json|contamination\.json)\..+\.tmp$")


def default_out() -> Path:
    return settings.runs_dir() / "mixtures"


@dataclass
class Selected:
    key: int
    index: int
    messages_json: str
    hits: list[dict[str, Any]]


@dataclass
class ComponentResult:
    name: str
    source: dict[str, Any]
    requested: int = 0
    rows_seen: int = 0
    available: int = 0
    malformed: Counter = field(default_factory=Counter)
    malformed_examples: dict[str, list[int]] = field(default_factory=dict)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    selected: list[Selected] = field(default_factory=list)
    copies: int = 0
    remainder: int = 0
    tokens: int | None = None

    @property
    def taken(self) -> int:
        return self.copies * len(self.selected) + self.remainder

    def manifest(self) -> dict[str, Any]:
        n = len(self.selected)
        out: dict[str, Any] = {
            "source": self.source,
            "rows_in_source": self.rows_seen,
            "rows_available": self.available,
            "rows_requested": self.requested,
            "rows_taken": self.taken,
            "distinct_rows": n,
            "upsampling_factor": round(self.taken / n, 4) if n else 0.0,
            "whole_repeats": self.copies,
            "remainder_rows": self.remainder,
            "malformed_skipped": {
                reason: {"rows": c, "first_indices": self.malformed_examples.get(reason, [])}
                for reason, c in sorted(self.malformed.items())
            },
        }
        if self.dropped:
            out["contaminated_dropped"] = self.dropped
        if self.tokens is not None:
            out["tokens"] = self.tokens
        return out


@dataclass
class BuildResult:
    jsonl: Path
    manifest: Path
    cached: bool
    summary: dict[str, Any]


def code_digest() -> dict[str, Any]:
    """The builder's code: every file of this package, and the task modules rows are rendered by."""
    pkg = PACKAGE_DIR.parent
    return {
        "mixtures": {k: v for k, v in tree_digest(PACKAGE_DIR).items() if k.endswith(".py")},
        **{p: sha256_file(pkg / p) for p in ("data/tasks.py", "data/raw.py")},
    }


def fingerprint(mix: Mixture, sources: dict[str, Source], guard: list[str], tokenizer: str | None) -> str:
    import lm_eval

    inputs: dict[str, Any] = {
        "builder": BUILDER_VERSION,
        "code": code_digest(),
        "lm_eval": getattr(lm_eval, "__version__", "?"),
        "spec": mix.spec_dict(),
        "tokenizer": _tokenizer_digest(tokenizer) if tokenizer else None,
        "components": {name: src.fingerprint() for name, src in sources.items()},
        "guard": {t: task_fingerprint(t) for t in guard},
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _tokenizer_digest(path: str) -> Any:
    p = Path(path)
    return tree_digest(p) if p.is_dir() else path


def _check_rows(src: Source, rows: list[Kept], guard: ContaminationIndex | None) -> list[list[dict[str, Any]]]:
    if guard is None:
        return [[] for _ in rows]
    hits: list[list[dict[str, Any]]] = []
    for i in range(0, len(rows), BATCH):
        pairs = [src.guard_texts(row, msgs) for _, msgs, row in rows[i : i + BATCH]]
        hits += guard.check([p[0] for p in pairs], [p[1] for p in pairs])
    return hits


def _pick(mix: Mixture, comp: Component, src: Source, k: int, progress: bool):
    """One bottom-k pass as a ComponentResult (without selection yet) and its rows."""
    sampler = mix.sampler_of(comp)
    salt_ = salt("select", mix.seed, comp.name)
    keyer = sampler.keyer(salt_, mix.seed, src.count_rows() if sampler.needs_total else None)
    pick = src.bottom_k(salt_, k, progress, comp.name, keyer=keyer)
    res = ComponentResult(comp.name, src.describe(), requested=k, rows_seen=pick.rows_seen)
    res.available, res.malformed, res.malformed_examples = pick.available, pick.malformed, pick.malformed_examples
    if res.malformed and res.rows_seen:
        bad = sum(res.malformed.values()) / res.rows_seen
        if bad > mix.max_malformed:
            top = ", ".join(f"{r!r} x{c}" for r, c in res.malformed.most_common(3))
            raise err(
                mix.where,
                f"components.{comp.name}",
                f"{bad:.1%} of {res.rows_seen} rows are malformed (max_malformed {mix.max_malformed:.1%}): {top}",
            )
    return res, pick.rows, pick.exhausted


def select(
    mix: Mixture, comp: Component, src: Source, k: int, guard: ContaminationIndex | None, progress: bool
) -> ComponentResult:
    """Bottom-k of the eligible rows by sampling key; then whole repeats + remainder if short.

    The contamination check runs on the kept rows only; in `drop` mode a margin of spare rows is
    kept, and if hits exceed it the pass is repeated with a larger margin (rare).
    """
    need = k if comp.pool is None else min(k, comp.pool)  # distinct rows to draw
    margin = (need // 50 + 32) if guard is not None and mix.contamination.mode == "drop" else 0
    while True:
        res, rows, exhausted = _pick(mix, comp, src, need + margin, progress)
        res.requested = k
        eligible = []
        for (key_idx, msgs, _), h in zip(rows, _check_rows(src, rows, guard), strict=True):
            if h and mix.contamination.mode == "drop":
                res.dropped.append({"row": key_idx[1], "hits": h[:5]})
            else:
                eligible.append((key_idx, msgs, h))
        if len(eligible) >= need or exhausted:
            break
        margin = 4 * (margin + len(res.dropped))
    if not eligible:
        why = "no usable rows in the source"
        if res.dropped:
            why += (
                f": the contamination guard dropped all {len(res.dropped)} (they match eval items, "
                f"e.g. {res.dropped[0]['hits'][:2]}); see `contamination:` in the mixture"
            )
        raise err(mix.where, f"components.{comp.name}", why)
    eligible = eligible[:need]  # `pool`: the first rows by key only, repeated past them
    if not comp.upsample:  # capped at what is there (the study's min(count, len)), never repeated
        k = res.requested = min(k, len(eligible))
    eligible = eligible[:k]
    res.selected = [
        Selected(key, idx, json.dumps(msgs, ensure_ascii=False), h) for (key, idx), msgs, h in eligible
    ]
    res.copies, res.remainder = divmod(k, len(eligible))  # (1, 0) unless upsampling
    return res


def _contamination_report(results: list[ComponentResult]) -> list[dict[str, Any]]:
    report = []
    for res in results:
        for s in res.selected:
            if s.hits:
                msgs = json.loads(s.messages_json)
                user = next((m["content"] for m in msgs if m["role"] == "user"), "")
                report.append({"component": res.name, "row": s.index, "user": user[:200], "hits": s.hits})
    return report


def _fail_on_contamination(mix: Mixture, report: list[dict[str, Any]], rpath: Path) -> None:
    write_atomic(rpath, json.dumps(report, indent=1, ensure_ascii=False))
    lines = [
        f"  {r['component']} row {r['row']}: "
        + "; ".join(f"{h['task']}/{h['split']}/{h['id']} ({h['match']} {h['overlap']})" for h in r["hits"][:3])
        + f" | {r['user'][:80]!r}"
        for r in report[:10]
    ]
    more = f"\n  ... and {len(report) - 10} more" if len(report) > 10 else ""
    raise err(
        mix.where,
        "contamination",
        f"{len(report)} training row(s) overlap dev/test items "
        f"(full report: {rpath}); set contamination: drop or allow in the mixture to "
        "proceed:\n" + "\n".join(lines) + more,
    )


def count_tokens(tokenizer_path: str, results: list[ComponentResult]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    for res in results:
        total = 0
        for i in range(0, len(res.selected), 256):
            chunk = res.selected[i : i + 256]
            convs = [json.loads(s.messages_json) for s in chunk]
            if getattr(tok, "chat_template", None):
                ids = tok.apply_chat_template(convs, tokenize=True)
                if isinstance(ids, dict) or hasattr(ids, "keys"):
                    ids = ids["input_ids"]
                lens = [len(x) for x in ids]
            else:
                lens = [
                    sum(len(tok(m["content"], add_special_tokens=False)["input_ids"]) for m in c)
                    for c in convs
                ]
            for j, n in enumerate(lens):
                total += n * (res.copies + (1 if i + j < res.remainder else 0))
        res.tokens = total


def output_paths(mix: Mixture, digest: str, out_dir: Path) -> tuple[Path, Path]:
    stem = f"{mix.name}-{digest[:16]}"
    return out_dir / f"{stem}.jsonl", out_dir / f"{stem}.manifest.json"


def timings_path(manifest: Path) -> Path:
    """`NAME-HASH.timings.json` beside `NAME-HASH.manifest.json`: the last build's timings."""
    return manifest.with_name(manifest.name.replace(".manifest.json", ".timings.json"))


def remove_stale_temporaries(folder: Path, now: float | None = None) -> list[Path]:
    """Hidden temporaries of killed builds (our naming only, older than STALE_TMP_SECONDS)."""
    now = time.time() if now is None else now
    removed = []
    for p in folder.glob(".*.tmp") if folder.is_dir() else ():
        try:
            if _TMP_RE.match(p.name) and now - p.stat().st_mtime > STALE_TMP_SECONDS:
                p.unlink()
                removed.append(p)
        except FileNotFoundError:
            continue  # another build finished or cleaned it meanwhile
    return removed


def _ordered_rows(mix: Mixture, results: list[ComponentResult]) -> list[tuple[bytes, int, int]]:
    """Final order: a seeded hash of (component, row, copy), so tasks are interleaved."""
    order: list[tuple[bytes, int, int]] = []
    for ci, res in enumerate(results):
        osalt = salt("order", mix.seed, res.name).to_bytes(8, "little")
        for si, s in enumerate(res.selected):
            reps = res.copies + (1 if si < res.remainder else 0)
            for c in range(reps):
                k = hashlib.blake2b(
                    osalt + s.index.to_bytes(8, "little") + c.to_bytes(4, "little"), digest_size=8
                ).digest()
                order.append((k, ci, si))
    order.sort()
    return order


def _write_jsonl(path: Path, results: list[ComponentResult], order: list[tuple[bytes, int, int]]) -> None:
    names = [json.dumps(r.name) for r in results]

    def write_rows(fh) -> None:
        for _, ci, si in order:
            fh.write('{"messages": ' + results[ci].selected[si].messages_json + ', "task": ' + names[ci] + "}\n")

    write_atomic(path, write_rows)


class _Timer:
    def __init__(self, first: str, since: float) -> None:
        self.timings: dict[str, float] = {first: time.perf_counter() - since}
        self.t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self.t, 2)
        self.t = now


def _select_all(mix: Mixture, sources: dict[str, Source], guard_names: list[str], timer: _Timer, progress: bool):
    """Load sources and eval items, then pick every component's rows: (results, eval item count)."""
    with cached_lm_eval_templates():
        loaded: dict[str, Any] = {}
        for src in sources.values():
            src.prepare(loaded)
        timer.lap("load_sources")
        items = load_eval_items(guard_names, mix.where, loaded)
        loaded.clear()
        index = ContaminationIndex(items, mix.contamination)
        timer.lap("load_and_index_eval_items")
        available = {name: sources[name].count_valid() for name in _needs_available(mix)}
        sizes = resolve_sizes(mix, available, mix.sizing)
        results = []
        for name, comp in mix.components.items():
            results.append(select(mix, comp, sources[name], sizes[name], index, progress))
            timer.lap(f"select:{name}")
    sizing = {n: {"rows_available": available.get(n), "size": sizes[n]} for n in mix.sizing}
    return results, len(items), sizing


def _needs_available(mix: Mixture) -> list[str]:
    """Components whose valid rows must be counted before sizing: fractions, and capped ones
    that others are sized from (or that are only there to size others)."""
    every = {**mix.sizing, **mix.components}
    referenced = {r for c in every.values() for r in c.size.relative_to}
    return [
        n
        for n, c in every.items()
        if c.size.fraction is not None or (not c.upsample and (n in referenced or not c.emit))
    ]


def _summary(mix, digest, jsonl, rows, tokenizer, guard_names, n_items, report, results) -> dict:
    """The manifest: what the build read and wrote, nothing that varies between two builds of the
    same inputs (timings go to `timings_path`), so a rebuild writes the same bytes."""
    summary = {
        "mixture": mix.name,
        "file": str(mix.path) if mix.path else None,
        "description": mix.description,
        "seed": mix.seed,
        "content_hash": digest,
        "output": jsonl.name,
        "output_sha256": sha256_file(jsonl),
        "rows": rows,
        "tokenizer": tokenizer,
        "spec": mix.spec_dict(),
        "contamination": {
            **mix.contamination.to_dict(),
            "eval_tasks": guard_names,
            "eval_items": n_items,
            "hits_kept": report if mix.contamination.mode == "allow" else [],
            "dropped": sum(len(r.dropped) for r in results),
        },
        "components": {r.name: r.manifest() for r in results},
    }
    if tokenizer:
        summary["tokens"] = sum(r.tokens or 0 for r in results)
    return summary


def build(
    mixture: Mixture | str,
    out_dir: Path | str | None = None,
    *,
    tokenizer: str | None = None,
    force: bool = False,
    progress: bool | None = None,
) -> BuildResult:
    """Build a mixture and return its paths; unchanged inputs return the cached files."""
    t0 = time.perf_counter()
    mix = load_mixture(mixture) if isinstance(mixture, str) else mixture
    out_dir = Path(out_dir) if out_dir else default_out()
    progress = sys.stderr.isatty() if progress is None else progress
    # Cheap checks first (files exist), then the up-to-date check, then loading (tasks, the
    # first row of each dataset against its declared format, eval items), then the one pass.
    every = {**mix.sizing, **mix.components}  # sizing-only components are read (counted) too
    sources = {name: comp.open(mix.where) for name, comp in every.items()}
    guard_names = guard_tasks(mix)
    digest = fingerprint(mix, sources, guard_names, tokenizer)
    jsonl, manifest = output_paths(mix, digest, out_dir)
    remove_stale_temporaries(jsonl.parent)
    if not force and jsonl.is_file() and manifest.is_file():
        return BuildResult(jsonl, manifest, True, json.loads(manifest.read_text(encoding="utf-8")))
    timer = _Timer("check_and_hash_inputs", t0)
    results, n_items, sizing = _select_all(mix, sources, guard_names, timer, progress)
    timer.t = time.perf_counter()
    report = _contamination_report(results)
    if report and mix.contamination.mode == "fail":
        _fail_on_contamination(mix, report, out_dir / f"{mix.name}-{digest[:16]}.contamination.json")
    if tokenizer:
        count_tokens(tokenizer, results)
    order = _ordered_rows(mix, results)
    _write_jsonl(jsonl, results, order)
    timer.lap("order_and_write")
    summary = _summary(mix, digest, jsonl, len(order), tokenizer, guard_names, n_items, report, results)
    if sizing:
        summary["sizing_only"] = sizing
    # The JSONL and the manifest are byte-reproducible; this build's timings sit beside them.
    timings = {"build_seconds": round(time.perf_counter() - t0, 2),
               "timings_s": {k: round(v, 2) for k, v in timer.timings.items()}}
    write_atomic(timings_path(manifest), json.dumps(timings, indent=2, sort_keys=True))
    write_atomic(manifest, json.dumps(summary, indent=2, ensure_ascii=False, sort_keys=True))
    return BuildResult(jsonl, manifest, False, {**summary, **timings})
