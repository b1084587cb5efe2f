"""Writing many new instances in one transaction: ids, rows and a few ``executemany`` calls.

The bulk start (``engine/runtime/bulk.py``) decides every instance first and only then
writes, so it needs the ids before anything is inserted (an id may appear in a message).
One start at a time inserts a placeholder row to learn its id, appends the events and
then rewrites the row; here the ids are reserved up front, and each table gets one
``executemany`` of complete rows: instances, events, timers, outbox.

The event rows and their hash chain come from ``log.event_rows``, as an append's
do; the other rows are built as ``queue.outbox_rows`` and ``timers.changes`` build them for
one start (same canonical JSON, same columns), so a bulk-started instance cannot be told apart from one started alone;
``tests/test_bulk_start.py`` compares the two table by table.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping, Optional, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from engine.audit import canonical_json
from engine.codec import Clock, clocks_to_json
from engine.core.model import NOTIFICATION_QUEUED, Event, Instance
from engine.errors import KeysTaken
from engine.store import ledger
from engine.store import timers as timer_store
from engine.store.queue import outbox_rows as queued_rows
from engine.store.tables import events as E
from engine.store.tables import instances as I
from engine.store.tables import outbox as O
from engine.store.tables import timers as T

_INSERTS = (sa.insert(E), sa.insert(T), sa.insert(O))
_KEY_CHUNK = 500  # bound parameters per lookup, well under every backend's limit


def reserve_ids(conn: Connection, n: int) -> list[int]:
    """``n`` new instance ids, in ascending order, for rows this transaction will insert.

    SQLite: the write transaction (``BEGIN IMMEDIATE``) excludes every other writer, so
    the next ids are the ones SQLite would give one insert at a time: the largest id
    + 1, + 2, … PostgreSQL: taken from the column's own sequence, as its default would.
    """
    if n <= 0:
        return []
    if conn.dialect.name == "sqlite":
        top = conn.execute(sa.select(sa.func.max(I.c.id))).scalar() or 0
        return list(range(top + 1, top + n + 1))
    seq = sa.func.pg_get_serial_sequence("instances", "id")
    got = conn.execute(sa.select(sa.func.nextval(seq)).select_from(sa.func.generate_series(1, n)))
    return sorted(int(r[0]) for r in got)


def existing_keys(conn: Connection, keys: Iterable[str]) -> dict[str, int]:
    """The instances already holding some of these external keys: key -> instance id."""
    wanted = list(dict.fromkeys(keys))
    found: dict[str, int] = {}
    for i in range(0, len(wanted), _KEY_CHUNK):
        chunk = wanted[i:i + _KEY_CHUNK]
        for key, iid in conn.execute(sa.select(I.c.external_key, I.c.id).where(I.c.external_key.in_(chunk))):
            found[key] = iid
    return found


def instance_row(inst: Instance, revision: int, last_hash: str, external_key: Optional[str],
                 building: Optional[str]) -> dict[str, Any]:
    """The complete ``instances`` row of a new instance: what one start leaves after its
    placeholder insert and its projection update (``log.projection_changes``);
    ``building`` is the runtime's (the store knows no form fields)."""
    return {"id": inst.id, "procedure": inst.procedure, "version": inst.version, "state": inst.state,
            "status": inst.status, "assignee": inst.assignee, "assignee_role": inst.assignee_role,
            "building": building,
            "data": canonical_json(inst.data), "clocks": clocks_to_json(inst.clocks),
            "watchers": canonical_json(list(inst.watchers)), "branches": canonical_json(inst.branches),
            "parent_id": inst.parent_id, "revision": revision, "started_at": inst.started_at,
            "last_occurred_at": inst.last_occurred_at, "last_hash": last_hash, "external_key": external_key}


def timer_rows(instance_id: int, procedure: str, clocks: Mapping[str, Clock]) -> list[dict[str, Any]]:
    """The ``timers`` rows of a new instance's clocks (``timers.changes`` from no clocks)."""
    return [{"instance_id": instance_id, "name": name, **timer_store.timer_row_values(procedure, c)}
            for name, c in clocks.items()]


def outbox_rows(instance_id: int, seq: int, data: dict[str, Any], at: datetime) -> list[dict[str, Any]]:
    """The ``outbox`` rows of one ``NotificationQueued`` event (``queue.enqueue``)."""
    return queued_rows(instance_id, seq, data["recipients"], data["message"], data.get("channel"), at)


def notification_rows(instance_id: int, stored: Sequence[Any], events: Sequence[Event], at: datetime
                      ) -> list[dict[str, Any]]:
    """The ``outbox`` rows of a commit's ``NotificationQueued`` events, each queued under its
    event's seq (``stored``: the events as appended, in the same order): what a single
    command, a batch and a bulk start all queue."""
    return [row for s, e in zip(stored, events) if e.type == NOTIFICATION_QUEUED
            for row in outbox_rows(instance_id, s.seq, e.data, at)]


def insert_outbox(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Outbox rows of ``outbox_rows`` in one executemany (a batch of actions' notifications;
    Core's, the driver backends run their own)."""
    if rows:
        conn.execute(_INSERTS[2], rows)


def insert(conn: Connection, instances: list[dict[str, Any]], events: list[dict[str, Any]],
           timers: list[dict[str, Any]], outbox: list[dict[str, Any]]) -> None:
    """One ``executemany`` per table, through Core (the general backend's ``insert_many``;
    the driver backends run their own SQL).

    Instances first: on PostgreSQL a concurrent start that took one of the external keys
    meanwhile fails here, on the unique key, and the whole batch rolls back.
    """
    if instances:
        try:
            conn.execute(sa.insert(I), instances)
        except IntegrityError as err:
            raise keys_taken(instances) from err
    for stmt, rows in zip(_INSERTS, (events, timers, outbox)):
        if rows:
            conn.execute(stmt, rows)
    ledger.note(conn, [(r["instance_id"], r["seq"], r["hash"]) for r in events])


def keys_taken(instances: list[dict[str, Any]]) -> KeysTaken:
    """The refusal of a batch whose instances hit a unique key another start took meanwhile."""
    return KeysTaken(f"starting {len(instances)} {instances[0]['procedure']} instances")
