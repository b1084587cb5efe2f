"""The storage port: what the runtime needs of a store to run one command, and its backends.

A command loads the instance it changes (``load_for_write``), appends the events it decided
with the projection they produce (``append``); replay and verification read an instance's
log (``events_of``); the sweep reads the due clock steps (``due_steps``) and claims each one
it fires (``claim_step``). Every call runs inside the caller's transaction (a
``sqlalchemy.engine.Connection`` from ``db.Connections``), so a command stays one
transaction with the state it produces, whatever the backend.

Backends, chosen by the database URL (:func:`backend_for`):

- ``sqlite3`` and ``psycopg``: the hot-path statements run straight on the driver
  (``engine.store.prepared``: compiled once, bound through the same type processors);
- ``sqlalchemy``: the general one, every statement through SQLAlchemy Core, for any other
  driver — and on SQLite or psycopg when asked for (the contract tests run it there too,
  so the driver paths are proven to store exactly what Core stores).

What the store must not know is office policy: which building an instance sits in is the
runtime's rule (``engine.spec.forms.instance_building``), handed to the store as
``building_of`` when it is made. ``tests/test_store_port.py`` is the contract: one test
class, subclassed per backend, on SQLite and on the suite's own PostgreSQL.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Collection, NamedTuple, Optional, Protocol

from sqlalchemy.engine import Connection, Engine

from engine.audit import StoredEvent
from engine.core.model import Event, Instance
from engine.store import instances, log
from engine.store import timers as timer_store
from engine.store.db import CORE_ONLY
from engine.store.instance_cache import InstanceCache

BuildingOf = Callable[[dict[str, Any]], Optional[str]]


class DueStep(NamedTuple):
    """A clock step that has come due: which instance, which clock, when it was due."""

    instance_id: int
    name: str
    next_fire_at: datetime


class EventStore(Protocol):
    """The store as one command sees it; every method runs in the caller's transaction."""

    backend: str

    def load_for_write(self, conn: Connection, instance_id: int) -> Instance:
        """The instance a command will change (row-locked where the backend locks rows);
        InstanceNotFound if there is none."""

    def append(self, conn: Connection, before: Instance, events: list[Event], after: Instance,
               recorded_at: datetime, sent: Optional[dict[str, Any]] = None) -> list[StoredEvent]:
        """Append ``events`` (decided on ``before``) hash-chained after its last one, and write
        ``after`` as the projection; ConcurrencyConflict if ``before`` is no longer current."""

    def events_of(self, conn: Connection, instance_id: int) -> list[StoredEvent]:
        """The instance's events in seq order, as stored."""

    def due_steps(self, conn: Connection, until: datetime, limit: int,
                  skip: Collection[tuple[int, str]] = ()) -> list[DueStep]:
        """The earliest clock steps due at or before ``until``, earliest first, but those of
        ``skip`` ((instance_id, name) pairs): in a write transaction, the steps it may fire
        with no other transaction firing them (held until it ends)."""

    def claim_step(self, conn: Connection, step: DueStep) -> bool:
        """Take a due step for firing: True for exactly one claimant."""


class SqlStore:
    """The relational backends: the same tables and statements on every database, run on
    the driver (``sqlite3``, ``psycopg``) or through SQLAlchemy Core (``sqlalchemy``)."""

    def __init__(self, backend: str, building_of: BuildingOf, cache: Optional[InstanceCache] = None) -> None:
        self.backend = backend
        self.building_of = building_of
        self.cache = cache if cache is not None else InstanceCache(instances.INSTANCE_COLUMNS)

    def load_for_write(self, conn: Connection, instance_id: int) -> Instance:
        return instances.load_for_write(conn, instance_id, self.cache)

    def append(self, conn: Connection, before: Instance, events: list[Event], after: Instance,
               recorded_at: datetime, sent: Optional[dict[str, Any]] = None) -> list[StoredEvent]:
        return log.append(conn, before, events, after, recorded_at, self.building_of, sent)

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


_DRIVER_BACKENDS = {"pysqlite": "sqlite3", "psycopg": "psycopg"}


def backend_for(engine: Engine) -> str:
    """The backend a database engine gets: its driver's own, or the general ``sqlalchemy``
    (another driver, or an engine made with the ``CORE_ONLY`` execution option)."""
    if engine.get_execution_options().get(CORE_ONLY):
        return "sqlalchemy"
    return _DRIVER_BACKENDS.get(engine.dialect.driver, "sqlalchemy")


def store_for(engine: Engine, building_of: BuildingOf, cache: Optional[InstanceCache] = None) -> SqlStore:
    """The store of a database engine (see :func:`backend_for`)."""
    return SqlStore(backend_for(engine), building_of, cache)
