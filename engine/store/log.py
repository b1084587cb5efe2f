"""The ``events`` table, the log: appending a command's events with the projection they
produce, and reading logs back (history, replay, verification).

An append is one multi-row INSERT of events and one UPDATE of the projection guarded by
the expected revision, then the timers rows of the clocks that changed, and the events are
noted for the transaction's ledger row (engine/store/ledger.py). What every backend shares
lives here: the hash chain, built in one place (:func:`event_rows`, for appends and bulk
starts alike), the projection's changed columns (:func:`projection_changes`), the records a
row of ``EVENT_COLUMNS`` becomes, and verification's paging (:func:`chains`). The statements
here are the general backend's (SQLAlchemy Core); the driver backends run their own SQL
(engine/store/backends/).
"""
from __future__ import annotations

from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import Any, Callable, Iterator, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from engine.audit import StoredEvent, canonical_json, decode_event, loads
from engine.codec import clocks_to_json, encode_event
from engine.core.model import Event, Instance
from engine.errors import ConcurrencyConflict, StoredDataCorrupt
from engine.store import ledger
from engine.store import timers as timer_store
from engine.store.tables import events as E
from engine.store.tables import instances as I

BuildingOf = Callable[[dict[str, Any]], Optional[str]]
# StoredEvent's fields, in order: a row of these columns becomes the record as it is.
EVENT_COLUMNS = ("instance_id", "seq", "type", "actor", "role", "occurred_at", "recorded_at", "data",
                 "prev_hash", "hash")
OCCURRED_AT, RECORDED_AT = 5, 6  # where the times sit in an EVENT_COLUMNS row

_INSERT_EVENTS = sa.insert(E)
_UPDATES: dict[tuple[str, ...], Any] = {}  # the projection UPDATE per set of changed columns


def append(conn: Connection, before: Instance, new_events: list[Event], after: Instance,
           recorded_at: datetime, building_of: BuildingOf) -> list[StoredEvent]:
    """Append events and write the projection in the caller's transaction (through Core).

    The UPDATE matches only the revision the command was decided on; if another writer got
    there first nothing matches and ConcurrencyConflict rolls the whole transaction back.
    ``building_of`` is the runtime's rule for the stored ``building`` column (the store
    knows no form fields).
    """
    rows, stored = event_rows(before.id, new_events, recorded_at, before.last_hash, before.revision)
    if not rows:
        return []
    changes = projection_changes(before, after, stored[-1].seq, stored[-1].hash, building_of)
    try:
        conn.execute(_INSERT_EVENTS, rows)
    except IntegrityError as err:  # the events' key: another writer appended this seq first
        raise ConcurrencyConflict(before.id, before.revision) from err
    if conn.execute(_update(tuple(changes)), {"b_id": before.id, "b_revision": before.revision, **changes}
                    ).rowcount != 1:
        raise ConcurrencyConflict(before.id, before.revision)
    timer_store.sync(conn, before.id, after.procedure, before.clocks, after.clocks)
    ledger.note(conn, [(s.instance_id, s.seq, s.hash) for s in stored])
    return stored


Update = tuple[int, int, dict[str, Any]]  # a batch's projection UPDATE: id, revision guarded, changed columns


def append_many(conn: Connection, rows: list[dict[str, Any]], updates: list[Update]) -> None:
    """A batch's appends in one go (through Core): every event row (from :func:`event_rows`,
    in the order they were decided), then every projection UPDATE (from
    :func:`projection_changes`, each guarded by the revision its instance was loaded at);
    the events noted for the ledger in their order. ConcurrencyConflict if any instance
    moved on meanwhile: the whole transaction rolls back."""
    if not rows:
        return
    try:
        conn.execute(_INSERT_EVENTS, rows)
    except IntegrityError as err:
        raise batch_conflict(updates) from err
    matched = sum(conn.execute(_update(tuple(values)), {"b_id": iid, "b_revision": revision, **values}).rowcount
                  for iid, revision, values in updates)
    if matched != len(updates):
        raise batch_conflict(updates)
    ledger.note(conn, [(r["instance_id"], r["seq"], r["hash"]) for r in rows])


def batch_conflict(updates: list[Update]) -> ConcurrencyConflict:
    """A batch's conflict: which instances it concerns, for the message (one of them moved on)."""
    ids = [u[0] for u in updates]
    which: Any = ids[0] if len(ids) == 1 else f"{ids[0]} (or another of the batch's {len(ids)})"
    return ConcurrencyConflict(which, updates[0][1] if updates else 0)


def _update(columns: tuple[str, ...]) -> Any:
    """The projection UPDATE setting ``columns``, guarded by id and revision (made once per set)."""
    stmt = _UPDATES.get(columns)
    if stmt is None:
        stmt = _UPDATES[columns] = sa.update(I).where(I.c.id == sa.bindparam("b_id"),
                                                      I.c.revision == sa.bindparam("b_revision")) \
            .values({c: sa.bindparam(c, type_=I.c[c].type) for c in columns})
    return stmt


