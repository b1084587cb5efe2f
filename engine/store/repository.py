"""Reading and appending instances and their events, inside a caller's transaction.

The hot path uses SQLAlchemy Core statements, not ORM sessions: one SELECT of the instance,
one multi-row INSERT of events, one UPDATE of the projection guarded by the expected
revision. Those statements are built once, at import, with named bind parameters: building
a statement per call (and hashing it for SQLAlchemy's compiled cache) cost more CPU than
SQLite's commit itself (see BENCHMARKS.md).
"""
from __future__ import annotations

import json
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import Any, Callable, Iterator, Optional

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from engine.audit import StoredEvent, canonical_json, decode_event, event_hash, loads
from engine.core.model import GENESIS_HASH, Event, Instance
from engine.errors import ConcurrencyConflict, InstanceNotFound, StoredDataCorrupt
from engine.store import ledger
from engine.store.instance_cache import InstanceCache, check_entry
from engine.store.prepared import Prepared
from engine.store.tables import events as E
from engine.store.tables import instances as I
from engine.store.tables import outbox as O
from engine.store.tables import procedure_versions as V

_INSTANCE_COLS = [I.c.id, I.c.procedure, I.c.version, I.c.state, I.c.status, I.c.assignee, I.c.assignee_role,
                  I.c.data, I.c.clocks, I.c.parent_id, I.c.revision, I.c.started_at, I.c.last_occurred_at, I.c.last_hash]


_LOAD = Prepared(sa.select(*_INSTANCE_COLS).where(I.c.id == sa.bindparam("iid")))
_CHILDREN = Prepared(sa.select(I.c.id).where(I.c.parent_id == sa.bindparam("pid")).order_by(I.c.id))
_CHILD_STATUS = Prepared(sa.select(I.c.procedure, I.c.status).where(I.c.parent_id == sa.bindparam("pid"))
                         .order_by(I.c.id))
_BY_KEY = Prepared(sa.select(I.c.id).where(I.c.external_key == sa.bindparam("key")))
_NEW_INSTANCE = Prepared(sa.insert(I).returning(I.c.id))
_INSERT_EVENTS = Prepared(sa.insert(E))
_ENQUEUE = Prepared(sa.insert(O))
# The SET clause comes from the column-named keys of the parameters, each bound with its
# column's type (UTCDateTime for times); the WHERE names must not clash with columns.
_UPDATE_PROJECTION = Prepared(sa.update(I).where(I.c.id == sa.bindparam("b_id"),
                                                 I.c.revision == sa.bindparam("b_revision")))


def _instance(row: Any) -> Instance:
    try:
        data, clocks = json.loads(row.data), json.loads(row.clocks)
    except ValueError as e:
        raise StoredDataCorrupt(f"instance {row.id}", f"data or clocks: {e}") from None
    return Instance(id=row.id, procedure=row.procedure, version=row.version, state=row.state, status=row.status,
                    assignee=row.assignee, assignee_role=row.assignee_role, data=data, clocks=clocks,
                    parent_id=row.parent_id, revision=row.revision, started_at=row.started_at,
                    last_occurred_at=row.last_occurred_at, last_hash=row.last_hash)


# PostgreSQL write transactions lock the instance row as they read it: a writer that waits
# here then decides on the state committed before it, instead of failing on the events key
# at commit, and the sweep (which locks timer and instance rows together, skipping locked
# ones, see timers.lock_due) can never hold a row a writer needs while waiting for that
# writer. SQLite writers are serialised by BEGIN IMMEDIATE already.
_LOAD_LOCKED = Prepared(sa.select(*_INSTANCE_COLS).where(I.c.id == sa.bindparam("iid")).with_for_update())


