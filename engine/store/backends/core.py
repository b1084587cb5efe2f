"""The general backend: every statement through SQLAlchemy Core, on any driver.

It is the reference the driver backends are tested against (tests/test_store_port.py: the
same commands leave the same rows), and the base they inherit what is off the command path
from. No instance cache: its rows are Core's processed rows, which a cache keyed on the
stored row would have to compare value by value anyway.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Collection, Iterator, Optional

from sqlalchemy.engine import Connection

from engine.audit import StoredEvent
from engine.core.model import Event, Instance
from engine.store import bulk, instances, ledger, log, queue
from engine.store import timers as timer_store
from engine.store.instance_cache import InstanceCache
from engine.store.log import BuildingOf, Chain
from engine.store.port import DueStep


class CoreStore:
    """The storage port through SQLAlchemy Core (``backend = "sqlalchemy"``)."""

    backend = "sqlalchemy"

    def __init__(self, building_of: BuildingOf, cache: Optional[InstanceCache] = None) -> None:
        self.building_of = building_of
        self.cache = cache if cache is not None else InstanceCache(instances.INSTANCE_COLUMNS)

    # ------------------------------------------------------------ the port (EventStore)

    def load_for_write(self, conn: Connection, instance_id: int) -> Instance:
        return instances.load_instance(conn, instance_id)

    def append(self, conn: Connection, before: Instance, events: list[Event], after: Instance,
               recorded_at: datetime, sent: Optional[dict[str, Any]] = None) -> list[StoredEvent]:
        return log.append(conn, before, events, after, recorded_at, self.building_of)

    def events_of(self, conn: Connection, instance_id: int) -> list[StoredEvent]:
        return log.events_of(conn, instance_id)

    def due_steps(self, conn: Connection, until: datetime, limit: int,
                  skip: Collection[tuple[int, str]] = ()) -> list[DueStep]:
        if timer_store.locks_rows(conn):  # PostgreSQL: locked, skipping rows other sweepers hold
            rows = timer_store.lock_due(conn, until, limit, skip)
        else:  # SQLite: a write transaction holds the one write lock already
            rows = [r for r in timer_store.due(conn, until, limit + len(skip)) if (r[0], r[1]) not in skip]
        return [DueStep(r[0], r[1], r[2]) for r in rows[:limit]]

    def claim_step(self, conn: Connection, step: DueStep) -> bool:
        return timer_store.claim(conn, step.instance_id, step.name, step.next_fire_at)

    # ------------------------------------------------------------ the rest of a command, replay, bulk

    def load(self, conn: Connection, instance_id: int) -> Instance:
        """The stored instance for reading (locked like ``load_for_write`` in a PostgreSQL write
        transaction), never from the cache; InstanceNotFound if there is none."""
        return instances.load_instance(conn, instance_id)

    def children_of(self, conn: Connection, instance_id: int) -> list[int]:
        """The ids of the instances this one started, oldest first."""
        return instances.children_of(conn, instance_id)

    def child_procedures(self, conn: Connection, instance_id: int) -> list[tuple[str, str]]:
        """(procedure, status) of each instance this one started, oldest first (the links
        guards read on every command of a procedure that names them)."""
        return instances.child_procedures(conn, instance_id)

    def new_instance_id(self, conn: Connection, row: dict[str, Any],
                        sent: Optional[dict[str, Any]] = None) -> Optional[int]:
        """Insert a new instance's placeholder row (``instances.new_row``); its id, or None
        if its external key is taken. A driver backend fills ``sent`` with the values as
        stored (the instance cache's row); Core leaves it empty."""
        return instances.new_instance_id(conn, row)

    def enqueue(self, conn: Connection, instance_id: int, seq: int, recipients: list[str], message: str,
                channel: Optional[str], at: datetime) -> None:
        queue.enqueue(conn, instance_id, seq, recipients, message, channel, at)

    def seal(self, conn: Connection, at: datetime) -> Optional[int]:
        """Append the transaction's ledger row (see engine/store/ledger.py); its seq or None."""
        return ledger.seal(conn, at)

    def decoded_events(self, conn: Connection, instance_id: int) -> Optional[list[Event]]:
        return log.decoded_events(conn, instance_id)

    def iter_chains(self, conn: Connection) -> Iterator[Chain]:
        return log.iter_chains(conn)

    def insert_many(self, conn: Connection, instances_: list[dict[str, Any]], events: list[dict[str, Any]],
                    timers: list[dict[str, Any]], outbox: list[dict[str, Any]]) -> None:
        """A bulk start's rows, one statement per table (engine/store/bulk.py builds them)."""
        bulk.insert(conn, instances_, events, timers, outbox)

    # ------------------------------------------------------------ a batch's reads and writes (engine/runtime/batch.py)

    def load_many_for_write(self, conn: Connection, instance_ids: list[int]) -> dict[int, Instance]:
        """The instances a batch will change, by id (absent: no such instance), read in id
        order (row-locked in that order where the backend locks rows)."""
        return instances.load_many(conn, instance_ids)

    def children_of_many(self, conn: Connection, parent_ids: list[int]) -> dict[int, list[tuple[int, str, str]]]:
        """(id, procedure, status) of the instances each parent started, oldest first."""
        return instances.children_of_many(conn, parent_ids)

    def append_many(self, conn: Connection, rows: list[dict[str, Any]], updates: list[log.Update],
                    sents: Optional[list[dict[str, Any]]] = None) -> None:
        """A batch's event rows and projection UPDATEs (``log.append_many``); ``sents`` gets
        one dict per update, what its columns were stored as (empty here: no cache)."""
        log.append_many(conn, rows, updates)
        if sents is not None:
            sents.extend({} for _ in updates)

    def sync_timers_many(self, conn: Connection, many: timer_store.Many) -> None:
        """The timers rows of a batch's instances (``timers.changes`` of each)."""
        timer_store.sync_many(conn, many)

    def insert_outbox(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Outbox rows (``queue.outbox_rows``), a batch's notifications."""
        bulk.insert_outbox(conn, rows)
