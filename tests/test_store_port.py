"""The storage port's contract (engine/store/port.py): one test class, subclassed per backend.

As eventsourcing's ``AggregateRecorderTestCase`` is subclassed per recorder, ``StorePortContract``
states each rule once and every backend inherits it: the driver backends (``SqliteStore`` on
SQLite, ``PostgresStore`` on the suite's own PostgreSQL, tests/pg.py) and the general
``CoreStore`` on both databases. The runtime's own transaction wraps every call
(``Engine.transaction``: the ledger row is sealed there), so what a backend stores passes
``sop audit verify``; and the same commands leave, byte for byte, the rows Core leaves.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from engine.clock import FakeClock
from engine.core.model import Event, Instance
from engine.errors import ConcurrencyConflict, InstanceNotFound
from engine.runtime import auditing
from engine.runtime.batch import ActItem
from engine.runtime.config import Settings, build_engine
from engine.spec.forms import instance_building
from engine.store import db
from engine.store.backends.core import CoreStore
from engine.store.backends.postgres import PostgresStore
from engine.store.backends.sqlite import SqliteStore
from engine.store.port import DueStep, EventStore, backend_for, store_for
from tests.conftest import ROOT, SHANGHAI
from tests.pg import fresh_urls, stored_rows

COMPLAINT = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
             "content": "楼上漏水", "anonymous": False}


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def _note(before: Instance, at: datetime, **changes: Any) -> tuple[list[Event], Instance]:
    """A DataRecorded event and the instance it leaves (the store does not fold; it stores)."""
    event = Event("DataRecorded", "chen_jing", "steward", at, {"changes": changes})
    return [event], before.with_(data={**before.data, **changes}, last_occurred_at=at)


FINDINGS = {"findings": "现场查看属实", "cause": "设施老化", "responsibility": "property_company"}
REPLY = {"reply_method": "phone", "reply_summary": "已安排工程部上门维修"}
TABLES = ("instances", "events", "timers", "outbox", "ledger", "ledger_head", "procedure_versions")


def core_only(engine: Any) -> None:
    """Put an engine on the general backend (Core) for every statement."""
    engine.connections.close()
    engine.db = engine.db.execution_options(**{db.CORE_ONLY: True})
    engine.connections = db.Connections(engine.db)
    engine.store = store_for(engine.db, instance_building, engine.instances)


def scripted_day(url: str, on_core: bool) -> dict[str, list[tuple[Any, ...]]]:
    """Every command kind a store serves, on a FakeClock: starts (one keyed, one bulk of
    three), actions that change the data, clocks and assignee, a batch of actions
    (``act_many``), the sweep firing warnings and breaches in its batches; then every table
    as the database keeps it."""
    clock = FakeClock(datetime(2025, 9, 30, 9, 0, tzinfo=SHANGHAI))
    engine = build_engine(Settings(url, ROOT / "procedures", ROOT / "org" / "demo.yaml"), clock)
    if on_core:
        core_only(engine)
    ids = []
    for i in range(3):
        clock.advance(timedelta(minutes=7))
        key = "call-1" if i == 1 else None
        ids.append(engine.start("complaint", "liu_fang", {**COMPLAINT, "unit": f"{i + 1}-1201"},
                                external_key=key).id)
    assert engine.start("complaint", "liu_fang", COMPLAINT, external_key="call-1").id == ids[1]
    engine.start_many("complaint", "liu_fang", [{**COMPLAINT, "unit": f"{i}-0801"} for i in range(4, 7)])
    first = ids[0]
    steward = engine.show(first).assignee
    for action, data in (("investigate", {}), ("record_findings", FINDINGS)):
        clock.advance(timedelta(hours=1))
        engine.advance(first, action, steward, data)
    clock.advance(timedelta(minutes=30))  # a batch: two instances, several commands each
    batch = [ActItem(ids[1], "record", data={"priority": "high"}, staff="li_qiang"),
             ActItem(ids[2], action="investigate", staff=engine.show(ids[2]).assignee or "chen_jing"),
             ActItem(ids[1], action="investigate", staff=engine.show(ids[1]).assignee or "chen_jing")]
    engine.act_many(batch, "chen_jing")
    clock.advance(timedelta(days=2))  # the other complaints' reply clocks warn and breach
    assert engine.tick(clock.now())
    clock.advance(timedelta(minutes=5))
    engine.advance(first, "reply", steward, REPLY)
    assert engine.replay(first).ok and auditing.run(engine).broken is None
    engine.close()
    return stored_rows(url, TABLES)


class StorePortContract:
    """Every backend keeps these rules; a subclass names its database and backend."""

    database = "sqlite"
    core_only = False
    backend = "sqlite3"
    kind: type = SqliteStore

    @pytest.fixture
    def db_url(self, request: pytest.FixtureRequest, tmp_path: Path) -> str:  # overrides conftest's
        if self.database == "sqlite":
            return f"sqlite:///{tmp_path / 'sop.db'}"
        return str(request.getfixturevalue("pg_url"))

    @pytest.fixture
    def store(self, engine: Any) -> EventStore:
        """The backend under test, serving the engine's own commands too."""
        if self.core_only:
            core_only(engine)
        return engine.store

    @pytest.fixture
    def new_url(self, request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
        """A fresh database of this class's kind, one per name asked for."""
        return fresh_urls(request, tmp_path, self.database)

    def _started(self, engine: Any, unit: str = "3-1201") -> Instance:
        return engine.start("complaint", "liu_fang", {**COMPLAINT, "unit": unit}, at=t("2025-09-30T17:55"))

    def test_the_backend_is_chosen_by_the_database_url(self, engine: Any, store: EventStore) -> None:
        assert (store.backend, backend_for(engine.db), type(store)) == (self.backend, self.backend, self.kind)

    def test_the_backend_runs_every_hot_statement_itself(self) -> None:
        """A driver backend writes its own SQL for the port and every hot-path method; only
        what is off the measured paths is inherited from Core."""
        hot = ("load_for_write", "append", "events_of", "due_steps", "claim_step", "load", "children_of",
               "child_procedures", "new_instance_id", "enqueue", "seal", "decoded_events", "iter_chains",
               "insert_many", "load_many_for_write", "children_of_many", "append_many", "sync_timers_many",
               "insert_outbox")
        assert [name for name in hot if name not in vars(self.kind)] == []

    def test_a_command_runs_no_statement_through_core_only_in_the_driver_backends(
            self, engine: Any, store: EventStore) -> None:
        c = self._started(engine)
        through_core: list[str] = []
        event.listen(engine.db, "before_cursor_execute", lambda _c, _cur, sql, *a: through_core.append(sql))
        engine.advance(c.id, "investigate", "chen_jing", at=t("2025-09-30T18:00"))
        engine.record(c.id, "chen_jing", {"priority": "high"}, at=t("2025-09-30T18:05"))
        assert bool(through_core) is (self.kind is CoreStore)

    def test_the_same_commands_leave_byte_for_byte_the_rows_core_leaves(self, new_url: Callable[[str], str]) -> None:
        """Driver backend against Core on the same kind of database: instances, events (hashes
        included), timers, outbox, ledger and its head, procedure snapshots."""
        here = scripted_day(new_url("here"), on_core=self.core_only)
        core = scripted_day(new_url("core"), on_core=True)
        assert len(here["events"]) > 20 and len(here["ledger"]) > 5 and here["timers"] and here["outbox"]
        for table in TABLES:
            assert here[table] == core[table], table

    def test_loading_a_missing_instance_for_write_is_instance_not_found(self, engine: Any, store: EventStore) -> None:
        with pytest.raises(InstanceNotFound):
            with engine.transaction() as conn:
                store.load_for_write(conn, 404)

    def test_append_chains_each_event_on_the_one_before_and_events_of_reads_them_back(
            self, engine: Any, store: EventStore) -> None:
        c = self._started(engine)
        with engine.transaction() as conn:
            before = store.load_for_write(conn, c.id)
            first, mid = _note(before, t("2025-10-01T09:00"), priority="high")
            second, after = _note(mid, t("2025-10-01T09:00"), level="director")
            stored = store.append(conn, before, first + second, after, t("2025-10-01T09:00:01"))
        assert [s.seq for s in stored] == [before.revision + 1, before.revision + 2]
        assert (stored[0].prev_hash, stored[1].prev_hash) == (before.last_hash, stored[0].hash)
        with engine.read() as conn:
            log = store.events_of(conn, c.id)
        assert log[-2:] == stored and [s.seq for s in log] == list(range(1, before.revision + 3))
        shown = engine.show(c.id)
        assert (shown.revision, shown.last_hash, shown.data["level"]) == (stored[-1].seq, stored[-1].hash, "director")
        report = auditing.run(engine)
        assert (report.broken, report.findings) == (None, [])

    def test_append_on_a_stale_revision_conflicts_and_writes_nothing(self, engine: Any, store: EventStore) -> None:
        c = self._started(engine)
        with engine.read() as conn:
            before = store.events_of(conn, c.id)
        engine.record(c.id, "chen_jing", {"priority": "high"}, at=t("2025-10-01T09:00"))
        stale = c.with_(children=())
        events, after = _note(stale, t("2025-10-01T09:05"), level="director")
        with pytest.raises(ConcurrencyConflict):
            with engine.transaction() as conn:
                store.append(conn, stale, events, after, t("2025-10-01T09:05"))
        with engine.read() as conn:
            assert len(store.events_of(conn, c.id)) == len(before) + 1
        assert engine.show(c.id).data["level"] == "steward"

    def test_the_stored_building_follows_the_rule_the_runtime_hands_in(self, engine: Any, store: EventStore) -> None:
        c = self._started(engine, unit="3-1201")
        odd = type(store)(lambda data: f"B{data.get('unit', '')[:1]}", engine.instances)
        with engine.transaction() as conn:
            before = odd.load_for_write(conn, c.id)
            events, after = _note(before, t("2025-10-01T09:00"), unit="7-0101")
            odd.append(conn, before, events, after, t("2025-10-01T09:00"))
        with engine.read() as conn:
            building = conn.execute(sa.text("SELECT building FROM instances WHERE id = :i"), {"i": c.id}).scalar()
        assert building == "B7"

    def test_due_steps_come_earliest_first_and_each_is_claimed_once(self, engine: Any, store: EventStore,
                                                                    clock: Any) -> None:
        for unit in ("1-0101", "2-0101", "3-0101"):
            self._started(engine, unit=unit)
        until = t("2025-10-30T00:00")
        with engine.read() as conn:
            due = store.due_steps(conn, until, 100)
        assert due and due == sorted(due, key=lambda s: s.next_fire_at)
        assert all(isinstance(s, DueStep) and s.next_fire_at <= until for s in due)
        with engine.read() as conn:
            assert store.due_steps(conn, until, 2) == due[:2]
            skip = {(due[0].instance_id, due[0].name)}
            assert store.due_steps(conn, until, 2, skip) == due[1:3]
        with engine.transaction() as conn:
            assert store.claim_step(conn, due[0]) is True
            assert store.claim_step(conn, due[0]) is False
        with engine.read() as conn:
            assert due[0] not in store.due_steps(conn, until, 100)

    def test_commands_through_the_backend_keep_the_chain_and_the_ledger(self, engine: Any, store: EventStore,
                                                                      clock: Any) -> None:
        c = self._started(engine)
        engine.advance(c.id, "investigate", "chen_jing", at=t("2025-09-30T18:00"))
        clock.set(t("2025-10-30T00:00"))
        assert engine.tick(t("2025-10-30T00:00"))
        report = auditing.run(engine)
        assert (report.broken, report.findings) == (None, []) and report.ledger_rows >= 3


class TestSqliteStore(StorePortContract):
    database, core_only, backend, kind = "sqlite", False, "sqlite3", SqliteStore


class TestCoreStoreOnSqlite(StorePortContract):
    database, core_only, backend, kind = "sqlite", True, "sqlalchemy", CoreStore


class TestPostgresStore(StorePortContract):
    database, core_only, backend, kind = "postgresql", False, "psycopg", PostgresStore


class TestCoreStoreOnPostgresql(StorePortContract):
    database, core_only, backend, kind = "postgresql", True, "sqlalchemy", CoreStore


def test_an_engine_whose_statements_are_watched_gets_the_core_backend() -> None:
    """Echo or a cursor listener sees every statement only if they go through Core."""
    watched = db.open_engine("sqlite://")
    event.listen(watched, "before_cursor_execute", lambda *a: None)
    assert backend_for(watched) == "sqlalchemy" and backend_for(db.open_engine("sqlite://")) == "sqlite3"


def test_no_private_sqlalchemy_attribute_is_set_on_an_engine() -> None:
    engine = db.open_engine("sqlite://")
    assert "_connection_cls" not in vars(engine)
    assert not hasattr(db, "_DirectConnection")

