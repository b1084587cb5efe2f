"""The PostgreSQL backend: hand-written SQL on the psycopg connection, in PostgreSQL's own
``$1 … $n`` parameters, run by a ``RawCursor`` kept with the pooled connection.

Every statement runs inside the caller's SQLAlchemy transaction (psycopg begins one on the
first statement; ``db.Connections`` or SQLAlchemy commits it). ``$n`` parameters spare
psycopg parsing each statement for Python placeholders (for a bulk start's many-row INSERT
that parse cost more than the server's work), and psycopg prepares a statement on the
server after its fifth use. What it keeps from the Core statements it replaces:

- an append is one round trip: ``WITH … AS (INSERT INTO events …) UPDATE instances …``;
- a command's load locks the instance row (``FOR UPDATE``) outside read transactions, and
  the sweep locks each due timer row with its instance row, ``SKIP LOCKED`` (see
  engine/store/timers.py for why no lock cycle can form);
- the ledger head moves and the ledger row is appended in one statement (``ledger.PG_APPEND``).

Values: times are bound as aware UTC datetimes (``timestamptz``, what UTCDateTime binds) and
read back in UTC; the rest as psycopg adapts them (text, integers, booleans, NULL).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Collection, Iterator, Optional, Sequence

import psycopg
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from engine.audit import StoredEvent
from engine.core.model import Event, Instance
from engine.errors import ConcurrencyConflict, InstanceNotFound
from engine.store import bulk, instances, ledger, log, queue
from engine.store import timers as timer_store
from engine.store.backends.core import CoreStore
from engine.store.db import as_sqlalchemy_error, driver_of
from engine.store.instance_cache import check_entry
from engine.store.log import EVENT_COLUMNS, Chain
from engine.store.port import DueStep

# ---------------------------------------------------------------- values: the one conversion


def to_db(value: Any) -> Any:
    """A parameter as psycopg gets it: times as aware UTC datetimes (a naive one is refused,
    as UTCDateTime refuses it); the rest as it is."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(timezone.utc)
    return value


def read_time(value: Optional[datetime]) -> Optional[datetime]:
    """A stored ``timestamptz`` (psycopg gives it in the session's zone) as UTC."""
    return None if value is None else value.astimezone(timezone.utc)


# ---------------------------------------------------------------- statements

MAX_PARAMS = 32_767  # half of what one PostgreSQL statement may bind (65,535): rows per INSERT
ROWS_PER_INSERT = 1_000  # ... and at most this many (as SQLAlchemy's insertmanyvalues pages them)


def _values(width: int, rows: int, first: int = 1) -> str:
    """``($first, …), (…)``: ``rows`` rows of ``width`` parameters, numbered from ``first``."""
    return ", ".join("(" + ", ".join(f"${first + r * width + i}" for i in range(width)) + ")" for r in range(rows))


_INSERTS: dict[tuple[str, tuple[str, ...], int], str] = {}


def _insert(table: str, columns: Sequence[str], rows: int) -> str:
    """``INSERT INTO table (columns) VALUES …`` for ``rows`` rows (made once per size)."""
    key = (table, tuple(columns), rows)
    sql = _INSERTS.get(key)
    if sql is None:
        sql = _INSERTS[key] = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {_values(len(columns), rows)}"
    return sql


_NEW_COLUMNS = tuple(instances.new_row("", "", "", datetime(1970, 1, 1, tzinfo=timezone.utc), None, None))
_SELECT_INSTANCE = f"SELECT {', '.join(instances.INSTANCE_COLUMNS)} FROM instances WHERE id = $1"
_LOAD, _LOAD_LOCKED = _SELECT_INSTANCE, _SELECT_INSTANCE + " FOR UPDATE"
_SELECT_MANY = f"SELECT {', '.join(instances.INSTANCE_COLUMNS)} FROM instances WHERE id IN ({{ids}}) ORDER BY id"
_CHILDREN_MANY = "SELECT parent_id, id, procedure, status FROM instances WHERE parent_id IN ({ids}) ORDER BY id"
_NEW_INSTANCE = _insert("instances", _NEW_COLUMNS, 1) + " RETURNING id"
_NEW_KEYED_INSTANCE = _insert("instances", _NEW_COLUMNS, 1) + " ON CONFLICT (external_key) DO NOTHING RETURNING id"
_CHILDREN = "SELECT id FROM instances WHERE parent_id = $1 ORDER BY id"
_CHILD_STATUS = "SELECT procedure, status FROM instances WHERE parent_id = $1 ORDER BY id"
_EVENTS_OF = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE instance_id = $1 ORDER BY seq"
_EVENTS_BETWEEN = (f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE instance_id BETWEEN $1 AND $2 "
                   "ORDER BY instance_id, seq")
