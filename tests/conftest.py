"""Shared fixtures: a settable clock, a fresh database per test, the engine and a CLI runner."""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from engine.clock import FakeClock
from engine.runtime.config import Settings, build_engine
from tests.pg import pg_blank_url, pg_databases, pg_url  # noqa: F401  (PostgreSQL server and a database per test)

ROOT = Path(__file__).resolve().parents[1]
# Every instance-cache hit in the suite (and in the processes it starts) is checked
# against a full load of the row, value and type (engine.store.instance_cache).
os.environ.setdefault("SOP_CHECK_INSTANCE_CACHE", "1")
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2025, 9, 30, 9, 0, tzinfo=SHANGHAI))


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sop.db'}"


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(db_url, ROOT / "procedures", ROOT / "org" / "demo.yaml")


@pytest.fixture
def engine(settings: Settings, clock: FakeClock):  # type: ignore[no-untyped-def]
    return build_engine(settings, clock)


@pytest.fixture
def runner(db_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SOP_DB", db_url)
    monkeypatch.delenv("SOP_PROCEDURES", raising=False)
    monkeypatch.delenv("SOP_ORG", raising=False)
    return CliRunner()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    """Keep each phase's report on the test item (``item.rep_call``): the browser tests save a
    screenshot when their test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
