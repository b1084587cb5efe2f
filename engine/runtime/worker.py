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
from typing import Any, Callable

from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger("sop.worker")


def start_background(engine: Any, interval: float = 1.0) -> BackgroundScheduler:
    """Start sweeping in a background thread (``sop serve`` uses this); call .shutdown() to stop."""
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(lambda: _sweep_once(engine), "interval", seconds=interval, max_instances=1,
                      coalesce=True, misfire_grace_time=None, id="sop-sweep")
    scheduler.start()
    return scheduler


def _sweep_once(engine: Any) -> None:
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
    _sweep_once(engine)  # catch up at once after downtime
    scheduler = start_background(engine, interval)
    say(f"worker: sweeping every {interval:g}s; stop with SIGTERM or Ctrl-C")
    stop.wait()
    scheduler.shutdown(wait=True)
    say("worker: stopped cleanly")