_LOCK_DUE = ("SELECT timers.instance_id, timers.name, timers.next_fire_at FROM instances "
             "JOIN timers ON timers.instance_id = instances.id "
             "WHERE timers.next_fire_at IS NOT NULL AND timers.next_fire_at <= $1{skip} "
             "ORDER BY timers.next_fire_at LIMIT $2 FOR UPDATE OF instances, timers SKIP LOCKED")
_CLAIM = "UPDATE timers SET next_fire_at = NULL WHERE instance_id = $1 AND name = $2 AND next_fire_at = $3"
_SEAL = ledger.PG_APPEND.format(leaf="$1::text", entries="$2::text", at="$3::timestamptz")
_STARTED_AT, _LAST_OCCURRED_AT = instances.STARTED_AT, instances.LAST_OCCURRED_AT
_PROJECTIONS: dict[tuple[tuple[str, ...], int], str] = {}


def _append_sql(columns: tuple[str, ...], events: int) -> str:
    """The events' INSERT as a data-modifying CTE of the projection UPDATE setting
    ``columns``: one statement, one round trip (made once per set of columns and count)."""
    key = (columns, events)
    sql = _PROJECTIONS.get(key)
    if sql is None:
        first = events * len(EVENT_COLUMNS) + 1
        sets = ", ".join(f"{c} = ${first + i}" for i, c in enumerate(columns))
        n = first + len(columns)
        sql = _PROJECTIONS[key] = (f"WITH sop_inserted AS ({_insert('events', EVENT_COLUMNS, events)}) "
                                   f"UPDATE instances SET {sets} WHERE id = ${n} AND revision = ${n + 1}")
    return sql


_UPDATES: dict[tuple[str, tuple[str, ...], tuple[str, str]], str] = {}


def _update(table: str, columns: tuple[str, ...], keys: tuple[str, str]) -> str:
    """``UPDATE table SET c = $1, … WHERE k1 = $n AND k2 = $n+1``, made once per table and set
    of columns: the projection's (guarded by id and revision) and a timer row's."""
    sql = _UPDATES.get((table, columns, keys))
    if sql is None:
        sets = ", ".join(f"{c} = ${i + 1}" for i, c in enumerate(columns))
        n = len(columns) + 1
        sql = _UPDATES[(table, columns, keys)] = \
            f"UPDATE {table} SET {sets} WHERE {keys[0]} = ${n} AND {keys[1]} = ${n + 1}"
    return sql


def _projection_update(columns: tuple[str, ...]) -> str:
    return _update("instances", columns, ("id", "revision"))


def _timer_update(columns: tuple[str, ...]) -> str:
    return _update("timers", columns, ("instance_id", "name"))


def _cursor(conn: Connection) -> psycopg.RawCursor[Any]:
    """The RawCursor kept with the pooled connection (``PoolProxiedConnection.info``): a new
    cursor per statement costs ~25 us of CPU, a fifth of a round trip."""
    if getattr(conn, "sop_driver", None) is None and not conn.in_transaction():
        conn.begin()  # as Core would autobegin (psycopg then begins on the first statement)
    record, driver = conn.connection, driver_of(conn)
    cur = record.info.get("sop_cursor")
    if cur is None or cur.closed or cur.connection is not driver:  # (a pool record may reconnect)
        cur = record.info["sop_cursor"] = psycopg.RawCursor(driver)
    return cur


def _run(conn: Connection, sql: str, args: Sequence[Any]) -> psycopg.RawCursor[Any]:
    try:
        return _cursor(conn).execute(sql, args)
    except psycopg.Error as err:
        raise as_sqlalchemy_error(conn.dialect, sql, args, err) from err


