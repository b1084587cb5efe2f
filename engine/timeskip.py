"""Time skipping: move a settable clock forward and fire what came due, as the sweep would.

Modelled on Temporal's time-skipping test environment: instead of waiting for a deadline,
a test or the demo says "it is now T" and everything due by T fires through the engine's
own sweep (``Engine.tick``: SLA warnings and breaches, timers, scheduled reports) exactly
as ``sop worker`` would fire it on the real clock. The engine must run on a ``FakeClock``.

- ``skip_to(engine, t)`` / ``skip(engine, hours=2)``: set the clock, sweep, return what fired;
- ``skip_days(engine, first, last)``: a sweep a day at ``first``'s time, for scenarios that
  count daily firings (a recurring timer that missed several occurrences fires once, for
  the latest: the engine's catch-up rule);
- ``TimeSkipper``: for a long run (``sop demo``) that moves the clock often and sweeps
  only when the earliest pending step has come (``Engine.next_due``).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Optional

from engine.clock import FakeClock


def settable(engine: Any) -> FakeClock:
    """The engine's clock, which must be a ``FakeClock`` (time skipping on the real clock is a bug)."""
    clock = engine.clock
    if not isinstance(clock, FakeClock):
        raise TypeError(f"time skipping needs an engine on a FakeClock, not {type(clock).__name__}")
    return clock


def skip_to(engine: Any, until: datetime) -> list[Any]:
    """``sop tick --until``: the clock reads ``until`` and every step due by then fires."""
    settable(engine).set(until)
    return engine.tick(until)


def skip(engine: Any, **delta: float) -> list[Any]:
    """Skip ``timedelta(**delta)`` ahead of the clock, firing what comes due."""
    return skip_to(engine, engine.clock.now() + timedelta(**delta))


def skip_days(engine: Any, first: datetime, last: datetime) -> list[Any]:
    """A sweep at ``first``, then at the same wall-clock time each following day up to ``last``."""
    fired: list[Any] = []
    when = first
    while when <= last:
        fired += skip_to(engine, when)
        when += timedelta(days=1)  # aware arithmetic keeps the wall-clock time across DST
    return fired


class TimeSkipper:
    """A clock that is moved often and swept only when something pending has come due.

    ``move_to`` only sets the clock (someone acts at that time); ``sweep_to`` sets it and
    fires what is due, skipping the sweep when the earliest pending step is later — which
    changes nothing but the time a long run takes. After acting, call ``changed()``: a
    command may arm new steps.
    """

    def __init__(self, engine: Any) -> None:
        self.engine, self.clock = engine, settable(engine)
        self.due: Optional[datetime] = engine.next_due()

    def move_to(self, when: datetime) -> None:
        self.clock.set(when)

    def changed(self) -> None:
        self.due = self.engine.next_due()

    def sweep_to(self, until: datetime) -> list[Any]:
        self.clock.set(until)
        if self.due is None or self.due > until:
            return []
        fired = self.engine.tick(until)
        self.changed()
        return fired
