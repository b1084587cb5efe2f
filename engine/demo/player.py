"""``sop demo``: one month at 山水庭苑, simulated on a fresh embedded database.

The month is a script of dated scenes (``engine/demo/stories/``, one module per procedure). Each story is a
small generator that yields the time of its next step; the scheduler here merges the
stories in time order, sets the settable clock to each step and, in between, sweeps the
timers (``engine.tick``) every 15 minutes from 08:00 to 20:00 and every hour at night,
so every SLA warning and breach and every recurring timer fires on the real calendar:
the month runs from Monday 15 September to Wednesday 15 October 2025, across the
Mid-Autumn / National Day holiday (1-8 October off) and the make-up workdays of Sunday
28 September and Saturday 11 October.

Before the month, a short prologue plays the first half of the September fee cycle
(charges on the 1st, notices on the 5th, the first bank collection on the 10th), so the
month sees the cycle close and its unpaid units enter dunning.

Everything goes through the engine API and the adapters staff use (``sop import calls``,
``sop import payments``, ``sop notice render``), so the database holds ordinary history
that ``sop tasks``, ``sop history`` and ``sop replay`` read afterwards. Nothing reads the
real clock and nothing is random: every run writes the same database and prints the same.
"""
from __future__ import annotations

import contextlib
import heapq
import logging
from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Callable, ContextManager, Generator, Iterator, Optional
from zoneinfo import ZoneInfo

from engine.clock import FakeClock
from engine.demo.files import NOTICES_MARK, mark_demo, notices_dir_for
from engine.runtime.config import Settings, build_engine
from engine.spec.library import SHIPPED_ROOT
from engine.timeskip import TimeSkipper, skip_to

Say = Callable[[str], None]
Story = Generator[datetime, None, Any]
# A progress bar over ``length`` days whose text is ``label()``: a context manager whose value has ``update(n)``.
Progress = Callable[[int, Callable[[], str]], ContextManager[Any]]

ZONE = ZoneInfo("Asia/Shanghai")
YEAR = 2025
PROLOGUE = datetime(2025, 9, 1, 0, 0, tzinfo=ZONE)      # the September fee cycle opens
MONTH_START = datetime(2025, 9, 15, 0, 0, tzinfo=ZONE)  # Monday
MONTH_DAYS = 31                                          # … to the end of Wednesday 15 October
DATA = SHIPPED_ROOT / "demo"                             # call-detail records, bank statements


class Demo:
    """What a story sees: the engine, the settable clock, and small helpers around them."""

    def __init__(self, engine: Any, clock: FakeClock, notices_dir: Path) -> None:
        self.engine, self.clock, self.notices_dir = engine, clock, notices_dir
        self.calendar = engine.calendar
        self.ids: dict[str, int] = {}          # names stories give instances, for other stories
        self.diary: list[str] = []
        self.notices: list[Path] = []
        self.totals: Counter[str] = Counter()

    # ---------------------------------------------------------------- time
    @property
    def now(self) -> datetime:
        return self.clock.now()

    @staticmethod
    def at(text: str) -> datetime:
        """``"09-16 09:05"`` or ``"09-16 09:05:08"``: a time of 2025 in the site's zone."""
        day, hm = text.split()
        return datetime.fromisoformat(f"{YEAR}-{day}T{hm}").replace(tzinfo=ZONE)

    def later(self, **delta: float) -> datetime:
        return self.now + timedelta(**delta)

    def days(self, first: str = "09-15", last: str = "10-15", workdays: bool = False) -> Iterator[date]:
        day, end = self.at(f"{first} 00:00").date(), self.at(f"{last} 00:00").date()
        while day <= end:
            if not workdays or self.calendar.is_workday(day):
                yield day
            day += timedelta(days=1)

    @staticmethod
    def on(day: date, hm: str) -> datetime:
        return datetime.combine(day, time.fromisoformat(hm), ZONE)

    # ---------------------------------------------------------------- commands (engine API)
    def start(self, procedure: str, staff: str, data: dict[str, Any]) -> Any:
        return self.engine.start(procedure, staff, data, at=self.now)

    def act(self, iid: int, action: str, staff: str, data: Optional[dict[str, Any]] = None) -> Any:
        return self.engine.advance(iid, action, staff, data or {}, at=self.now)

    def claim(self, iid: int, staff: str) -> Any:
        return self.engine.claim(iid, staff, at=self.now)

    def show(self, iid: int) -> Any:
        return self.engine.show(iid)

    # ---------------------------------------------------------------- what the month leaves behind
    def note(self, text: str) -> None:
        """A line of the month's diary, dated by the clock."""
        self.diary.append(f"{self.now:%m-%d %H:%M}  {text}")

    def notice(self, iid: int, kind: str) -> Path:
        """Render a printed notice of a case (``sop notice render``) into the notices folder."""
        from adapters.notices import render_notice

        path = render_notice(self.engine, iid, kind, self.notices_dir, self.now)
        with open(self.notices_dir / NOTICES_MARK, "a", encoding="utf-8") as mark:
            mark.write(path.name + "\n")
        self.notices.append(path)
        return path


