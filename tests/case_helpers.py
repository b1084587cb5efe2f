"""Helpers for the procedure-library scenario tests (repair, dunning, fee cycle, imports,
notices): Shanghai times, what an instance was told, when its timers fired, and an
``engine`` fixture (a fresh database per test; ``Settings.load`` memoises the parsed
library itself while its files are unchanged).
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterator

import pytest

from engine.clock import FakeClock
from engine.runtime.config import Settings, build_engine
from tests.conftest import SHANGHAI


def t(text: str) -> datetime:
    """A time in Shanghai: ``t("2025-09-30T17:55")``."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def local(iso: str) -> str:
    """An ISO time (any offset) as Shanghai wall-clock text without seconds: 2025-10-11T10:00."""
    return datetime.fromisoformat(iso).astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def events(engine: Any, iid: int, type_: str) -> list[dict[str, Any]]:
    out = []
    for e in engine.history(iid):
        if e.type == type_:
            d = json.loads(e.data_json)
            d["_at"] = e.occurred_at.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")
            d["_actor"] = e.actor
            out.append(d)
    return out


def notifications(engine: Any, iid: int, containing: str = "") -> list[dict[str, Any]]:
    """Notifications queued by an instance (``_at`` is when, in Shanghai)."""
    return [n for n in events(engine, iid, "NotificationQueued") if containing in n["message"]]


def timer_fires(engine: Any, iid: int, name: str) -> list[str]:
    """The scheduled times (Shanghai) at which timer ``name`` fired."""
    return [local(d["due"]) for d in events(engine, iid, "TimerFired") if d["name"] == name]


def deadline(engine: Any, iid: int, name: str) -> dict[str, Any]:
    return next(d for d in engine.deadlines(iid) if d["name"] == name)


@pytest.fixture
def clock() -> FakeClock:
    """The settable clock starts before every scenario; ``tick`` moves it forward.

    Commands carry their own ``at``; a clock already past them would let the engine's
    catch-up coalesce recurring timers up to the clock instead of up to the command.
    """
    return FakeClock(datetime(2025, 1, 1, 9, 0, tzinfo=SHANGHAI))


@pytest.fixture
def engine(settings: Settings, clock: Any) -> Iterator[Any]:
    yield build_engine(settings, clock)


@pytest.fixture
def runner(runner: Any, engine: Any) -> Any:
    """The CLI runner on the same database as ``engine`` (and the memoised library)."""
    return runner
