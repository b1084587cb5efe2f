"""The floor under a workload on PostgreSQL: its own statements replayed by a bare psycopg client.

The PostgreSQL twin of ``bench/sqlite_floor.py``. ``record`` captures every statement a
workload sends through psycopg (the driver backend's kept ``RawCursor`` with ``$n``
parameters, SQLAlchemy Core's cursors with ``%s`` ones), with its parameters and its
commits; ``replay`` sends exactly those from one bare psycopg connection to a copy of the
same starting database and times it. What is left is the server's work, the round trips
and the commits' WAL flushes: the rate of an engine that spent no time of its own.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import psycopg

Statement = tuple[str, Any, Any]  # (kind: "raw" | "std" | "commit" | "rollback", query, parameters)


@contextmanager
def record(log: list[Statement]) -> Iterator[list[Statement]]:
    """Within the block, every psycopg cursor and connection of this process records into ``log``."""
    execute, commit, rollback = psycopg.Cursor.execute, psycopg.Connection.commit, psycopg.Connection.rollback

    def recorded_execute(self: psycopg.Cursor[Any], query: Any, params: Any = None, **kw: Any) -> Any:
        kind = "raw" if isinstance(self, psycopg.RawCursor) else "std"
        log.append((kind, query, None if params is None else
                    (dict(params) if isinstance(params, dict) else tuple(params))))
        return execute(self, query, params, **kw)

    def recorded_commit(self: psycopg.Connection[Any]) -> None:
        log.append(("commit", None, None))
        commit(self)

    def recorded_rollback(self: psycopg.Connection[Any]) -> None:
        log.append(("rollback", None, None))
        rollback(self)

    psycopg.Cursor.execute = recorded_execute  # type: ignore[method-assign]
    psycopg.Connection.commit = recorded_commit  # type: ignore[method-assign]
    psycopg.Connection.rollback = recorded_rollback  # type: ignore[method-assign]
    try:
        yield log
    finally:
        psycopg.Cursor.execute = execute  # type: ignore[method-assign]
        psycopg.Connection.commit = commit  # type: ignore[method-assign]
        psycopg.Connection.rollback = rollback  # type: ignore[method-assign]


def replay_seconds(url: str, log: Sequence[Statement], timed_from: int = 0) -> float:
    """Wall seconds one bare psycopg connection to ``url`` (a copy of the workload's starting
    database) takes to send ``log[timed_from:]`` after ``log[:timed_from]`` (untimed),
    fetching every result as the engine does."""
    with psycopg.connect(url) as conn:
        raw, std = psycopg.RawCursor(conn), conn.cursor()
        _send(conn, raw, std, log[:timed_from])
        begin = time.perf_counter()
        _send(conn, raw, std, log[timed_from:])
        return time.perf_counter() - begin


def _send(conn: psycopg.Connection[Any], raw: Any, std: Any, log: Sequence[Statement]) -> None:
    for kind, query, params in log:
        if kind == "commit":
            conn.commit()
        elif kind == "rollback":
            conn.rollback()
        else:
            cur = raw if kind == "raw" else std
            cur.execute(query, params)
            if cur.description is not None:
                cur.fetchall()