class Scheduler:
    """Runs the stories in time order and sweeps the timers between their steps.

    The clock moves on a 15-minute grid (hourly at night); at each grid point the timers
    are swept through the time skipper (engine/timeskip.py) — skipped when the earliest
    pending step is later (asked again after every story step, which may arm new ones),
    which changes nothing but the time the month takes to play.
    """

    def __init__(self, demo: Demo, stories: list[Callable[[Demo], Story]]) -> None:
        self.demo = demo
        self.heap: list[tuple[datetime, int, Story]] = []
        for seq, fn in enumerate(stories):
            self._resume(seq, fn(demo))
        self.swept_to = demo.now
        self.skipper = TimeSkipper(demo.engine)

    def _resume(self, seq: int, gen: Story) -> None:
        try:
            when = next(gen)
        except StopIteration:
            return
        if when < self.demo.now:
            name = gen.__name__  # type: ignore[attr-defined]  # a generator object's; typing's Generator lacks it
            raise RuntimeError(f"demo story {name} went back in time to {when} (clock {self.demo.now})")
        heapq.heappush(self.heap, (when, seq, gen))

    def run_until(self, until: datetime) -> None:
        """Play every step and sweep up to ``until`` (exclusive)."""
        t = self.swept_to
        while True:
            t = _next_sweep(t)
            if t >= until:
                break
            self._steps_before(t)
            self.skipper.sweep_to(t)
            self.swept_to = t
        self._steps_before(until)

    def _steps_before(self, t: datetime) -> None:
        stepped = False
        while self.heap and self.heap[0][0] < t:
            when, seq, gen = heapq.heappop(self.heap)
            self.skipper.move_to(when)
            self._resume(seq, gen)
            stepped = True
        if stepped:
            self.skipper.changed()

    def close(self) -> None:
        for _, _, gen in self.heap:
            gen.close()


def _day_label(demo: Demo) -> str:
    day = demo.now.date()
    return f"{day:%m-%d} {'工作日' if demo.calendar.is_workday(day) else '休息日'}"


class _NoBar:
    def update(self, n: int) -> None:
        pass


def _no_progress(_length: int, _label: Callable[[], str]) -> ContextManager[Any]:
    return contextlib.nullcontext(_NoBar())


def _next_sweep(t: datetime) -> datetime:
    """Every 15 minutes from 08:00 to 20:00, on the hour at night."""
    return t + (timedelta(minutes=15) if 8 <= t.hour < 20 else timedelta(hours=1))


class _SweepErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run(settings: Settings, say: Say, days: Optional[int] = None, progress: Optional[Progress] = None) -> Any:
    """Simulate the month (or its first ``days`` days) on ``settings.db``; see the module docstring.
    ``progress`` draws the bar over the month's days (the CLI's); none without it."""
    from engine.demo import stories
    from engine.demo.result import DemoResult

    db_path = Path(settings.db.removeprefix("sqlite:///")) if settings.db.startswith("sqlite:///") else None
    notices_dir = notices_dir_for(db_path) if db_path else Path("sop-demo-notices").resolve()
    clock = FakeClock(PROLOGUE)
    demo = Demo(build_engine(settings, clock), clock, notices_dir)
    mark_demo(demo.engine, notices_dir)
    end = MONTH_START + timedelta(days=MONTH_DAYS if days is None else days)
    site = demo.engine.org.site.name
    say(f"{site}：模拟 {MONTH_START:%Y-%m-%d} → {end - timedelta(days=1):%Y-%m-%d}"
        "（国庆中秋 10-01…10-08 放假，09-28 周日、10-11 周六调休上班），设定时钟 + 定时任务扫描")
    say("  序幕 09-01 → 09-14：9月收费周期开账、5日送达收费通知单、10日第一次银行托收")

    errors = _SweepErrors()
    sweep_log = logging.getLogger("sop.sweep")
    sweep_log.addHandler(errors)
    scheduler = Scheduler(demo, stories.STORIES)
    try:
        scheduler.run_until(MONTH_START)
        days_run = (end - MONTH_START).days
        with (progress or _no_progress)(days_run, lambda: _day_label(demo)) as bar:
            for n in range(days_run):
                scheduler.run_until(MONTH_START + timedelta(days=n + 1))
                bar.update(1)
        skip_to(demo.engine, end)
    finally:
        scheduler.close()
        sweep_log.removeHandler(errors)

    result = DemoResult(settings.db, db_path.resolve() if db_path else None, notices_dir, MONTH_START, end,
                        diary=demo.diary, notices=demo.notices, totals=dict(demo.totals),
                        sweep_errors=errors.messages, follow_up=dict(demo.ids))
    _collect(demo.engine, result)
    return result


def _collect(engine: Any, result: Any) -> None:
    """The end-of-month figures: SLA report, instances by state, audit and replay."""
    from engine.runtime.sla_report import report

    result.sla = report(engine, None, None, None)
    census = engine.census()
    result.refused = census.refused_automatic_actions
    result.states = list(census.states)
    result.instances, result.events, result.broken = engine.verify()
    for iid in census.instance_ids:
        r = engine.replay(iid)
        result.replayed += 1
        if not r.ok:
            result.replay_failures.append(f"#{iid}: {r.difference}")