def event_rows(instance_id: int, events: list[Event], recorded_at: datetime, prev_hash: str,
               revision: int = 0) -> tuple[list[dict[str, Any]], list[StoredEvent]]:
    """The ``events`` rows that extend a log at ``revision`` (seq from revision + 1), each
    hashed over its content and its predecessor's hash, and the same events as stored.
    The one place the chain is built: appends and bulk starts both come here."""
    rows, stored = [], []
    prev, seq = prev_hash, revision
    for e in events:
        seq += 1
        kind = e.type if type(e.type) is str else str.__str__(e.type)  # the plain text, as stored
        data_json, h = encode_event(instance_id, seq, kind, e.actor, e.role, e.occurred_at, recorded_at, e.data,
                                    prev)
        rows.append({"instance_id": instance_id, "seq": seq, "type": kind, "actor": e.actor, "role": e.role,
                     "occurred_at": e.occurred_at, "recorded_at": recorded_at, "data": data_json,
                     "prev_hash": prev, "hash": h})
        stored.append(StoredEvent(instance_id, seq, kind, e.actor, e.role, e.occurred_at, recorded_at,
                                  data_json, prev, h))
        prev = h
    return rows, stored


def projection_changes(before: Instance, after: Instance, revision: int, last_hash: str,
                       building_of: BuildingOf) -> dict[str, Any]:
    """The projection UPDATE's SET values by column: only the columns whose value changed
    (and always ``revision`` and ``last_hash``); every backend sets exactly these.

    SQLite rewrites an index entry for every indexed column in the SET clause, changed or
    not; setting only what changed keeps an action's commit to about half the pages
    (BENCHMARKS.md), and skips serialising data or clocks that did not change.
    """
    params: dict[str, Any] = {}
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
        params["clocks"] = clocks_to_json(after.clocks)
    if after.watchers != before.watchers:
        params["watchers"] = canonical_json(list(after.watchers))
    if after.branches != before.branches:
        params["branches"] = canonical_json(after.branches)
    if after.last_occurred_at != before.last_occurred_at:
        params["last_occurred_at"] = after.last_occurred_at
    params["revision"] = revision
    params["last_hash"] = last_hash
    return params



def latest_occurred_at(conn: Connection) -> Optional[datetime]:
    """When the latest event of the whole store happened (None for an empty store)."""
    return conn.execute(sa.select(sa.func.max(E.c.occurred_at))).scalar()



# ---------------------------------------------------------------- reading logs (history, replay, verify)

_EVENT_COLS = [E.c[name] for name in EVENT_COLUMNS]
_EVENTS_OF = sa.select(*_EVENT_COLS).where(E.c.instance_id == sa.bindparam("iid")).order_by(E.c.seq)
_EVENTS_BETWEEN = sa.select(*_EVENT_COLS).where(E.c.instance_id.between(sa.bindparam("lo"), sa.bindparam("hi"))) \
    .order_by(E.c.instance_id, E.c.seq)
CHAIN_PAGE = 500  # instances per page of iter_chains: their events are one range query
_INSTANCE_ID = itemgetter(0)  # of a StoredEvent


def events_of(conn: Connection, instance_id: int) -> list[StoredEvent]:
    """An instance's events in seq order (ValueError if a stored time no longer parses)."""
    return stored_events(list(conn.execute(_EVENTS_OF, {"iid": instance_id})), _same)


def decoded_events(conn: Connection, instance_id: int) -> Optional[list[Event]]:
    """An instance's events in seq order, decoded for replay; None if any stored time or data
    no longer reads (``events_of`` and ``StoredEvent.to_event`` then say which, and how)."""
    try:
        return decoded_rows(list(conn.execute(_EVENTS_OF, {"iid": instance_id})), _same)
    except Exception:  # noqa: BLE001  (the caller reads again the way that reports it)
        return None


def _same(value: Any) -> Any:
    return value


def _timed(rows: list[Any], read_time: Callable[[Any], Any]) -> Iterator[tuple[Any, Any, Any]]:
    """Each row of ``EVENT_COLUMNS`` with its two times read by ``read_time`` (a backend's
    reader of its stored times; Core's rows are read already). The events of one command
    carry the same times, and occurred_at is recorded_at for most, so a time stored as the
    same value as the row before's, or as the row's occurred_at, is not read again."""
    o_raw: Any = None
    c_raw: Any = None
    o_time = c_time = None
    for r in rows:
        o, c = r[5], r[6]
        if o is None or o != o_raw:
            o_time, o_raw = read_time(o), o
        if c is None or c != c_raw:
            c_time, c_raw = (o_time if c is not None and c == o_raw else read_time(c)), c
        yield r, o_time, c_time