def _insert_rows(conn: Connection, table: str, columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """Rows as few multi-row INSERTs (psycopg's executemany pipelines row by row, which costs
    more CPU than the round trips it saves)."""
    per = max(1, min(ROWS_PER_INSERT, MAX_PARAMS // len(columns)))
    for i in range(0, len(rows), per):
        chunk = rows[i:i + per]
        _run(conn, _insert(table, columns, len(chunk)), [to_db(r[c]) for r in chunk for c in columns])


class PostgresStore(CoreStore):
    """The storage port on psycopg (``backend = "psycopg"``), with the instance cache."""

    backend = "psycopg"

    # ------------------------------------------------------------ the port (EventStore)

    def load_for_write(self, conn: Connection, instance_id: int) -> Instance:
        """The stored instance, its row locked until the transaction ends (but in read
        transactions); the cached one if the stored row is the one remembered."""
        row = _run(conn, _LOAD_LOCKED if instances.locks_rows(conn) else _LOAD, (instance_id,)).fetchone()
        if row is None:
            raise InstanceNotFound(instance_id)
        return self._cached_or_decoded(row)

    def _cached_or_decoded(self, row: Sequence[Any]) -> Instance:
        """A loaded row's instance: the cache's if it is the row remembered (psycopg's values:
        its times compare as instants with the UTC ones bound), else decoded and remembered."""
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
        values = {c: to_db(v) for c, v in changes.items()}
        try:
            if len(rows) <= ROWS_PER_INSERT:
                args = [to_db(r[c]) for r in rows for c in EVENT_COLUMNS]
                args += [*values.values(), before.id, before.revision]
                matched = _run(conn, _append_sql(tuple(values), len(rows)), args).rowcount
            else:  # (no command appends this many; a separate INSERT keeps the statement small)
                _insert_rows(conn, "events", EVENT_COLUMNS, rows)
                matched = self._update_projection(conn, before.id, before.revision, values)
        except IntegrityError as err:  # the events' key: another writer appended this seq first
            raise ConcurrencyConflict(before.id, before.revision) from err
        if matched != 1:
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
        """The earliest due steps no other transaction holds, locked with their instance rows
        (instance first) until this transaction ends; ``skip``'s pairs left alone."""
        pairs = list(skip)
        cond = ""
        if pairs:
            cond = " AND (timers.instance_id, timers.name) NOT IN (" + ", ".join(
                f"(${3 + 2 * i}, ${4 + 2 * i})" for i in range(len(pairs))) + ")"
        args = [to_db(until), limit, *(v for pair in pairs for v in pair)]
        rows = _run(conn, _LOCK_DUE.format(skip=cond), args).fetchall()
        return [DueStep(r[0], r[1], read_time(r[2])) for r in rows]  # type: ignore[arg-type]  # a due row has its time

    def claim_step(self, conn: Connection, step: DueStep) -> bool:
        return _run(conn, _CLAIM, (step.instance_id, step.name, to_db(step.next_fire_at))).rowcount == 1

    # ------------------------------------------------------------ the rest of a command, replay, bulk

    def load(self, conn: Connection, instance_id: int) -> Instance:
        row = _run(conn, _LOAD_LOCKED if instances.locks_rows(conn) else _LOAD, (instance_id,)).fetchone()
        if row is None:
            raise InstanceNotFound(instance_id)
        return _decode(row)

    def children_of(self, conn: Connection, instance_id: int) -> list[int]:
        return [r[0] for r in _run(conn, _CHILDREN, (instance_id,)).fetchall()]

    def child_procedures(self, conn: Connection, instance_id: int) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in _run(conn, _CHILD_STATUS, (instance_id,)).fetchall()]

    def new_instance_id(self, conn: Connection, row: dict[str, Any],
                        sent: Optional[dict[str, Any]] = None) -> Optional[int]:
        args = [to_db(row[c]) for c in _NEW_COLUMNS]
        got = _run(conn, _NEW_INSTANCE if row["external_key"] is None else _NEW_KEYED_INSTANCE, args).fetchone()
        if got is None:
            return None
        if sent is not None:
            sent.update(zip(_NEW_COLUMNS, args))
        return int(got[0])

    def enqueue(self, conn: Connection, instance_id: int, seq: int, recipients: list[str], message: str,
                channel: Optional[str], at: datetime) -> None:
        if recipients:
            _insert_rows(conn, "outbox", queue.COLUMNS,
                         queue.outbox_rows(instance_id, seq, recipients, message, channel, at))

    def seal(self, conn: Connection, at: datetime) -> Optional[int]:
        taken = ledger.take_pending(conn)
        if taken is None:
            return None
        text, leaf = taken
        row = _run(conn, _SEAL, (leaf, text, to_db(at))).fetchone()
        if row is None:
            raise RuntimeError("the ledger_head row is missing (see migration 0002)")  # a broken schema: a bug
        return int(row[0])

    def decoded_events(self, conn: Connection, instance_id: int) -> Optional[list[Event]]:
        try:
            return log.decoded_rows(_run(conn, _EVENTS_OF, (instance_id,)).fetchall(), read_time)
        except Exception:  # noqa: BLE001  (the caller reads again the way that reports it)
            return None

    def iter_chains(self, conn: Connection) -> Iterator[Chain]:
        cols = log.heads_sql(False)
        first = f"SELECT {cols} FROM instances ORDER BY id LIMIT $1"
        after = f"SELECT {cols} FROM instances WHERE id > $1 ORDER BY id LIMIT $2"

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
                _insert_rows(conn, "instances", ("id",) + _NEW_COLUMNS, instances_)
            except IntegrityError as err:
                raise bulk.keys_taken(instances_) from err
        for table, columns, rows in (("events", EVENT_COLUMNS, events), ("timers", timer_store.COLUMNS, timers),
                                     ("outbox", queue.COLUMNS, outbox)):
            if rows:
                _insert_rows(conn, table, columns, rows)
        ledger.note(conn, [(r["instance_id"], r["seq"], r["hash"]) for r in events])

    def _update_projection(self, conn: Connection, instance_id: int, revision: int, values: dict[str, Any]) -> int:
        """One projection UPDATE guarded by its revision (values converted already); rows matched."""
        return int(_run(conn, _projection_update(tuple(values)), [*values.values(), instance_id, revision]).rowcount)

    def _sync_timers(self, conn: Connection, instance_id: int, procedure: str, before: dict[str, Any],
                     after: dict[str, Any]) -> None:
        inserts, updates = timer_store.changes(instance_id, procedure, before, after)
        for name, changed in updates:
            _run(conn, _timer_update(tuple(changed)), [*(to_db(v) for v in changed.values()), instance_id, name])
        if inserts:
            _insert_rows(conn, "timers", timer_store.COLUMNS, inserts)


    # ------------------------------------------------------------ a batch's reads and writes (engine/runtime/batch.py)

    def load_many_for_write(self, conn: Connection, instance_ids: list[int]) -> dict[int, Instance]:
        """Locked in id order (``FOR UPDATE``) outside read transactions: two batches naming
        the same instances queue instead of deadlocking."""
        locked = instances.locks_rows(conn)
        out: dict[int, Instance] = {}
        for chunk in instances.padded(sorted(set(instance_ids))):
            sql = _SELECT_MANY.format(ids=", ".join(f"${i + 1}" for i in range(len(chunk))))
            for row in _run(conn, sql + " FOR UPDATE" if locked else sql, chunk).fetchall():
                out[row[0]] = self._cached_or_decoded(row)
        return out

    def children_of_many(self, conn: Connection, parent_ids: list[int]) -> dict[int, list[tuple[int, str, str]]]:
        out: dict[int, list[tuple[int, str, str]]] = {p: [] for p in parent_ids}
        for chunk in instances.padded(parent_ids):
            sql = _CHILDREN_MANY.format(ids=", ".join(f"${i + 1}" for i in range(len(chunk))))
            for parent, iid, procedure, status in _run(conn, sql, chunk).fetchall():
                out[parent].append((iid, procedure, status))
        return out

    def append_many(self, conn: Connection, rows: list[dict[str, Any]], updates: list[log.Update],
                    sents: Optional[list[dict[str, Any]]] = None) -> None:
        """Every event row in as few multi-row INSERTs as the bind limit allows, then one
        UPDATE per instance (psycopg's executemany pipelines row by row: no cheaper)."""
        if not rows:
            return
        try:
            _insert_rows(conn, "events", EVENT_COLUMNS, rows)
        except IntegrityError as err:
            raise log.batch_conflict(updates) from err
        stored = [{c: to_db(v) for c, v in values.items()} for _, _, values in updates]
        matched = sum(self._update_projection(conn, iid, revision, values)
                      for (iid, revision, _), values in zip(updates, stored))
        if matched != len(updates):
            raise log.batch_conflict(updates)
        if sents is not None:
            sents.extend(stored)
        ledger.note(conn, [(r["instance_id"], r["seq"], r["hash"]) for r in rows])

    def sync_timers_many(self, conn: Connection, many: timer_store.Many) -> None:
        inserts, updates = timer_store.changes_many(many)
        for instance_id, name, changed in updates:
            _run(conn, _timer_update(tuple(changed)), [*(to_db(v) for v in changed.values()), instance_id, name])
        if inserts:
            _insert_rows(conn, "timers", timer_store.COLUMNS, inserts)

    def insert_outbox(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if rows:
            _insert_rows(conn, "outbox", queue.COLUMNS, rows)

def _decode(row: Sequence[Any]) -> Instance:
    values = list(row)
    values[_STARTED_AT] = read_time(values[_STARTED_AT])
    values[_LAST_OCCURRED_AT] = read_time(values[_LAST_OCCURRED_AT])
    return instances.decode_instance(values)