def _locks_rows(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql" and not conn.get_execution_options().get("sop_read_only")


def _load_locked(conn: Connection, instance_id: int) -> Instance:
    row = _LOAD_LOCKED.first(conn, {"iid": instance_id})
    if row is None:
        raise InstanceNotFound(instance_id)
    return _instance(row)


def load_instance(conn: Connection, instance_id: int) -> Instance:
    if _locks_rows(conn):
        return _load_locked(conn, instance_id)
    row = _LOAD.first(conn, {"iid": instance_id})
    if row is None:
        raise InstanceNotFound(instance_id)
    return _instance(row)


INSTANCE_COLUMNS = tuple(c.key for c in _INSTANCE_COLS)


def load_for_write(conn: Connection, instance_id: int, cache: InstanceCache) -> Instance:
    """The instance a command will change: read its row (locked on PostgreSQL, see
    ``load_instance``) and decode it, unless it is a row the cache knows
    (engine.store.instance_cache: on the driver fast path only, where rows are the driver's)."""
    load = _LOAD_LOCKED if _locks_rows(conn) else _LOAD
    row, process = load.first_unprocessed(conn, {"iid": instance_id})
    if row is None:
        raise InstanceNotFound(instance_id)
    if process is None:
        return _instance(row)
    cached = cache.get(instance_id, row)
    if cached is not None:
        if cache.check:
            check_entry(cached, _instance(process(row)))
        return cached
    inst = _instance(process(row))
    cache.remember(row, inst)
    return inst


def children_of(conn: Connection, instance_id: int) -> list[int]:
    return [r[0] for r in _CHILDREN.all(conn, {"pid": instance_id})]


def procedure_of(conn: Connection, instance_id: int) -> Optional[str]:
    """The procedure of an instance, or None when there is no such instance."""
    return conn.execute(sa.select(I.c.procedure).where(I.c.id == instance_id)).scalar_one_or_none()


def child_procedures(conn: Connection, instance_id: int) -> list[tuple[str, str]]:
    """(procedure, status) of each instance this one started, oldest first."""
    return [(r[0], r[1]) for r in _CHILD_STATUS.all(conn, {"pid": instance_id})]


def find_by_key(conn: Connection, key: str) -> Optional[int]:
    row = _BY_KEY.first(conn, {"key": key})
    return None if row is None else row[0]


def new_instance_id(conn: Connection, procedure: str, version: str, state: str, at: datetime,
                    parent_id: Optional[int], external_key: Optional[str] = None,
                    sent: Optional[dict[str, Any]] = None) -> Optional[int]:
    """Insert the row first so the id is known to the decision (it may appear in messages).

    With an ``external_key`` (an imported call record, a payment) a concurrent importer may
    have inserted the same key: then nothing is inserted and None comes back, so the caller
    returns the existing instance instead of failing on the unique key. ``sent`` receives
    the values the row was inserted with (see Prepared.execute).
    """
    row = {"procedure": procedure, "version": version, "state": state, "status": "starting", "data": "{}",
           "parent_id": parent_id, "revision": 0, "started_at": at, "last_occurred_at": at,
           "last_hash": GENESIS_HASH, "external_key": external_key}
    if external_key is None:
        return int(_NEW_INSTANCE.first(conn, row, sent)[0])  # type: ignore[index]  (RETURNING gives one row)
    dialect_insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = dialect_insert(I).values(**row).on_conflict_do_nothing(index_elements=[I.c.external_key])
    got = conn.execute(stmt.returning(I.c.id)).first()
    return int(got[0]) if got else None


def append(conn: Connection, before: Instance, new_events: list[Event], after: Instance,
           recorded_at: datetime, building_of: Callable[[dict[str, Any]], Optional[str]],
           sent: Optional[dict[str, Any]] = None) -> list[StoredEvent]:
    """Append events and write the projection in the caller's transaction.

    The UPDATE matches only the revision the command was decided on; if another writer got
    there first nothing matches and ConcurrencyConflict rolls the whole transaction back.
    ``building_of`` is the runtime's rule for the stored ``building`` column (the store
    knows no form fields); ``sent`` receives the values the projection's columns were set
    to (see Prepared.execute).
    """
    rows, stored = event_rows(before.id, new_events, recorded_at, before.last_hash, before.revision)
    if not rows:
        return []
    seq, prev = stored[-1].seq, stored[-1].hash
    changes = _projection_changes(before, after, seq, prev, building_of)
    try:
        matched = _UPDATE_PROJECTION.execute_after_insert(conn, _INSERT_EVENTS, rows, changes, sent)
    except IntegrityError as err:  # the events' key: another writer appended this seq first
        raise ConcurrencyConflict(before.id, before.revision) from err
    if matched != 1:
        raise ConcurrencyConflict(before.id, before.revision)
    ledger.note(conn, [(s.instance_id, s.seq, s.hash) for s in stored])
    return stored


def event_rows(instance_id: int, events: list[Event], recorded_at: datetime, prev_hash: str,
               revision: int = 0) -> tuple[list[dict[str, Any]], list[StoredEvent]]:
    """The ``events`` rows that extend a log at ``revision`` (seq from revision + 1), each
    hashed over its content and its predecessor's hash, and the same events as stored.
    The one place the chain is built: appends and bulk starts both come here."""
    rows, stored = [], []
    prev, seq = prev_hash, revision
    for e in events:
        seq += 1
        data_json = canonical_json(e.data)
        h = event_hash(instance_id, seq, e.type, e.actor, e.role, e.occurred_at, recorded_at, data_json, prev)
        rows.append({"instance_id": instance_id, "seq": seq, "type": e.type, "actor": e.actor, "role": e.role,
                     "occurred_at": e.occurred_at, "recorded_at": recorded_at, "data": data_json,
                     "prev_hash": prev, "hash": h})
        stored.append(StoredEvent(instance_id, seq, e.type, e.actor, e.role, e.occurred_at, recorded_at,
                                  data_json, prev, h))
        prev = h
    return rows, stored


def _projection_changes(before: Instance, after: Instance, revision: int, last_hash: str,
                        building_of: Callable[[dict[str, Any]], Optional[str]]) -> dict[str, Any]:
    """The UPDATE's parameters: the guard, and only the columns whose value changed.

    SQLite rewrites an index entry for every indexed column in the SET clause, changed or
    not; setting only what changed keeps an action's commit to about half the pages
    (BENCHMARKS.md), and skips serialising data or clocks that did not change.
    """
    params: dict[str, Any] = {"b_id": before.id, "b_revision": before.revision}
    for name in ("version", "state", "status", "assignee", "assignee_role"):
        value = getattr(after, name)
        if value != getattr(before, name):
            params[name] = value
    if after.data != before.data:
        params["data"] = canonical_json(after.data)
        building = building_of(after.data)
        if building != building_of(before.data):
            params["building"] = building
    if after.clocks != before.clocks:
        params["clocks"] = canonical_json(after.clocks)
    if after.last_occurred_at != before.last_occurred_at:
        params["last_occurred_at"] = after.last_occurred_at
    params["revision"] = revision
    params["last_hash"] = last_hash
    return params


def ensure_version(conn: Connection, procedure: str, version: str, snapshot_json: str, at: datetime) -> None:
    exists = conn.execute(sa.select(V.c.version).where(V.c.procedure == procedure, V.c.version == version)).first()
    if exists is None:
        insert = sa.insert(V)
        if conn.dialect.name == "postgresql":  # another process may be saving the same version right now
            insert = postgresql.insert(V).on_conflict_do_nothing()
        conn.execute(insert.values(procedure=procedure, version=version, snapshot=snapshot_json,
                                   first_used_at=at))


def active_on_version(conn: Connection, procedure: str, version: str, other: bool = False) -> list[tuple[int, str]]:
    """(id, version) of the active instances of ``procedure`` pinned to ``version`` (with
    ``other``: to any version but it), oldest first."""
    on = I.c.version != version if other else I.c.version == version
    return [(int(r[0]), str(r[1])) for r in conn.execute(
        sa.select(I.c.id, I.c.version).where(I.c.procedure == procedure, on, I.c.status == "active")
        .order_by(I.c.id))]


def instances_started_since(conn: Connection, procedure: str, since: Optional[datetime]) -> list[int]:
    """Ids of the instances of ``procedure`` started at or after ``since`` (all when None), oldest first."""
    q = sa.select(I.c.id).where(I.c.procedure == procedure, I.c.status != "starting")
    if since is not None:
        q = q.where(I.c.started_at >= since)
    return [int(r[0]) for r in conn.execute(q.order_by(I.c.id))]


def latest_occurred_at(conn: Connection) -> Optional[datetime]:
    """When the latest event of the whole store happened (None for an empty store)."""
    return conn.execute(sa.select(sa.func.max(E.c.occurred_at))).scalar()


def load_snapshot(conn: Connection, procedure: str, version: str) -> Optional[str]:
    return conn.execute(sa.select(V.c.snapshot).where(V.c.procedure == procedure, V.c.version == version)).scalar()


def list_versions(conn: Connection) -> list[Any]:
    return list(conn.execute(sa.select(V.c.procedure, V.c.version, V.c.first_used_at)
                             .order_by(V.c.procedure, V.c.first_used_at)))


def enqueue(conn: Connection, instance_id: int, seq: int, recipients: list[str], message: str,
            channel: Optional[str], at: datetime) -> None:
    if recipients:
        _ENQUEUE.executemany(conn, [
            {"instance_id": instance_id, "seq": seq, "recipient": r, "channel": channel, "message": message,
             "idempotency_key": f"{instance_id}:{seq}:{r}", "created_at": at, "next_attempt_at": at}
            for r in recipients])


# ---------------------------------------------------------------- reading logs (history, replay, verify)

# StoredEvent's fields, in order: a driver row of these columns becomes the record as it is.
_EVENT_COLS = [E.c.instance_id, E.c.seq, E.c.type, E.c.actor, E.c.role, E.c.occurred_at, E.c.recorded_at, E.c.data,
               E.c.prev_hash, E.c.hash]
_EVENTS_OF = Prepared(sa.select(*_EVENT_COLS).where(E.c.instance_id == sa.bindparam("iid")).order_by(E.c.seq))
_EVENTS_BETWEEN = Prepared(sa.select(*_EVENT_COLS)
                           .where(E.c.instance_id.between(sa.bindparam("lo"), sa.bindparam("hi")))
                           .order_by(E.c.instance_id, E.c.seq))
_CHAIN_PAGE = 500  # instances per page of iter_chains: their events are one range query
_INSTANCE_ID = itemgetter(0)  # of a StoredEvent


def events_of(conn: Connection, instance_id: int) -> list[StoredEvent]:
    """An instance's events in seq order (ValueError if a stored time no longer parses)."""
    return _read_events(conn, _EVENTS_OF, {"iid": instance_id}, _stored_rows)


def decoded_events(conn: Connection, instance_id: int) -> Optional[list[Event]]:
    """An instance's events in seq order, decoded for replay straight from the driver's
    rows, with no StoredEvent records in between; None if any stored time or data no
    longer reads (``events_of`` and ``StoredEvent.to_event`` then say which, and how)."""
    try:
        return _read_events(conn, _EVENTS_OF, {"iid": instance_id}, _decoded_rows)
    except Exception:  # noqa: BLE001  (the caller reads again the way that reports it)
        return None


def _read_events(conn: Connection, stmt: Prepared, params: dict[str, Any], convert: Any) -> list[Any]:
    """``convert(rows, read_occurred_at, read_recorded_at)`` of an ``_EVENT_COLS`` query:
    the driver's rows and the time columns' processors, or, off the fast path, Core's rows,
    whose times are read already."""
    rows, processors = stmt.all_unprocessed(conn, params)
    if processors is None:
        return convert(rows, _same, _same)
    return convert(rows, processors[5] or _same, processors[6] or _same)


def _same(value: Any) -> Any:
    return value


def _timed(rows: list[Any], occurred: Any, recorded: Any) -> Iterator[tuple[Any, Any, Any]]:
    """Each row of ``_EVENT_COLS`` with its two times read. The events of one command carry
    the same times, and occurred_at is recorded_at for most, so a time stored as the same
    text as the row before's, or (when both columns are read alike) as the row's
    occurred_at, is not parsed again."""
    o_text: Any = None
    c_text: Any = None
    o_time = c_time = None
    for r in rows:
        o, c = r[5], r[6]
        if type(o) is not str or o != o_text:
            o_time, o_text = occurred(o), o
        if type(c) is not str or c != c_text:
            c_time, c_text = (o_time if c == o_text and occurred is recorded else recorded(c)), c
        yield r, o_time, c_time


def _stored_rows(rows: list[Any], occurred: Any, recorded: Any) -> list[StoredEvent]:
    """Rows of ``_EVENT_COLS`` as StoredEvents (the columns are its fields, in order)."""
    new = tuple.__new__
    return [new(StoredEvent, (r[0], r[1], r[2], r[3], r[4], o, c, r[7], r[8], r[9]))
            for r, o, c in _timed(rows, occurred, recorded)]


def _decoded_rows(rows: list[Any], occurred: Any, recorded: Any) -> list[Event]:
    """Rows of ``_EVENT_COLS`` as Events, their data decoded."""
    decode = decode_event
    return [decode(r[2], r[3], r[4], o, r[7], r[1], c, r[8], r[9]) for r, o, c in _timed(rows, occurred, recorded)]


def _tuples(conn: Connection, stmt: Prepared, params: dict[str, Any]) -> list[Any]:
    """All rows, unpackable like Core rows: the driver's own tuples when no column needs
    processing (the instance heads iter_chains pages through)."""
    rows, processors = stmt.all_unprocessed(conn, params)
    if processors is not None and any(processors):
        rows = [tuple(v if p is None else p(v) for p, v in zip(processors, r)) for r in rows]
    return rows


def _vouched(column: str) -> str:
    """SQL: NULL where SQLite vouches that ``json.loads`` reads the column's text, else the text.

    Verification only needs to know that an instance row's data and clocks still parse,
    and ``json_valid`` tells in C, over the stored text, twice as fast as Python reading it
    (and fetching it) to throw the values away. It vouches only where SQLite's JSON and
    Python's agree: text with no NUL (SQLite's JSON ends there, Python's does not), and
    either at most 1,000 characters or at most 4,000 with at most 200 brackets (no integer
    past Python's 4,300-digit limit, no nesting near its recursion limit). Any other value
    comes back, for ``json.loads`` to judge.
    """
    c = column
    return (f"CASE WHEN typeof({c}) = 'text' AND instr({c}, char(0)) = 0 "
            f"AND (length({c}) <= 1000 OR length({c}) <= 4000 "
            f"AND length({c}) - length(replace(replace({c}, '[', ''), '{{', '')) <= 200) "
            f"AND json_valid({c}) THEN NULL ELSE {c} END")


def _heads(data: Any, clocks: Any) -> tuple[Prepared, Prepared]:
    """Instance rows a page at a time, in id order: the first page, and the page after an id.
    (OFFSET is a named 0: SQLite's compiler adds an OFFSET to every LIMIT, and an unnamed
    one would keep the statement off the driver fast path.)"""
    page = sa.select(I.c.id, I.c.last_hash, I.c.revision, data, clocks).order_by(I.c.id) \
        .limit(sa.bindparam("n")).offset(sa.bindparam("skip"))
    return Prepared(page), Prepared(page.where(I.c.id > sa.bindparam("after")))


_HEADS = _heads(I.c.data, I.c.clocks)
_VOUCHED_HEADS = _heads(sa.literal_column(_vouched("data")).label("data"),
                        sa.literal_column(_vouched("clocks")).label("clocks"))
# Text json.loads reads, and text it refuses (or, nested deep, cannot read): SQLite must
# vouch for the first and for none of the rest.
_PYTHON_JSON = '{"a":[1,2.5e3,-0,null,true,"漏\\u00e9\\n"],"b":{}}'
_NOT_PYTHON_JSON = ["{a:1}", "[1,]", "{\"a\":1,}", "'a'", "0x10", ".5", "+1", "1.", "01", "\"\\x41\"",
                    "{\"a\":1}\x00", "1\x002", "\"\x01\"", "", " ", "\ufeff{}", "[" * 1500 + "]" * 1500,
                    "1" * 4400, "/* c */ 1", "[1] // c", "Infinity1"]
_VOUCHING: dict[Any, bool] = {}


def _sqlite_vouches(conn: Connection) -> bool:
    """Whether this SQLite checks instance rows' JSON itself (``_vouched``): it has
    ``json_valid``, which vouches for readable JSON and for none of ``_NOT_PYTHON_JSON``
    (a later SQLite that took JSON5 for valid would be left to Python). Asked once per
    SQLite library."""
    if conn.dialect.name != "sqlite":
        return False
    key = conn.dialect.server_version_info
    if key not in _VOUCHING:
        probe = sa.text(f"WITH t(v) AS (VALUES (:v)) SELECT {_vouched('v')} IS NULL FROM t")
        try:
            vouched = [bool(conn.execute(probe, {"v": text}).scalar()) for text in [_PYTHON_JSON, *_NOT_PYTHON_JSON]]
            _VOUCHING[key] = vouched[0] and not any(vouched[1:])
        except sa.exc.OperationalError:  # no JSON functions in this build
            _VOUCHING[key] = False
    return _VOUCHING[key]


def iter_chains(conn: Connection) -> Iterator[tuple[int, str, int, list[StoredEvent] | StoredDataCorrupt]]:
    """Every instance with its events, streamed in id order for verification (and bulk replay).

    The instance rows are read a page at a time, each page's events with one range query,
    so memory stays one page and a reader that stops early reads no further. An instance
    whose events no longer parse (a timestamp that is not a time any more), or whose row's
    data or clocks no longer parse, comes with the error instead of its events, so
    verification reports it as broken.
    """
    first, after = _VOUCHED_HEADS if _sqlite_vouches(conn) else _HEADS
    heads = _tuples(conn, first, {"n": _CHAIN_PAGE, "skip": 0})
    while heads:
        yield from _chains_of_page(conn, heads)
        heads = _tuples(conn, after, {"after": heads[-1][0], "n": _CHAIN_PAGE, "skip": 0})


def _chains_of_page(conn: Connection, heads: list[Any]
                    ) -> Iterator[tuple[int, str, int, list[StoredEvent] | StoredDataCorrupt]]:
    by_id: dict[int, Any] = {h[0]: [] for h in heads}
    try:
        events = _read_events(conn, _EVENTS_BETWEEN, {"lo": heads[0][0], "hi": heads[-1][0]}, _stored_rows)
        for iid, chain in groupby(events, _INSTANCE_ID):  # in instance_id order: one run each
            if iid in by_id:
                by_id[iid].extend(chain)
    except ValueError:
        for iid in by_id:  # find which instance holds the unreadable row
            try:
                by_id[iid] = events_of(conn, iid)
            except ValueError as e:
                by_id[iid] = StoredDataCorrupt(f"instance {iid}", str(e))
    for iid, last_hash, revision, data, clocks in heads:
        try:  # (None: SQLite vouched for it, see _vouched)
            (data is None or loads(data)), (clocks is None or loads(clocks))
        except ValueError as e:
            by_id[iid] = StoredDataCorrupt(f"instance {iid}", f"the instance row no longer parses: {e}")
        yield iid, last_hash, revision, by_id[iid]


def in_buildings(buildings: tuple[str, ...]) -> sa.ColumnElement[bool]:
    """An instance of one of ``buildings``, or of no building (an anonymous complaint): what
    a building-scoped person's queues hold (OrgSpec.building_scope)."""
    return sa.or_(I.c.building.is_(None), I.c.building.in_(buildings))


def task_rows(conn: Connection, assignee: Optional[str], roles: list[str], limit: int = 500,
              buildings: Optional[tuple[str, ...]] = None) -> list[Instance]:
    """Active instances assigned to ``assignee`` or waiting unassigned in a queue of
    ``roles``; with ``buildings`` (a steward's scope), only the queues' instances of those
    buildings or of none."""
    cond = []
    if assignee:
        cond.append(I.c.assignee == assignee)
    if roles:
        queue = [I.c.assignee.is_(None), I.c.assignee_role.in_(roles)]
        if buildings is not None:
            queue.append(in_buildings(buildings))
        cond.append(sa.and_(*queue))
    if not cond:
        return []
    rows = conn.execute(sa.select(*_INSTANCE_COLS).where(I.c.status == "active", sa.or_(*cond))
                        .order_by(I.c.last_occurred_at, I.c.id).limit(limit))
    return [_instance(r) for r in rows]


def count_instances(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(I)).scalar_one())
