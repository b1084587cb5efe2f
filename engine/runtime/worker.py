"""``sop worker``: the sweep on the real clock, woken by APScheduler 3.x.

APScheduler is only the alarm clock: an interval job that runs one sweep at a time
(``max_instances=1``, ``coalesce=True``). It is never the record of a deadline — its job
stores are not safe for several processes and its misfire grace drops timers that came
due while it was down. The timers table is the truth; a missed wake-up only delays a
sweep, which then fires everything overdue once, recording the lateness.
"""
from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from apscheduler.schedulers.background import BackgroundScheduler

from engine.runtime import calendar_status
from engine.runtime.calendar_repair import repair_all
from engine.store import timers as timer_store

log = logging.getLogger("sop.worker")


def start_background(engine: Any, interval: float = 1.0) -> BackgroundScheduler:
    """Start sweeping in a background thread (``sop serve`` uses this); call .shutdown() to stop.

    Besides the interval, each sweep sets the alarm for the earliest pending step when
    that comes before the next interval tick, so a step this process knows of fires at
    its due time rather than up to ``interval`` late (the 15-second ring limit of PHN-1).
    Steps made by other processes after the last sweep still wait at most ``interval``.
    """
    scheduler = BackgroundScheduler(timezone="UTC")
    one_at_a_time = threading.Lock()

    def sweep() -> None:
        with one_at_a_time:
            _sweep_once(engine)
            arm_next(scheduler, engine, interval, sweep)

    scheduler.add_job(sweep, "interval", seconds=interval, max_instances=1,
                      coalesce=True, misfire_grace_time=None, id="sop-sweep")
    scheduler.add_job(lambda: prune_once(engine), "interval", minutes=10, max_instances=1,
                      coalesce=True, misfire_grace_time=None, id="sop-prune")
    scheduler.start()
    arm_next(scheduler, engine, interval, sweep)
    return scheduler


def arm_next(scheduler: Any, engine: Any, interval: float, sweep: Callable[[], None]) -> None:
    """Schedule one extra sweep at the earliest pending step, if it is due within ``interval``.

    A step already due is left to the interval: it is one that just failed and stays due,
    and re-arming at once would spin on it.
    """
    try:
        with engine.read() as conn:
            due = timer_store.next_due(conn)
    except Exception:  # keep the alarm clock alive; the interval job still sweeps
        log.exception("reading the next due step failed")
        return
    if due is None:
        return
    wait = (due - engine.clock.now()).total_seconds()
    if 0 < wait < interval:
        scheduler.add_job(sweep, "date", run_date=datetime.now(timezone.utc) + timedelta(seconds=wait),
                          id="sop-sweep-due", replace_existing=True, misfire_grace_time=None)


def prune_once(engine: Any) -> int:
    """Forget API idempotency keys older than their retention (engine.store.idempotency.KEEP)."""
    from engine.store import idempotency

    try:
        with engine.transaction() as conn:
            gone = idempotency.prune(conn, engine.clock.now() - idempotency.KEEP)
    except Exception:  # keep the alarm clock alive; the next pass retries
        log.exception("pruning idempotency keys failed")
        return 0
    if gone:
        log.info("forgot %d idempotency keys older than %s", gone, idempotency.KEEP)
    return gone


def _sweep_once(engine: Any) -> None:
    try:
        calendar_status.watch(engine, engine.clock.now())
    except Exception:  # a warning that cannot be queued must not stop the sweep
        log.exception("calendar warning failed")
    try:
        fired = engine.tick(engine.clock.now())
        if fired:
            log.info("fired %d clock steps", len(fired))
    except Exception:  # keep the alarm clock alive; the next pass retries
        log.exception("sweep failed")


def run_worker(engine: Any, interval: float, say: Callable[[str], None]) -> None:
    """Sweep until SIGTERM or SIGINT; the current sweep finishes before exit."""
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    for line in engine.library.disabled_lines():  # their instances' steps stay due, unfired
        say(f"worker: {line}")
    repaired = repair_all(engine)  # a calendar edited while stopped counts before anything fires
    if repaired:
        say(f"worker: working calendar changed, {len(repaired)} open deadlines recomputed")
    _sweep_once(engine)  # catch up at once after downtime
    scheduler = start_background(engine, interval)
    say(f"worker: sweeping every {interval:g}s; stop with SIGTERM or Ctrl-C")
    stop.wait()
    scheduler.shutdown(wait=True)
    say("worker: stopped cleanly")