def stored_events(rows: list[Any], read_time: Callable[[Any], Any]) -> list[StoredEvent]:
    """Rows of ``EVENT_COLUMNS`` as StoredEvents (the columns are its fields, in order)."""
    new = tuple.__new__
    return [new(StoredEvent, (r[0], r[1], r[2], r[3], r[4], o, c, r[7], r[8], r[9]))
            for r, o, c in _timed(rows, read_time)]


def decoded_rows(rows: list[Any], read_time: Callable[[Any], Any]) -> list[Event]:
    """Rows of ``EVENT_COLUMNS`` as Events, their data decoded."""
    decode = decode_event
    return [decode(r[2], r[3], r[4], o, r[7], r[1], c, r[8], r[9]) for r, o, c in _timed(rows, read_time)]


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


def heads_sql(vouched: bool) -> str:
    """The head columns verification pages through (id, last_hash, revision, data, clocks),
    as SQL text, with SQLite's vouching (``_vouched``) when asked."""
    if vouched:
        return f"id, last_hash, revision, {_vouched('data')}, {_vouched('clocks')}"
    return "id, last_hash, revision, data, clocks"


# Text json.loads reads, and text it refuses (or, nested deep, cannot read): SQLite must
# vouch for the first and for none of the rest.
_PYTHON_JSON = '{"a":[1,2.5e3,-0,null,true,"漏\\u00e9\\n"],"b":{}}'
_NOT_PYTHON_JSON = ["{a:1}", "[1,]", "{\"a\":1,}", "'a'", "0x10", ".5", "+1", "1.", "01", "\"\\x41\"",
                    "{\"a\":1}\x00", "1\x002", "\"\x01\"", "", " ", "\ufeff{}", "[" * 1500 + "]" * 1500,
                    "1" * 4400, "/* c */ 1", "[1] // c", "Infinity1"]
_VOUCHING: dict[Any, bool] = {}


def sqlite_vouches(conn: Connection) -> bool:
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


Chain = tuple[int, str, int, "list[StoredEvent] | StoredDataCorrupt"]


def iter_chains(conn: Connection) -> Iterator[Chain]:
    """Every instance with its events, through Core (see :func:`chains`)."""
    cols = heads_sql(sqlite_vouches(conn))

    def heads(after: Optional[int]) -> list[Any]:
        where = "" if after is None else "WHERE id > :after "
        q = sa.text(f"SELECT {cols} FROM instances {where}ORDER BY id LIMIT :n")
        return [tuple(r) for r in conn.execute(q, {"after": after, "n": CHAIN_PAGE} if after is not None
                                               else {"n": CHAIN_PAGE})]

    def between(lo: int, hi: int) -> list[StoredEvent]:
        return stored_events(list(conn.execute(_EVENTS_BETWEEN, {"lo": lo, "hi": hi})), _same)

    return chains(heads, between, lambda iid: events_of(conn, iid))


def chains(heads: Callable[[Optional[int]], list[Any]], between: Callable[[int, int], list[StoredEvent]],
           events_of_one: Callable[[int], list[StoredEvent]]) -> Iterator[Chain]:
    """Every instance with its events, streamed in id order for verification (and bulk replay).

    The instance rows are read a page at a time (``heads(None)``, then ``heads(last id)``),
    each page's events with one range query (``between``), so memory stays one page and a
    reader that stops early reads no further. An instance whose events no longer parse (a
    timestamp that is not a time any more), or whose row's data or clocks no longer parse,
    comes with the error instead of its events, so verification reports it as broken.
    """
    page = heads(None)
    while page:
        yield from _chains_of_page(page, between, events_of_one)
        page = heads(page[-1][0])


def _chains_of_page(heads: list[Any], between: Callable[[int, int], list[StoredEvent]],
                    events_of_one: Callable[[int], list[StoredEvent]]) -> Iterator[Chain]:
    by_id: dict[int, Any] = {h[0]: [] for h in heads}
    try:
        events = between(heads[0][0], heads[-1][0])
        for iid, chain in groupby(events, _INSTANCE_ID):  # in instance_id order: one run each
            if iid in by_id:
                by_id[iid].extend(chain)
    except ValueError:
        for iid in by_id:  # find which instance holds the unreadable row
            try:
                by_id[iid] = events_of_one(iid)
            except ValueError as e:
                by_id[iid] = StoredDataCorrupt(f"instance {iid}", str(e))
    for iid, last_hash, revision, data, clocks in heads:
        try:  # (None: SQLite vouched for it, see _vouched)
            (data is None or loads(data)), (clocks is None or loads(clocks))
        except ValueError as e:
            by_id[iid] = StoredDataCorrupt(f"instance {iid}", f"the instance row no longer parses: {e}")
        yield iid, last_hash, revision, by_id[iid]
