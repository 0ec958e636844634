"""The mixtures' external datasets in `finbench data check`: each (OpenOrca, Orca-Math) is opened and
its first row checked for the columns the mixture's format maps; not counted (millions of rows).
`run` is the whole check: the tasks' sources (finbench.data.check) followed by these lines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from finbench.core import settings
from finbench.data import check as data_check
from finbench.data import hub as H
from finbench.data import raw as D
from finbench.data.check import Line, _first_line
from finbench.mixtures.formats import parse_format


def run(out=None, external: bool = True) -> int:
    """`finbench data check`: every task source, then (unless `external` is off) every mixture
    dataset; 0 when nothing failed, 1 otherwise."""
    return data_check.run(out, extra=[mixture_lines] if external else [])


def _mixture_datasets() -> dict[str, dict[str, Any]]:
    """{identity: {"hub", "raw", "format", "used_by"}} of every mixture's external dataset."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(settings.mixtures_dir().glob("*.yaml")):
        mix = D.read_yaml(path)
        for comp_name, comp in (mix.get("components") or {}).items():
            ds = comp.get("dataset") if isinstance(comp, dict) else None
            if not isinstance(ds, dict) or not isinstance(ds.get("hub"), dict):
                continue
            hub = ds["hub"]
            entry = out.setdefault(
                H.key(hub["path"], hub.get("revision", "main")),
                {"hub": hub, "raw": ds.get("raw") or {}, "format": ds.get("format") or {}, "used_by": []},
            )
            entry["used_by"].append(f"{path.stem}.{comp_name}")
    return out


def _format_columns(fmt: dict[str, Any]) -> list[str]:
    """The columns a dataset's declared format reads (the mixtures' format registry says)."""
    return parse_format("mixture", "format", fmt).columns()


def mixture_lines(mode: str) -> Iterator[Line]:
    for ident, src in _mixture_datasets().items():
        users = ",".join(sorted(set(src["used_by"])))
        need = _format_columns(src["format"])
        if mode == "raw" and not src["raw"]:
            yield Line("INFO", H.key(src["hub"]["path"], src["hub"].get("revision", "main")), users,
                       "hub only (no raw: files declared); not checked with raw files")
            continue
        if mode == "raw":
            ident = f"raw {src['raw'].get('folder')}/"
        try:
            if mode == "raw":
                root = settings.data_dir()
                assert root is not None
                files = [root / src["raw"]["folder"] / f for f in src["raw"].get("files", [])]
                missing = [str(f) for f in files if not f.is_file()]
                if not files or missing:
                    raise D.DataError(f"missing raw file(s) {missing or '(none declared)'}")
                import pyarrow.parquet as pq

                rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
                cols = set(pq.ParquetFile(files[0]).schema_arrow.names)
                first = {c: None for c in cols}
                detail = f"loaded {rows:,} rows from {len(files)} file(s) (raw files: not compared)"
            else:
                hub = src["hub"]
                ds = H.load_dataset(
                    hub["path"],
                    revision=hub.get("revision", "main"),
                    name=hub.get("name"),
                    split=hub.get("split", "train"),
                    streaming=True,
                )
                first = next(iter(ds), None)
                if first is None:
                    raise D.DataError("no rows")
                detail = "first row has the mapped columns (streamed: rows not counted)"
            absent = [c for c in need if c not in first]
            if absent:
                raise D.DataError(f"missing field(s) {absent} (found {sorted(first)})")
        except Exception as err:
            yield Line("FAIL", ident, users, f"cannot load: {_first_line(err)}")
            continue
        yield Line("OK" if mode == "raw" else "PASS", ident, users, detail)
