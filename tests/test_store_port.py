"""The storage port's contract (engine/store/port.py): one test class, subclassed per backend.

As eventsourcing's ``AggregateRecorderTestCase`` is subclassed per recorder, ``StorePortContract``
states each rule once and every backend inherits it: the driver backends (``sqlite3`` on
SQLite, ``psycopg`` on the suite's own PostgreSQL, tests/pg.py) and the general SQLAlchemy
one on both databases. The runtime's own transaction wraps every call (``Engine.transaction``:
the ledger row is sealed there), so what a backend stores passes ``sop audit verify``.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.core.model import Event, Instance
from engine.errors import ConcurrencyConflict, InstanceNotFound
from engine.runtime import auditing
from engine.spec.forms import instance_building
from engine.store import db, prepared
from engine.store.port import DueStep, EventStore, SqlStore, backend_for, store_for
from tests.conftest import SHANGHAI

COMPLAINT = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
             "content": "楼上漏水", "anonymous": False}


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def _note(before: Instance, at: datetime, **changes: Any) -> tuple[list[Event], Instance]:
    """A DataRecorded event and the instance it leaves (the store does not fold; it stores)."""
    event = Event("DataRecorded", "chen_jing", "steward", at, {"changes": changes})
    return [event], before.with_(data={**before.data, **changes}, last_occurred_at=at)


class StorePortContract:
    """Every backend keeps these rules; a subclass names its database and backend."""

    database = "sqlite"
    core_only = False
    backend = "sqlite3"

    @pytest.fixture
    def db_url(self, request: pytest.FixtureRequest, tmp_path: Path) -> str:  # overrides conftest's
        if self.database == "sqlite":
            return f"sqlite:///{tmp_path / 'sop.db'}"
        return str(request.getfixturevalue("pg_url"))

    @pytest.fixture
    def store(self, engine: Any) -> EventStore:
        """The backend under test, serving the engine's own commands too."""
        if self.core_only:
            engine.connections.close()
            engine.db = engine.db.execution_options(**{db.CORE_ONLY: True})
            engine.connections = db.Connections(engine.db)
            engine.store = store_for(engine.db, instance_building, engine.instances)
        return engine.store

    def _started(self, engine: Any, unit: str = "3-1201") -> Instance:
        return engine.start("complaint", "liu_fang", {**COMPLAINT, "unit": unit}, at=t("2025-09-30T17:55"))

    def test_the_backend_is_chosen_by_the_database_url(self, engine: Any, store: EventStore) -> None:
        assert (store.backend, backend_for(engine.db)) == (self.backend, self.backend)

    def test_statements_run_on_the_driver_only_in_the_driver_backends(self, engine: Any, store: EventStore,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
        c = self._started(engine)
        on_driver: list[str] = []
        for name in ("run", "run_after_insert", "run_many"):
            real = getattr(prepared._Plan, name)
            monkeypatch.setattr(prepared._Plan, name,
                                lambda self, *a, _real=real, _name=name, **k: on_driver.append(_name) or _real(self, *a, **k))
        engine.advance(c.id, "investigate", "chen_jing", at=t("2025-09-30T18:00"))
        assert bool(on_driver) is (self.backend != "sqlalchemy")

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
        odd = SqlStore(store.backend, lambda data: f"B{data.get('unit', '')[:1]}", engine.instances)
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


class TestSqlite3Backend(StorePortContract):
    database, core_only, backend = "sqlite", False, "sqlite3"


class TestSqlalchemyBackendOnSqlite(StorePortContract):
    database, core_only, backend = "sqlite", True, "sqlalchemy"


class TestPsycopgBackend(StorePortContract):
    database, core_only, backend = "postgresql", False, "psycopg"


class TestSqlalchemyBackendOnPostgresql(StorePortContract):
    database, core_only, backend = "postgresql", True, "sqlalchemy"


def test_no_private_sqlalchemy_attribute_is_set_on_an_engine() -> None:
    engine = db.open_engine("sqlite://")
    assert "_connection_cls" not in vars(engine)
    assert not hasattr(db, "_DirectConnection")

