"""The floor of a workload (bench/sqlite_floor.py, bench/pg_floor.py) replays exactly what
the engine stored: a floor measured on other rows than the engine's would bound nothing."""
from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bench import sqlite_floor
from bench.common import T0, build_prefill, copy_db, open_engine
from engine.clock import FakeClock
from tests.pg import fresh_urls, stored_rows

TABLES = ("instances", "events", "timers", "outbox", "ledger", "ledger_head", "procedure_versions")


def _dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    return stored_rows(f"sqlite:///{db}", TABLES)


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Any], int, int]:
    """A small backlog of complaint reply clocks swept once while recording: (the starting
    database, the swept one, the log, where the sweep's statements begin, steps fired)."""
    tmp = tmp_path_factory.mktemp("floor")
    base = tmp / "base.db"
    _, after = build_prefill(base, 12)
    until = after + timedelta(days=1)
    copy_db(base, tmp / "swept.db")
    log: list[Any] = []
    with sqlite_floor.record(log):
        eng = open_engine(tmp / "swept.db", FakeClock(until))
        opened = len(log)
        fired = 0
        while batch := eng.tick(until, limit=5):
            fired += len(batch)
        eng.close()
    return base, tmp / "swept.db", log, opened, fired


def test_replaying_the_recorded_statements_leaves_the_very_rows_the_engine_left(swept: Any, tmp_path: Path) -> None:
    base, done, log, opened, fired = swept
    assert fired > 12  # every complaint's warning, and breaches
    copy_db(base, tmp_path / "replayed.db")
    assert sqlite_floor.replay(tmp_path / "replayed.db", log, opened) > 0
    assert _dump(tmp_path / "replayed.db") == _dump(done)


def test_the_hash_floor_encodes_every_event_the_sweep_inserted(swept: Any) -> None:
    base, done, log, opened, fired = swept
    rows = sqlite_floor.event_rows(log[opened:])
    conn = sqlite3.connect(base)
    before = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    conn.close()
    assert len(rows) == len(_dump(done)["events"]) - before
    assert {r["seq"] for r in rows} and all(r["hash"] and r["data"].startswith("{") for r in rows)
    assert sqlite_floor.hash_floor(rows) > 0


def test_recording_ends_with_the_block(swept: Any) -> None:
    conn = sqlite3.connect(":memory:")
    assert type(conn) is sqlite3.Connection
    conn.close()


def test_the_postgresql_floor_replays_the_very_rows_the_engine_left(request: pytest.FixtureRequest,
                                                                    tmp_path: Path) -> None:
    """bench/pg_floor.py: the engine's statements sent again by a bare psycopg client leave
    the rows the engine left (both databases fresh from the same migrated template)."""
    from bench import pg_floor
    from bench.common import FINDINGS, complaint, worker_for
    from engine.runtime.config import Settings, build_engine

    new = fresh_urls(request, tmp_path, "postgresql")
    recorded, replayed = new("recorded"), new("replayed")
    root = Path(__file__).resolve().parents[1]
    clock = FakeClock(T0)
    log: list[Any] = []
    with pg_floor.record(log):
        eng = build_engine(Settings(recorded, root / "procedures", root / "org" / "demo.yaml"), clock)
        opened = len(log)
        for i in range(3):
            data = complaint(i)
            iid = eng.start("complaint", "liu_fang", data).id
            clock.advance(timedelta(seconds=5))
            eng.advance(iid, "investigate", worker_for(data))
            eng.advance(iid, "record_findings", worker_for(data), FINDINGS)
            clock.advance(timedelta(seconds=5))
        eng.close()
    assert any(kind == "raw" for kind, _, _ in log[opened:]) and any(k == "commit" for k, _, _ in log[opened:])
    plain = replayed.replace("postgresql+psycopg://", "postgresql://")
    assert pg_floor.replay_seconds(plain, log, opened) > 0

    kept = ("instances", "events", "timers", "outbox", "ledger", "procedure_versions")
    assert stored_rows(replayed, kept) == stored_rows(recorded, kept)
