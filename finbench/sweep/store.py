"""The sweep's results database (SQLite, WAL; one writer: the driver). Every public write is one
transaction, so a killed driver loses only the runs in flight."""

from __future__ import annotations

import json
import socket
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from finbench.sweep.model import RunResult, RunSpec, Sweep, SweepError, now

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY, sweep TEXT NOT NULL, recipe TEXT NOT NULL, mixture TEXT NOT NULL,
    seed INTEGER NOT NULL, job TEXT NOT NULL, components TEXT NOT NULL, spec TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0, started_at TEXT, finished_at TEXT, seconds REAL,
    host TEXT, model_dir TEXT, info TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS scores (
    run_key TEXT NOT NULL REFERENCES runs(key), split TEXT NOT NULL, task TEXT NOT NULL,
    metric TEXT NOT NULL, filter TEXT NOT NULL, value REAL, stderr REAL,
    PRIMARY KEY (run_key, split, task, metric, filter));
CREATE TABLE IF NOT EXISTS items (
    run_key TEXT NOT NULL REFERENCES runs(key), split TEXT NOT NULL, task TEXT NOT NULL,
    filter TEXT NOT NULL, doc_id INTEGER NOT NULL, doc_hash TEXT, target TEXT, prediction TEXT,
    metrics TEXT NOT NULL, PRIMARY KEY (run_key, split, task, filter, doc_id));
CREATE INDEX IF NOT EXISTS items_by_task ON items (task, split, filter);
CREATE TABLE IF NOT EXISTS aggregations (
    task TEXT NOT NULL, metric TEXT NOT NULL, aggregation TEXT NOT NULL,
    higher_is_better INTEGER, PRIMARY KEY (task, metric));
"""


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


SQLITE_MAGIC = b"SQLite format 3\x00"


def is_sqlite(path: Path) -> bool:
    """Whether the file starts with SQLite's header (an empty file is a new database too)."""
    with open(path, "rb") as f:
        head = f.read(len(SQLITE_MAGIC))
    return not head or head == SQLITE_MAGIC


class Store:
    """The sweep's results database. Every public write is one transaction."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._open()
        except (OSError, sqlite3.DatabaseError) as error:  # not a database, a folder, unwritable
            if getattr(self, "db", None) is not None:
                self.db.close()
            raise SweepError(f"{self.path}: cannot open as the sweep store (SQLite): {error}") from error

    def _open(self) -> None:
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a finished run survives a power cut
        self.db.execute("PRAGMA foreign_keys=ON")
        with self.tx():
            for statement in _statements(SCHEMA):
                self.db.execute(statement)
            self.db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def register(self, sweep: Sweep) -> None:
        """Record the plan: new keys as pending; finished ones untouched."""
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('sweep', ?)", (sweep.name,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('sweep_file', ?)", (str(sweep.path),))
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('sweep_config', ?)",
                (json.dumps(sweep.summary(), sort_keys=True),),
            )
            for r in sweep.runs:
                db.execute(
                    "INSERT OR IGNORE INTO runs (key, sweep, recipe, mixture, seed, job, components,"
                    " spec, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                    (r.key, r.sweep, r.recipe, r.mixture, r.seed, r.job,
                     json.dumps(r.components, sort_keys=True), json.dumps(r.to_dict(), sort_keys=True)),
                )

    def status(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        rows = self.db.execute("SELECT key, status FROM runs").fetchall()
        out = {r["key"]: r["status"] for r in rows}
        return out if keys is None else {k: out.get(k, "pending") for k in keys}

    def mark_running(self, spec: RunSpec) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE runs SET status='running', attempts=attempts+1, started_at=?, host=?, error=NULL "
                "WHERE key=? AND status != 'done'",
                (now(), socket.gethostname(), spec.key),
            )

    def mark_failed(self, spec: RunSpec, error: str) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE runs SET status='failed', error=?, finished_at=? WHERE key=? AND status != 'done'",
                (error[-4000:], now(), spec.key),
            )

    def record(self, spec: RunSpec, result: RunResult | dict[str, Any]) -> None:
        """A finished run with its scores and items, all or nothing."""
        if not isinstance(result, RunResult):  # a job's plain dict (Ray, Slurm result files)
            result = RunResult.from_dict(result, key=spec.key)
        with self.tx() as db:
            if db.execute("SELECT status FROM runs WHERE key=?", (spec.key,)).fetchone()["status"] == "done":
                return  # already recorded (e.g. a duplicate delivery): never twice
            for table in ("scores", "items"):
                db.execute(f"DELETE FROM {table} WHERE run_key=?", (spec.key,))  # noqa: S608
            for split, ev in result.evals.items():
                db.executemany(
                    "INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(spec.key, split, s["task"], s["metric"], s["filter"], s["value"], s["stderr"])
                     for s in ev.scores],
                )
                db.executemany(
                    "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(spec.key, split, i["task"], i["filter"], i["doc_id"], i.get("doc_hash"),
                      i.get("target"), i.get("prediction"), json.dumps(i["metrics"]))
                     for i in ev.items],
                )
                for task, aggs in ev.aggregations.items():
                    for metric, (agg, hib) in aggs.items():
                        db.execute(
                            "INSERT OR REPLACE INTO aggregations VALUES (?, ?, ?, ?)",
                            (task, metric, agg, None if hib is None else int(bool(hib))),
                        )
            db.execute(
                "UPDATE runs SET status='done', finished_at=?, seconds=?, model_dir=?, info=?, error=NULL "
                "WHERE key=?",
                (now(), result.seconds, result.model_dir,
                 json.dumps(result.info, sort_keys=True, default=str), spec.key),
            )

    def runs(self, status: str | None = None) -> list[sqlite3.Row]:
        q = "SELECT * FROM runs" + (" WHERE status=?" if status else "") + " ORDER BY recipe, mixture, seed"
        return self.db.execute(q, (status,) if status else ()).fetchall()

    def meta(self) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self.db.execute("SELECT key, value FROM meta")}
