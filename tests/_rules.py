"""Shared by the rule scenario tests (test_rules_*.py, test_import_calls.py).

Loading the procedure library costs over a second and every ``build_engine`` pays it
again; these tests need a fresh database per test but not a fresh library. The autouse
fixture below memoises ``Settings.load`` per (procedures dir, org file) for the session.
"""
from __future__ import annotations

import json
from typing import Any

import pytest

from engine.runtime.config import Settings

_LOADED: dict[tuple[str, str], Any] = {}
_REAL_LOAD = Settings.load


@pytest.fixture(autouse=True)
def load_library_once(monkeypatch: pytest.MonkeyPatch) -> None:
    def load(self: Settings) -> Any:
        key = (str(self.procedures.resolve()), str(self.org.resolve()))
        if key not in _LOADED:
            _LOADED[key] = _REAL_LOAD(self)
        return _LOADED[key]

    monkeypatch.setattr(Settings, "load", load)


def notices(engine: Any, iid: int) -> list[dict[str, Any]]:
    """The notifications an instance queued, oldest first."""
    return [json.loads(e.data_json) for e in engine.history(iid) if e.type == "NotificationQueued"]


def clock_of(engine: Any, iid: int, name: str) -> dict[str, Any]:
    """One SLA clock or timer of an instance, as `sop show` lists it."""
    return next(d for d in engine.deadlines(iid) if d["name"] == name)
