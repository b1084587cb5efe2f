"""Transactions begun and committed on the driver (``db.Connections``), with the driver
backends' statements (engine/store/backends/) and SQLAlchemy's mixed in them, on SQLite
(sqlite3) and on PostgreSQL (psycopg): a rollback undoes both kinds, a commit keeps both,
and a locked database is reported as SQLAlchemy reports it. (That the driver backends store
what Core stores, and that a command runs no statement through Core on them, is
tests/test_store_port.py's.)
"""
from __future__ import annotations

import sqlite3
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from engine.clock import FakeClock
from engine.runtime.config import Settings, build_engine
from tests.conftest import ROOT, SHANGHAI
from tests.pg import fresh_urls, stored_rows

COMPLAINT = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
             "content": "楼上漏水", "anonymous": False}
FINDINGS = {"findings": "现场查看属实", "cause": "设施老化", "responsibility": "property_company"}
REPLY = {"reply_method": "phone", "reply_summary": "已安排工程部上门维修"}
TABLES = ("instances", "events", "timers", "outbox", "procedure_versions")
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def new_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """A fresh database of the backend under test, one per name asked for."""
    return fresh_urls(request, tmp_path, request.param)


def _engine(url: str):  # type: ignore[no-untyped-def]
    clock = FakeClock(datetime(2025, 9, 30, 9, 0, tzinfo=SHANGHAI))
    return build_engine(Settings(url, ROOT / "procedures", ROOT / "org" / "demo.yaml"), clock)


def _statements(store: Any, conn: sa.Connection, through_sqlalchemy: bool) -> None:
    """A driver backend's statement, and (if asked) first one through SQLAlchemy, which then
    joins the transaction begun on the driver."""
    if through_sqlalchemy:
        conn.execute(sa.text("UPDATE procedure_versions SET snapshot = 'changed'"))
    store.enqueue(conn, 1, 1, ["x"], "m", None, datetime.now(SHANGHAI))


@pytest.mark.parametrize("through_sqlalchemy", [True, False], ids=["mixed", "driver_only"])
@pytest.mark.parametrize("how", ["raise", "rollback"])
def test_a_transaction_on_the_driver_rolls_back_everything_in_it(new_url: Callable[[str], str], how: str,
                                                                 through_sqlalchemy: bool) -> None:
    url = new_url("t")
    engine = _engine(url)
    engine.start("complaint", "liu_fang", COMPLAINT)
    before = stored_rows(url, TABLES)
    with pytest.raises(RuntimeError) if how == "raise" else nullcontext():
        with engine.transaction() as conn:
            _statements(engine.store, conn, through_sqlalchemy)
            if how == "raise":
                raise RuntimeError("the command fails half-way")
            conn.rollback()  # the caller's own rollback is obeyed, not committed over
    engine.close()
    assert stored_rows(url, TABLES) == before


def test_a_transaction_on_the_driver_commits_both_kinds_of_statement(new_url: Callable[[str], str]) -> None:
    url = new_url("t")
    engine = _engine(url)
    engine.start("complaint", "liu_fang", COMPLAINT)
    with engine.transaction() as conn:
        _statements(engine.store, conn, through_sqlalchemy=True)
    engine.close()
    after = stored_rows(url, TABLES)
    assert [r[2] for r in after["procedure_versions"]] == ["changed"] and len(after["outbox"]) == 1


def test_a_locked_database_is_reported_as_sqlalchemy_reports_it(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE on the driver fails as a statement through SQLAlchemy would:
    ``sqlalchemy.exc.OperationalError``, not the driver's own exception."""
    engine = _engine(f"sqlite:///{tmp_path / 't.db'}")
    engine.start("complaint", "liu_fang", COMPLAINT)
    with engine.transaction() as conn:
        conn.exec_driver_sql("PRAGMA busy_timeout=0")  # the kept connection gives up at once
    holder = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sa.exc.OperationalError, match="locked"):
            with engine.connections.write():
                pass
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        engine.close()
