"""The ``events`` table, the log: appending a command's events with the projection they
produce, and reading logs back (history, replay, verification).

An append is one multi-row INSERT of events and one UPDATE of the projection guarded by
the expected revision (on psycopg one statement, see ``prepared.Prepared``), then the
events are noted for the transaction's ledger row (engine/store/ledger.py). The hash chain
is built in one place, :func:`event_rows`, for appends and bulk starts alike.
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
from engine.store.prepared import Prepared
from engine.store.tables import events as E
from engine.store.tables import instances as I

_INSERT_EVENTS = Prepared(sa.insert(E))
# The SET clause comes from the column-named keys of the parameters, each bound with its
# column's type (UTCDateTime for times); the WHERE names must not clash with columns.
_UPDATE_PROJECTION = Prepared(sa.update(I).where(I.c.id == sa.bindparam("b_id"),
                                                 I.c.revision == sa.bindparam("b_revision")))



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
    changes = projection_changes(before, after, seq, prev, building_of)
    try:
        matched = _UPDATE_PROJECTION.execute_after_insert(conn, _INSERT_EVENTS, rows, changes, sent)
    except IntegrityError as err:  # the events' key: another writer appended this seq first
        raise ConcurrencyConflict(before.id, before.revision) from err
    if matched != 1:
        raise ConcurrencyConflict(before.id, before.revision)
    ledger.note(conn, [(s.instance_id, s.seq, s.hash) for s in stored])
    return stored


def append_many(conn: Connection, rows: list[dict[str, Any]], changes: list[dict[str, Any]],
                sents: Optional[list[dict[str, Any]]] = None) -> None:
    """A batch's appends in one go: every event row (from :func:`event_rows`, in the order
    they were decided) in one multi-row INSERT, then every projection UPDATE (from
    :func:`projection_changes`, each guarded by the revision its instance was loaded at)
    as one executemany per set of changed columns; the events noted for the ledger in
    their order. ConcurrencyConflict if any instance moved on meanwhile: the whole
    transaction rolls back. ``sents`` receives, per change, what its columns were set to."""
    if not rows:
        return
    try:
        _INSERT_EVENTS.executemany(conn, rows)
    except IntegrityError as err:
        raise ConcurrencyConflict(_first_conflict(changes), changes[0]["b_revision"] if changes else 0) from err
    matched = _UPDATE_PROJECTION.update_many(conn, changes, sents)
    if matched != len(changes):
        raise ConcurrencyConflict(_first_conflict(changes), changes[0]["b_revision"])
    ledger.note(conn, [(r["instance_id"], r["seq"], r["hash"]) for r in rows])


def _first_conflict(changes: list[dict[str, Any]]) -> object:
    """Which instances a batch's conflict concerns, for the message (one of them moved on)."""
    ids = [c["b_id"] for c in changes]
    return ids[0] if len(ids) == 1 else f"{ids[0]} (or another of the batch's {len(ids)})"


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


_projection_changes = projection_changes  # the name it had


def latest_occurred_at(conn: Connection) -> Optional[datetime]:
    """When the latest event of the whole store happened (None for an empty store)."""
    return conn.execute(sa.select(sa.func.max(E.c.occurred_at))).scalar()



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

