"""The storage port: what the runtime needs of a store to run one command, and its backends.

A command loads the instance it changes (``load_for_write``), appends the events it decided
with the projection they produce (``append``: events hash-chained, the projection guarded by
its revision, the timers rows of the clocks that moved, the events noted for the ledger);
replay and verification read an instance's log (``events_of``); the sweep reads the due
clock steps (``due_steps``) and claims each one it fires (``claim_step``). Every call runs
inside the caller's transaction (a ``sqlalchemy.engine.Connection`` from ``db.Connections``),
so a command stays one transaction with the state it produces, whatever the backend.

Backends (engine/store/backends/), chosen by the database URL (:func:`store_for`):

- ``SqliteStore`` (sqlite3) and ``PostgresStore`` (psycopg): plain SQL on the driver;
- ``CoreStore``: every statement through SQLAlchemy Core, for any other driver — and on
  SQLite or psycopg when asked for (``db.CORE_ONLY``), or when someone watches SQLAlchemy's
  statements (echo, cursor listeners). The contract tests run it on both databases, and
  compare the rows the driver backends leave with the rows it leaves.

Besides the port, a backend runs the rest of a command's writes (``new_instance_id``,
``enqueue``, ``seal``), the bulk reads of replay and verification (``decoded_events``,
``iter_chains``) and a bulk start's inserts (``insert_many``): the statements on a measured
hot path. What the store must not know is office policy: which building an instance sits
in is the runtime's rule (``engine.spec.forms.instance_building``), handed to the store as
``building_of`` when it is made. ``tests/test_store_port.py`` is the contract: one test
class, subclassed per backend, on SQLite and on the suite's own PostgreSQL.
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Collection, Iterator, NamedTuple, Optional, Protocol

from sqlalchemy.engine import Connection, Engine

from engine.audit import StoredEvent
from engine.core.model import Event, Instance
from engine.store.db import CORE_ONLY

if TYPE_CHECKING:
    from engine.store.instance_cache import InstanceCache
    from engine.store.log import BuildingOf, Chain, Update
    from engine.store.timers import Many


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
        """Append ``events`` (decided on ``before``) hash-chained after its last one, write
        ``after`` as the projection and the timers rows of the clocks that changed, and note
        the events for the ledger; ConcurrencyConflict if ``before`` is no longer current.
        ``sent`` receives the projection's changed columns as stored (the instance cache's)."""

    def events_of(self, conn: Connection, instance_id: int) -> list[StoredEvent]:
        """The instance's events in seq order, as stored."""

    def due_steps(self, conn: Connection, until: datetime, limit: int,
                  skip: Collection[tuple[int, str]] = ()) -> list[DueStep]:
        """The earliest clock steps due at or before ``until``, earliest first, but those of
        ``skip`` ((instance_id, name) pairs): in a write transaction, the steps it may fire
        with no other transaction firing them (held until it ends)."""

    def claim_step(self, conn: Connection, step: DueStep) -> bool:
        """Take a due step for firing: True for exactly one claimant."""


class Store(EventStore, Protocol):
    """The port and what else the runtime runs on a backend: the rest of a command's writes,
    the reads of replay and verification, a bulk start's inserts (the statements on a
    measured hot path; engine/store/backends/core.py says what each does)."""

    building_of: "BuildingOf"
    cache: "InstanceCache"

    def load(self, conn: Connection, instance_id: int) -> Instance: ...

    def children_of(self, conn: Connection, instance_id: int) -> list[int]: ...

    def child_procedures(self, conn: Connection, instance_id: int) -> list[tuple[str, str]]: ...

    def new_instance_id(self, conn: Connection, row: dict[str, Any],
                        sent: Optional[dict[str, Any]] = None) -> Optional[int]: ...

    def enqueue(self, conn: Connection, instance_id: int, seq: int, recipients: list[str], message: str,
                channel: Optional[str], at: datetime) -> None: ...

    def seal(self, conn: Connection, at: datetime) -> Optional[int]: ...

    def decoded_events(self, conn: Connection, instance_id: int) -> Optional[list[Event]]: ...

    def iter_chains(self, conn: Connection) -> "Iterator[Chain]": ...

    def insert_many(self, conn: Connection, instances_: list[dict[str, Any]], events: list[dict[str, Any]],
                    timers: list[dict[str, Any]], outbox: list[dict[str, Any]]) -> None: ...

    # a batch's (engine/runtime/batch.py: Engine.act_many and the sweep's batched firing)

    def load_many_for_write(self, conn: Connection, instance_ids: list[int]) -> dict[int, Instance]: ...

    def children_of_many(self, conn: Connection, parent_ids: list[int]) -> dict[int, list[tuple[int, str, str]]]: ...

    def append_many(self, conn: Connection, rows: list[dict[str, Any]], updates: "list[Update]",
                    sents: Optional[list[dict[str, Any]]] = None) -> None: ...

    def sync_timers_many(self, conn: Connection, many: "Many") -> None: ...

    def insert_outbox(self, conn: Connection, rows: list[dict[str, Any]]) -> None: ...


def backend_for(engine: Engine) -> str:
    """The backend a database engine gets: its driver's own (``sqlite3``, ``psycopg``), or
    the general ``sqlalchemy`` (another driver, the ``CORE_ONLY`` execution option, or
    SQLAlchemy's statements watched: echo or cursor event listeners)."""
    dispatch = engine.dispatch
    if (engine.get_execution_options().get(CORE_ONLY) or engine.echo
            or dispatch.before_cursor_execute or dispatch.after_cursor_execute):
        return "sqlalchemy"
    return {"pysqlite": "sqlite3", "psycopg": "psycopg"}.get(engine.dialect.driver, "sqlalchemy")


def store_for(engine: Engine, building_of: "BuildingOf", cache: "Optional[InstanceCache]" = None) -> Store:
    """The store of a database engine (see :func:`backend_for`)."""
    # (Imported here: the backends import this module for DueStep, and psycopg is needed
    # only by a PostgreSQL store.)
    backend = backend_for(engine)
    if backend == "sqlite3":
        from engine.store.backends.sqlite import SqliteStore
        return SqliteStore(building_of, cache)
    if backend == "psycopg":
        from engine.store.backends.postgres import PostgresStore
        return PostgresStore(building_of, cache)
    from engine.store.backends.core import CoreStore
    return CoreStore(building_of, cache)
