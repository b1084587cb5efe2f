"""The SQLite backend: hand-written SQL with ``?`` parameters on the sqlite3 connection.

Every statement runs on the driver connection under the caller's SQLAlchemy connection
(``conn.connection.driver_connection``), inside its transaction: ``db.Connections`` begins
write transactions there (``BEGIN IMMEDIATE``), and a transaction SQLAlchemy begins does too
(``db._on_begin``). For the one-row statements a command is made of, Core's per-call work
(compiled-cache lookup, execution context, result object, type processors) cost several
times SQLite's own (BENCHMARKS.md); here a statement is its text, its arguments and the
cursor. What Core stores is stored: times as UTCDateTime leaves them on SQLite (naive UTC
text, microseconds always written), booleans as 0/1, JSON as the canonical text the caller
made (tests/test_store_port.py compares the rows). Driver errors become SQLAlchemy's
(``OperationalError`` for a locked database …), as ``Connection.execute`` would raise them.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from operator import itemgetter
from typing import Any, Callable, Collection, Iterator, Optional, Sequence

from sqlalchemy.engine import Connection

from engine.audit import StoredEvent
from engine.core.model import Event, Instance
from engine.errors import ConcurrencyConflict, InstanceNotFound
from engine.instants import per_instant
from engine.store import bulk, instances, ledger, log, queue
from engine.store import timers as timer_store
from engine.store.backends.core import CoreStore
from engine.store.db import as_sqlalchemy_error, driver_of
from engine.store.instance_cache import check_entry
from engine.store.log import EVENT_COLUMNS, Chain
from engine.store import tables
from engine.store.port import DueStep
from engine.store.tables import UTCDateTime

# ---------------------------------------------------------------- values: the one conversion


def _utc_text(t: datetime) -> str:
    """An aware time as UTCDateTime stores it on SQLite: UTC, naive, ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if t.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return t.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")


_time_text = per_instant(_utc_text, 16)  # a command binds the same instant four or five times


def to_db(value: Any) -> Any:
    """A parameter as sqlite3 gets it: times as their stored text; the rest as it is
    (str, int, None; a bool is an int to sqlite3, stored 0/1 as Core stores it)."""
    return _time_text(value) if isinstance(value, datetime) else value


_NAIVE_EPOCH = datetime(1970, 1, 1)
_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def read_time(value: Any) -> Optional[datetime]:
    """A stored time as UTCDateTime reads it: aware, UTC. SQLAlchemy parses SQLite's text with
    ``datetime.fromisoformat`` (the same value, the same ValueError); a value that is no text
    at all is a ValueError too (history, replay and verify report it)."""
    if value is None:
        return None
    if type(value) is not str:
        raise ValueError(f"not a time: {value!r}")
    t = datetime.fromisoformat(value)
    if t.tzinfo is None:  # == t.replace(tzinfo=timezone.utc), without its keyword parsing
        return _UTC_EPOCH + (t - _NAIVE_EPOCH)
    return t.astimezone(timezone.utc)


# ---------------------------------------------------------------- statements

