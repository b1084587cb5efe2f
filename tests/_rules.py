"""Helpers shared by the rule scenario tests (test_rules_*.py, test_import_calls.py)."""
from __future__ import annotations

import json
from typing import Any


def notices(engine: Any, iid: int) -> list[dict[str, Any]]:
    """The notifications an instance queued, oldest first."""
    return [json.loads(e.data_json) for e in engine.history(iid) if e.type == "NotificationQueued"]


def clock_of(engine: Any, iid: int, name: str) -> dict[str, Any]:
    """One SLA clock or timer of an instance, as `sop show` lists it."""
    return next(d for d in engine.deadlines(iid) if d["name"] == name)
