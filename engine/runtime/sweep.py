"""The timer sweep: fire every due clock step exactly once, each in its own transaction.

A pass asks the timers table for the earliest due rows (an index walk: the cost follows
what is due, not what is pending), then for each row claims it with a compare-and-set and
fires it in the same transaction. Two sweepers racing on one row: one claim wins, the
other sees rowcount 0 and moves on. A crash between claim and commit rolls the claim back,
so the step stays due and fires once, late; its lateness is recorded in the event
(``late_by_s``). One failing instance is logged and skipped; it never stops the pass.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from engine.errors import EngineError
from engine.store import timers as timer_store

log = logging.getLogger("sop.sweep")

BATCH = 200
# Fault injection for the crash test: exit the process after claiming, before commit.
CRASH_AFTER_CLAIM_ENV = "SOP_FAULT_CRASH_AFTER_CLAIM"


@dataclass(frozen=True)
class Fired:
    instance_id: int
    name: str
    due: datetime
    kind: Optional[str]
    state: Optional[str]


def sweep(engine: Any, until: datetime, limit: Optional[int] = None) -> list[Fired]:
    """Fire everything due at or before ``until``; return what fired, in order."""
    fired: list[Fired] = []
    failed: set[tuple[int, str]] = set()
    while limit is None or len(fired) < limit:
        with engine.read() as conn:
            rows = [r for r in timer_store.due(conn, until, BATCH) if (r.instance_id, r.name) not in failed]
        if not rows:
            break
        for row in rows:
            result = _fire_one(engine, row)
            if result is None:
                failed.add((row.instance_id, row.name))
            elif result is not False:
                fired.append(result)
            if limit is not None and len(fired) >= limit:
                break
    return fired


def _fire_one(engine: Any, row: Any) -> Fired | bool | None:
    """Fired on success, False if another sweeper had it, None on failure."""
    try:
        with engine.transaction() as conn:
            if not timer_store.claim(conn, row.instance_id, row.name, row.next_fire_at):
                return False
            if os.environ.get(CRASH_AFTER_CLAIM_ENV):
                os._exit(17)
            inst = engine.fire_in(conn, row.instance_id, row.name)
    except EngineError as err:
        log.error("timer %s of instance %s not fired: %s", row.name, row.instance_id, err)
        return None
    clock = inst.clocks.get(row.name, {}) if inst else {}
    return Fired(row.instance_id, row.name, row.next_fire_at, clock.get("status"), inst.state if inst else None)
