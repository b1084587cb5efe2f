"""The floor under a workload on SQLite: its own statements replayed on a bare sqlite3 connection.

Whatever the engine does in Python, the rows it writes cost SQLite a fixed amount of CPU:
parsing and binding each statement, the B-tree and index work, the WAL pages a commit
writes. ``record`` captures every statement a workload sends to sqlite3 (through every
connection, whichever layer sent it: the driver backends, SQLAlchemy Core, a baseline
tree's code), with its parameters and where its transactions begin and end; ``replay``
runs exactly those on a copy of the same starting database and times only that. The
difference between a workload's CPU and its floor is the engine's own; a goal below the
floor cannot be met by any engine writing these rows (BENCHMARKS.md, issue 16).

The hash floor is the same idea for the codec: the canonical JSON and SHA-256 of every
event row the workload inserted, with the standard library's encoder, timed alone.

Used by ``bench/cpu_worker.py``, which runs against a baseline tree too: this module must
not import ``engine`` (it is read from the tree under test only by path).
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

Statement = tuple[str, str, Any]  # (kind: "one" | "many" | "commit" | "rollback", sql, parameters)

# The pragmas a replay runs with: the engine's (engine/store/db.py SQLITE_PRAGMAS), copied
# here because a baseline tree may not have that name; the durability setting is the one
# that matters for a commit's CPU.
PRAGMAS = ("PRAGMA busy_timeout=30000", "PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
           "PRAGMA foreign_keys=ON")


class _Cursor(sqlite3.Cursor):
    log: list[Statement]

    def execute(self, sql: str, parameters: Any = ()) -> Any:  # type: ignore[override]
        self.log.append(("one", sql, _frozen(parameters)))
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any) -> Any:  # type: ignore[override]
        rows = [_frozen(p) for p in seq_of_parameters]
        self.log.append(("many", sql, rows))
        return super().executemany(sql, rows)


class _Connection(sqlite3.Connection):
    """Every statement goes through a recording cursor, whichever method sent it."""

    log: list[Statement]

    def cursor(self, factory: Any = None) -> Any:  # type: ignore[override]
        cur = super().cursor(_Cursor)
        cur.log = self.log
        return cur

    def execute(self, sql: str, parameters: Any = ()) -> Any:  # type: ignore[override]
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any) -> Any:  # type: ignore[override]
        return self.cursor().executemany(sql, parameters)

    def commit(self) -> None:
        if self.in_transaction:
            self.log.append(("commit", "COMMIT", ()))
        super().commit()

    def rollback(self) -> None:
        if self.in_transaction:
            self.log.append(("rollback", "ROLLBACK", ()))
        super().rollback()


def _frozen(parameters: Any) -> Any:
    """Parameters as replayable values (a dict of named ones stays a dict)."""
    return dict(parameters) if isinstance(parameters, dict) else tuple(parameters)


@contextmanager
def record(log: list[Statement]) -> Iterator[list[Statement]]:
    """Within the block, every new sqlite3 connection records its statements into ``log``."""
    original = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        kwargs["factory"] = _Connection
        conn = original(*args, **kwargs)
        conn.log = log  # type: ignore[attr-defined]
        return conn

    sqlite3.connect = connect  # type: ignore[assignment]
    sqlite3.dbapi2.connect = connect  # type: ignore[attr-defined]  (what SQLAlchemy's pysqlite calls)
    try:
        yield log
    finally:
        sqlite3.connect = original
        sqlite3.dbapi2.connect = original  # type: ignore[attr-defined]


def replay(db: Path, log: Sequence[Statement], timed_from: int = 0) -> float:
    """CPU seconds sqlite3 takes to run ``log[timed_from:]`` on ``db`` (a copy of the
    workload's starting database) after ``log[:timed_from]`` (the engine's opening, untimed),
    with the engine's pragmas; results are fetched, as the engine fetches them."""
    return replay_times(db, log, timed_from)[0]


def replay_times(db: Path, log: Sequence[Statement], timed_from: int = 0) -> tuple[float, float]:
    """``replay``'s (CPU seconds, wall seconds): the wall time counts the commits' fsyncs,
    which a rate (runs per second) pays and CPU time does not show."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        for pragma in PRAGMAS:
            conn.execute(pragma).fetchall()
        _run(conn, log[:timed_from])
        cpu, wall = time.process_time(), time.perf_counter()
        _run(conn, log[timed_from:])
        return time.process_time() - cpu, time.perf_counter() - wall
    finally:
        conn.close()


def _run(conn: sqlite3.Connection, log: Sequence[Statement]) -> None:
    for kind, sql, args in log:
        if kind == "one":
            if sql.lstrip().upper().startswith("PRAGMA"):
                continue  # the engine's own, set above once
            conn.execute(sql, args).fetchall()
        elif kind == "many":
            conn.executemany(sql, args)
        elif conn.in_transaction:
            conn.execute(sql)


def event_rows(log: Sequence[Statement]) -> list[dict[str, Any]]:
    """The event rows the workload inserted, by column (from its ``INSERT INTO events``)."""
    rows: list[dict[str, Any]] = []
    for kind, sql, args in log:
        head = sql.lstrip()
        if not head.upper().startswith("INSERT INTO EVENTS"):
            continue
        columns = [c.strip() for c in head[head.index("(") + 1:head.index(")")].split(",")]
        for values in (args if kind == "many" else [args]):
            if isinstance(values, dict):
                rows.append(dict(values))
            else:
                rows.extend([dict(zip(columns, values))] if len(values) == len(columns) else
                            [dict(zip(columns, values[i:i + len(columns)]))  # a multi-row VALUES
                             for i in range(0, len(values), len(columns))])
    return rows


def hash_floor(rows: Sequence[dict[str, Any]]) -> float:
    """CPU seconds to encode and hash these events once with the standard library: the data's
    canonical JSON, and SHA-256 over the canonical JSON of the hashed fields with that text
    (what any writer of this chain must compute per event; engine/codec.py)."""
    items = [(r["instance_id"], r["seq"], r["type"], r["actor"], r["role"], str(r["occurred_at"]),
              str(r["recorded_at"]), json.loads(r["data"]), r["prev_hash"]) for r in rows]
    enc = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    begin = time.process_time()
    for iid, seq, kind, actor, role, occurred, recorded, data, prev in items:
        text = enc.encode(data)
        hashlib.sha256(enc.encode([iid, seq, kind, actor, role, occurred, recorded, text, prev])
                       .encode("utf-8")).hexdigest()
    return time.process_time() - begin
