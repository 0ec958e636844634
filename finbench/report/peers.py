"""Published peer scores (finbench/report/peers.yaml), each with its source and whether its split is ours.

`load()` returns the rows as dicts with at least task, model, value, metric, setting, source and
split_match; like-for-like rows (split_match true) also carry split, n and `ours`, the
`metric,filter` of ours that computes the same quantity. A row for a test-only task (a peer's split,
e.g. `fiqa_sa_fingpt`) may name `selected_on`: the task whose dev split selects our mixture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finbench.data import raw as D

PEERS_FILE = Path(__file__).with_name("peers.yaml")
REQUIRED = ("task", "model", "value", "metric", "setting", "source", "split_match")
LIKE_FOR_LIKE = ("split", "n", "ours")


class PeersError(ValueError):
    pass


def load(path: Path = PEERS_FILE) -> list[dict[str, Any]]:
    rows = D.read_yaml(path, PeersError).get("peers")
    if not isinstance(rows, list) or not rows:
        raise PeersError(f"{path}: key 'peers' must be a non-empty list of rows")
    for i, row in enumerate(rows):
        where = f"{path}: peers[{i}]"
        if not isinstance(row, dict):
            raise PeersError(f"{where}: expected a mapping")
        need = REQUIRED + (LIKE_FOR_LIKE if row.get("split_match") else ())
        missing = [k for k in need if k not in row]
        if missing:
            raise PeersError(f"{where} ({row.get('task')}/{row.get('model')}): missing key(s) {missing}")
        value = row["value"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise PeersError(f"{where}: 'value' must be a number on the 0-1 scale, got {value!r}")
        if "selected_on" in row and not (isinstance(row["selected_on"], str) and row["selected_on"]):
            raise PeersError(f"{where}: 'selected_on' must name a task, got {row['selected_on']!r}")
        if not str(row["source"]).strip():
            raise PeersError(f"{where}: 'source' must cite where the number is printed")
    return rows
