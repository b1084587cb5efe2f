"""The timer sweep: fire every due clock step exactly once, each in its own transaction.

A pass asks the timers table for the earliest due rows (an index walk: the cost follows
what is due, not what is pending) inside the transaction that fires them. Rows are handled
in batches: one transaction per batch (up to 50 rows or 10 ms of firing, whichever comes
first: a step counts as fired only when its batch commits; a backlog more than a second
overdue fills its batches), so a backlog after downtime pays one commit (one fsync) and one
ledger row per batch rather than per timer, while a failing instance rolls its batch back,
is logged, left out and the batch redone without it — it never stops the pass. Two
sweepers never hold the same row, on either backend (see ``sweep``), so several worker
processes share one backlog. A crash before the commit rolls the batch back, so each step
stays due and fires once, late; its lateness is recorded in the event (``late_by_s``).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from engine.errors import EngineError, ProcedureDisabled
from engine.runtime.batch import batch as writing
from engine.runtime.batch import writer_of

log = logging.getLogger("sop.sweep")

PER_COMMIT = 50  # due rows fired per transaction, at most
# ... and a transaction commits once it has fired for this long, whatever its size: a step
# counts as fired only when its batch commits, so a 50-row batch would make the first of
# them wait ~50 firings. 10 ms bounds that wait and still spreads each fsync over ~10 rows.
BATCH_SECONDS = 0.010
# ... except for a backlog: when the batch's earliest step is overdue by more than this, its
# steps have waited long already and every one behind them waits for the whole backlog to
# drain, so a batch fills to PER_COMMIT: a sixth of the commits, a drain about a fifth
# faster on this disk (BENCHMARKS.md, h2).
BACKLOG_AFTER_S = 1.0
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
    """Fire everything due at or before ``until``; return what fired, in order.

    Each batch is chosen inside the transaction that fires it (``store.due_steps``): on
    PostgreSQL ``FOR UPDATE SKIP LOCKED``, so several sweepers take disjoint batches; on
    SQLite under the write lock ``BEGIN IMMEDIATE`` already holds, so several sweeper
    processes take turns, each batch reading what is due when it begins. No SAVEPOINT per
    row (two statements each, a sixth of a firing on SQLite, a third on PostgreSQL): a row
    that fails rolls its whole batch back instead, and the batch is redone without it.

    A batch is fired like a batch of actions (engine/runtime/batch.py): its instances
    loaded in one statement, every step decided in memory against the instance as the
    steps before it left it, and the events, projections, timers and outbox rows written
    together by the batch writer just before the commit.
    """
    fired: list[Fired] = []
    failed: set[tuple[int, str]] = set()
    crash = bool(os.environ.get(CRASH_AFTER_CLAIM_ENV))  # read once, not once per row
    while limit is None or len(fired) < limit:
        n = PER_COMMIT if limit is None else min(PER_COMMIT, limit - len(fired))
        batch: list[Fired] = []
        try:
            with engine.transaction() as conn, writing(engine, conn) as writer:
                rows = engine.store.due_steps(conn, until, n, failed)
                if rows and crash:
                    os._exit(17)  # the crash test's: the batch taken, nothing committed
                writer.load([r.instance_id for r in rows])
                stop_at = _stop_at(rows, until)
                for row in rows:
                    if batch and time.monotonic() >= stop_at:
                        break  # the rest stay due (on PostgreSQL their locks go with this commit)
                    try:
                        one = _fire_row(engine, conn, row)
                    except EngineError as err:
                        _log_unfired(row, err)
                        failed.add((row.instance_id, row.name))
                        raise _Redo() from err
                    if one is not None:
                        batch.append(one)
                writer.flush()
        except _Redo:
            continue
        if not rows:
            break
        fired += batch
    return fired


class _Redo(Exception):
    """Roll the batch back: one of its rows failed and is left out of the next try."""


def _stop_at(rows: list[Any], until: datetime) -> float:
    """When (monotonic) a batch starting with ``rows`` should commit, full or not."""
    if rows and (until - rows[0].next_fire_at).total_seconds() > BACKLOG_AFTER_S:
        return float("inf")
    return time.monotonic() + BATCH_SECONDS


def _log_unfired(row: Any, err: EngineError) -> None:
    """A step of a disabled procedure's instance is skipped and stays due (it fires once the
    procedure's files are fixed); anything else refused is an error of that instance."""
    if isinstance(err, ProcedureDisabled):
        log.warning("timer %s of instance %s skipped, stays due: %s", row.name, row.instance_id, err)
    else:
        log.error("timer %s of instance %s not fired: %s", row.name, row.instance_id, err)


def _fire_row(engine: Any, conn: Any, row: Any) -> Optional[Fired]:
    """Fire one due row of this transaction's batch; None if its step is gone.

    The batch is this transaction's alone (locked rows on PostgreSQL, the write lock on
    SQLite), so no claim is needed before firing: the firing moves the clock on and
    its append rewrites the row, one UPDATE instead of two (on PostgreSQL a round trip
    of an action's five). Only a step that does not fire is claimed, the compare-and-set
    clearing a row the instance's clocks no longer back (else it would stay due forever)
    and leaving alone one an earlier firing of this batch already moved.
    """
    inst = engine.fire_in(conn, row.instance_id, row.name, row.next_fire_at)
    if inst is None:
        # the row as the batch's firings left it (_fire_row runs only inside a batch)
        writer_of(conn).flush()  # type: ignore[union-attr]  # never None here, see above
        return Fired(row.instance_id, row.name, row.next_fire_at, None, None) \
            if engine.store.claim_step(conn, row) else None
    clock = inst.clocks.get(row.name)
    return Fired(row.instance_id, row.name, row.next_fire_at, clock.stored("status") if clock else None, inst.state)