def _insert(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


_NEW_COLUMNS = tuple(instances.new_row("", "", "", _UTC_EPOCH, None, None))  # a new row's columns, in order
_LOAD = f"SELECT {', '.join(instances.INSTANCE_COLUMNS)} FROM instances WHERE id = ?"
_NEW_INSTANCE = _insert("instances", _NEW_COLUMNS) + " RETURNING id"
_NEW_KEYED_INSTANCE = _insert("instances", _NEW_COLUMNS) + " ON CONFLICT (external_key) DO NOTHING RETURNING id"
_INSERT_EVENTS = _insert("events", EVENT_COLUMNS)
_CHILDREN = "SELECT id FROM instances WHERE parent_id = ? ORDER BY id"
_CHILD_STATUS = "SELECT procedure, status FROM instances WHERE parent_id = ? ORDER BY id"
_LOAD_MANY = f"SELECT {', '.join(instances.INSTANCE_COLUMNS)} FROM instances WHERE id IN ({{ids}}) ORDER BY id"
_CHILDREN_MANY = "SELECT parent_id, id, procedure, status FROM instances WHERE parent_id IN ({ids}) ORDER BY id"
_EVENTS_OF = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE instance_id = ? ORDER BY seq"
_EVENTS_BETWEEN = (f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE instance_id BETWEEN ? AND ? "
                   "ORDER BY instance_id, seq")
_INSERT_TIMERS = _insert("timers", timer_store.COLUMNS)
_DUE = ("SELECT instance_id, name, next_fire_at FROM timers WHERE next_fire_at IS NOT NULL AND next_fire_at <= ? "
        "ORDER BY next_fire_at LIMIT ?")
_CLAIM = "UPDATE timers SET next_fire_at = NULL WHERE instance_id = ? AND name = ? AND next_fire_at = ?"
_INSERT_OUTBOX = _insert("outbox", queue.COLUMNS)
_LEDGER_HEAD = 'SELECT seq, head FROM ledger_head WHERE "key" = 1'
_INSERT_LEDGER = _insert("ledger", ("seq", "entries", "leaf", "prev", "head", "recorded_at"))
_NEW_LEDGER_HEAD = 'INSERT INTO ledger_head ("key", seq, prev, head) VALUES (1, ?, ?, ?)'
_MOVE_LEDGER_HEAD = 'UPDATE ledger_head SET seq = ?, prev = ?, head = ? WHERE "key" = 1'
_INSERT_INSTANCES = _insert("instances", ("id",) + _NEW_COLUMNS)
_STARTED_AT, _LAST_OCCURRED_AT = instances.STARTED_AT, instances.LAST_OCCURRED_AT


def _set(table: str, columns: Sequence[str], where: str, made: dict[tuple[str, ...], str]) -> str:
    """``UPDATE table SET c = ?, … WHERE …`` for these columns (made once per set of them)."""
    key = tuple(columns)
    sql = made.get(key)
    if sql is None:
        sql = made[key] = f"UPDATE {table} SET {', '.join(c + ' = ?' for c in key)} WHERE {where}"
    return sql


_PROJECTIONS: dict[tuple[str, ...], str] = {}
_TIMER_UPDATES: dict[tuple[str, ...], str] = {}


def _driver(conn: Connection) -> sqlite3.Connection:
    """The sqlite3 connection, in the caller's transaction: one ``Connections`` began on the
    driver, or SQLAlchemy's (begun here if none is yet, as Core would autobegin: its
    ``begin`` event begins on the driver, see ``db._on_begin``)."""
    driver = getattr(conn, "sop_driver", None)
    if driver is None:
        if not conn.in_transaction():
            conn.begin()
        driver = driver_of(conn)
    return driver


def _run(conn: Connection, sql: str, args: Sequence[Any]) -> sqlite3.Cursor:
    try:
        return _driver(conn).execute(sql, args)
    except sqlite3.Error as err:
        raise as_sqlalchemy_error(conn.dialect, sql, args, err) from err


def _run_many(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    try:
        _driver(conn).executemany(sql, rows)
    except sqlite3.Error as err:
        raise as_sqlalchemy_error(conn.dialect, sql, rows, err, many=True) from err


def _packer(table: Any, columns: Sequence[str]) -> Callable[[dict[str, Any]], Sequence[Any]]:
    """A row's parameters in ``columns`` order, converting only the columns that hold times.

    The column types say which those are (UTCDateTime): asking ``to_db`` of every value is
    some forty type checks for a fired step's rows, where an event has two times. A time
    column holds a datetime or NULL (Core refuses anything else) and no other column holds
    a datetime, so every value is the one ``to_db`` gives."""
    get = itemgetter(*columns)
    times = tuple(i for i, c in enumerate(columns) if isinstance(table.c[c].type, UTCDateTime))
    if not times:
        return get

    def pack(row: dict[str, Any]) -> Sequence[Any]:
        values = list(get(row))
        for i in times:
            if values[i] is not None:
                values[i] = _time_text(values[i])
        return values
    return pack


_EVENT_ARGS = _packer(tables.events, EVENT_COLUMNS)
_OUTBOX_ARGS = _packer(tables.outbox, queue.COLUMNS)
_TIMER_ARGS = _packer(tables.timers, timer_store.COLUMNS)
_NEW_INSTANCE_ARGS = _packer(tables.instances, _NEW_COLUMNS)
_BULK_INSTANCE_ARGS = _packer(tables.instances, ("id",) + _NEW_COLUMNS)


class SqliteStore(CoreStore):
    """The storage port on sqlite3 (``backend = "sqlite3"``), with the instance cache."""

    backend = "sqlite3"

    # ------------------------------------------------------------ the port (EventStore)

    def load_for_write(self, conn: Connection, instance_id: int) -> Instance:
        """The stored instance; the cached one if its stored row is the one remembered
        (engine/store/instance_cache.py: the row is SQLite's own values, compared as they are)."""
        row = _run(conn, _LOAD, (instance_id,)).fetchone()
        if row is None:
            raise InstanceNotFound(instance_id)
        return self._cached_or_decoded(row)

    def _cached_or_decoded(self, row: Sequence[Any]) -> Instance:
        """A loaded row's instance: the cache's if it is the row remembered, else decoded
        (and remembered)."""
        cache = self.cache
        cached = cache.get(row[0], row)
        if cached is not None:
            if cache.check:
                check_entry(cached, _decode(row))
            return cached
        inst = _decode(row)
        cache.remember(row, inst)
        return inst

    def append(self, conn: Connection, before: Instance, events: list[Event], after: Instance,
               recorded_at: datetime, sent: Optional[dict[str, Any]] = None) -> list[StoredEvent]:
        rows, stored = log.event_rows(before.id, events, recorded_at, before.last_hash, before.revision)
        if not rows:
            return []
        changes = log.projection_changes(before, after, stored[-1].seq, stored[-1].hash, self.building_of)
        try:
            _driver(conn).executemany(_INSERT_EVENTS, [_EVENT_ARGS(r) for r in rows])
        except sqlite3.IntegrityError as err:  # the events' key: another writer appended this seq first
            raise ConcurrencyConflict(before.id, before.revision) from err
        except sqlite3.Error as err:
            raise as_sqlalchemy_error(conn.dialect, _INSERT_EVENTS, rows, err, many=True) from err
        values = {c: to_db(v) for c, v in changes.items()}
        sql = _set("instances", tuple(values), "id = ? AND revision = ?", _PROJECTIONS)
        if _run(conn, sql, (*values.values(), before.id, before.revision)).rowcount != 1:
            raise ConcurrencyConflict(before.id, before.revision)
        if sent is not None:
            sent.update(values)
        self._sync_timers(conn, before.id, after.procedure, before.clocks, after.clocks)
        ledger.note(conn, [(s.instance_id, s.seq, s.hash) for s in stored])
        return stored

    def events_of(self, conn: Connection, instance_id: int) -> list[StoredEvent]:
        return log.stored_events(_run(conn, _EVENTS_OF, (instance_id,)).fetchall(), read_time)

    def due_steps(self, conn: Connection, until: datetime, limit: int,
                  skip: Collection[tuple[int, str]] = ()) -> list[DueStep]:
        """The write transaction holds SQLite's one write lock already: nothing to lock."""
        rows = _run(conn, _DUE, (to_db(until), limit + len(skip))).fetchall()
        return [DueStep(r[0], r[1], read_time(r[2])) for r in rows if (r[0], r[1]) not in skip][:limit]  # type: ignore[arg-type]  # a due row has its time

    def claim_step(self, conn: Connection, step: DueStep) -> bool:
        return _run(conn, _CLAIM, (step.instance_id, step.name, to_db(step.next_fire_at))).rowcount == 1

    # ------------------------------------------------------------ the rest of a command, replay, bulk

    def load(self, conn: Connection, instance_id: int) -> Instance:
        row = _run(conn, _LOAD, (instance_id,)).fetchone()
        if row is None:
            raise InstanceNotFound(instance_id)
        return _decode(row)

    def children_of(self, conn: Connection, instance_id: int) -> list[int]:
        return [r[0] for r in _run(conn, _CHILDREN, (instance_id,)).fetchall()]

    def child_procedures(self, conn: Connection, instance_id: int) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in _run(conn, _CHILD_STATUS, (instance_id,)).fetchall()]

    def new_instance_id(self, conn: Connection, row: dict[str, Any],
                        sent: Optional[dict[str, Any]] = None) -> Optional[int]:
        args = _NEW_INSTANCE_ARGS(row)
        got = _run(conn, _NEW_INSTANCE if row["external_key"] is None else _NEW_KEYED_INSTANCE, args).fetchone()
        if got is None:
            return None
        if sent is not None:
            sent.update(zip(_NEW_COLUMNS, args))
        return int(got[0])

    def enqueue(self, conn: Connection, instance_id: int, seq: int, recipients: list[str], message: str,
                channel: Optional[str], at: datetime) -> None:
        if recipients:
            rows = queue.outbox_rows(instance_id, seq, recipients, message, channel, at)
            _run_many(conn, _INSERT_OUTBOX, [_OUTBOX_ARGS(r) for r in rows])

    def seal(self, conn: Connection, at: datetime) -> Optional[int]:
        taken = ledger.take_pending(conn)
        if taken is None:
            return None
        text, leaf = taken
        head = _run(conn, _LEDGER_HEAD, ()).fetchone()
        seq, prev, new_head = ledger.next_row(head, leaf)
        _run(conn, _INSERT_LEDGER, (seq, text, leaf, prev, new_head, to_db(at)))
        _run(conn, _NEW_LEDGER_HEAD if head is None else _MOVE_LEDGER_HEAD, (seq, prev, new_head))
        return seq

    def decoded_events(self, conn: Connection, instance_id: int) -> Optional[list[Event]]:
        try:
            return log.decoded_rows(_run(conn, _EVENTS_OF, (instance_id,)).fetchall(), read_time)
        except Exception:  # noqa: BLE001  (the caller reads again the way that reports it)
            return None

    def iter_chains(self, conn: Connection) -> Iterator[Chain]:
        cols = log.heads_sql(log.sqlite_vouches(conn))
        first = f"SELECT {cols} FROM instances ORDER BY id LIMIT ?"
        after = f"SELECT {cols} FROM instances WHERE id > ? ORDER BY id LIMIT ?"

        def heads(last: Optional[int]) -> list[Any]:
            if last is None:
                return _run(conn, first, (log.CHAIN_PAGE,)).fetchall()
            return _run(conn, after, (last, log.CHAIN_PAGE)).fetchall()

        def between(lo: int, hi: int) -> list[StoredEvent]:
            return log.stored_events(_run(conn, _EVENTS_BETWEEN, (lo, hi)).fetchall(), read_time)

        return log.chains(heads, between, lambda iid: self.events_of(conn, iid))

    def insert_many(self, conn: Connection, instances_: list[dict[str, Any]], events: list[dict[str, Any]],
                    timers: list[dict[str, Any]], outbox: list[dict[str, Any]]) -> None:
        if instances_:
            try:
                _driver(conn).executemany(_INSERT_INSTANCES, [_BULK_INSTANCE_ARGS(r) for r in instances_])
            except sqlite3.IntegrityError as err:
                raise bulk.keys_taken(instances_) from err
        for sql, pack, rows in ((_INSERT_EVENTS, _EVENT_ARGS, events), (_INSERT_TIMERS, _TIMER_ARGS, timers),
                                   (_INSERT_OUTBOX, _OUTBOX_ARGS, outbox)):
            if rows:
                _run_many(conn, sql, [pack(r) for r in rows])
        ledger.note(conn, [(r["instance_id"], r["seq"], r["hash"]) for r in events])

    def _sync_timers(self, conn: Connection, instance_id: int, procedure: str, before: dict[str, Any],
                     after: dict[str, Any]) -> None:
        inserts, updates = timer_store.changes(instance_id, procedure, before, after)
        for name, changed in updates:
            sql = _set("timers", tuple(changed), "instance_id = ? AND name = ?", _TIMER_UPDATES)
            _run(conn, sql, (*(to_db(v) for v in changed.values()), instance_id, name))
        if inserts:
            _run_many(conn, _INSERT_TIMERS, [_TIMER_ARGS(r) for r in inserts])


    # ------------------------------------------------------------ a batch's reads and writes (engine/runtime/batch.py)

    def load_many_for_write(self, conn: Connection, instance_ids: list[int]) -> dict[int, Instance]:
        out: dict[int, Instance] = {}
        for chunk in instances.padded(sorted(set(instance_ids))):
            sql = _LOAD_MANY.format(ids=", ".join("?" * len(chunk)))
            for row in _run(conn, sql, chunk).fetchall():
                out[row[0]] = self._cached_or_decoded(row)
        return out

    def children_of_many(self, conn: Connection, parent_ids: list[int]) -> dict[int, list[tuple[int, str, str]]]:
        out: dict[int, list[tuple[int, str, str]]] = {p: [] for p in parent_ids}
        for chunk in instances.padded(parent_ids):
            for parent, iid, procedure, status in _run(conn, _CHILDREN_MANY.format(ids=", ".join("?" * len(chunk))),
                                                       chunk).fetchall():
                out[parent].append((iid, procedure, status))
        return out

    def append_many(self, conn: Connection, rows: list[dict[str, Any]], updates: list[log.Update],
                    sents: Optional[list[dict[str, Any]]] = None) -> None:
        """Every event row in one executemany, the projection UPDATEs one executemany per set
        of changed columns (sqlite3's loop is in C; its rowcount the sum)."""
        if not rows:
            return
        try:
            _driver(conn).executemany(_INSERT_EVENTS, [_EVENT_ARGS(r) for r in rows])
        except sqlite3.IntegrityError as err:
            raise log.batch_conflict(updates) from err
        except sqlite3.Error as err:
            raise as_sqlalchemy_error(conn.dialect, _INSERT_EVENTS, rows, err, many=True) from err
        stored = [{c: to_db(v) for c, v in values.items()} for _, _, values in updates]
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for (iid, revision, _), values in zip(updates, stored):
            groups.setdefault(tuple(values), []).append((*values.values(), iid, revision))
        matched = 0
        for columns, args in groups.items():
            sql = _set("instances", columns, "id = ? AND revision = ?", _PROJECTIONS)
            try:
                matched += _driver(conn).executemany(sql, args).rowcount
            except sqlite3.Error as err:
                raise as_sqlalchemy_error(conn.dialect, sql, args, err, many=True) from err
        if matched != len(updates):
            raise log.batch_conflict(updates)
        if sents is not None:
            sents.extend(stored)
        ledger.note(conn, [(r["instance_id"], r["seq"], r["hash"]) for r in rows])

    def sync_timers_many(self, conn: Connection, many: timer_store.Many) -> None:
        inserts, updates = timer_store.changes_many(many)
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for instance_id, name, changed in updates:
            groups.setdefault(tuple(changed), []).append((*(to_db(v) for v in changed.values()), instance_id, name))
        for columns, args in groups.items():
            _run_many(conn, _set("timers", columns, "instance_id = ? AND name = ?", _TIMER_UPDATES), args)
        if inserts:
            _run_many(conn, _INSERT_TIMERS, [_TIMER_ARGS(r) for r in inserts])

    def insert_outbox(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if rows:
            _run_many(conn, _INSERT_OUTBOX, [_OUTBOX_ARGS(r) for r in rows])

def _decode(row: Sequence[Any]) -> Instance:
    values = list(row)
    values[_STARTED_AT] = read_time(values[_STARTED_AT])
    values[_LAST_OCCURRED_AT] = read_time(values[_LAST_OCCURRED_AT])
    return instances.decode_instance(values)
