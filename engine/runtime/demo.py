"""``sop demo``: one month at 山水庭苑, simulated on a fresh embedded database.

The month is a script of dated scenes (``engine/runtime/demo_scenes.py``). Each story is a
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

import heapq
import io
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Callable, Generator, Iterator, Optional
from zoneinfo import ZoneInfo

import click

from engine.clock import FakeClock
from engine.errors import InputError
from engine.runtime.config import Settings, build_engine
from engine.spec.library import SHIPPED_ROOT

Say = Callable[[str], None]
Story = Generator[datetime, None, Any]

ZONE = ZoneInfo("Asia/Shanghai")
YEAR = 2025
PROLOGUE = datetime(2025, 9, 1, 0, 0, tzinfo=ZONE)      # the September fee cycle opens
MONTH_START = datetime(2025, 9, 15, 0, 0, tzinfo=ZONE)  # Monday
MONTH_DAYS = 31                                          # … to the end of Wednesday 15 October
DATA = SHIPPED_ROOT / "demo"                             # call-detail records, bank statements


@dataclass
class DemoResult:
    db_url: str
    db_path: Optional[Path]
    notices_dir: Path
    start: datetime
    end: datetime
    instances: int = 0
    events: int = 0
    broken: Any = None
    replayed: int = 0
    replay_failures: list[str] = field(default_factory=list)
    diary: list[str] = field(default_factory=list)
    notices: list[Path] = field(default_factory=list)
    sla: list[dict[str, Any]] = field(default_factory=list)
    states: list[tuple[str, str, str, int]] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    sweep_errors: list[str] = field(default_factory=list)
    refused: int = 0
    follow_up: dict[str, int] = field(default_factory=dict)


def as_json(result: DemoResult) -> dict[str, Any]:
    """What ``sop --json demo`` prints: the month's figures, for scripts and dashboards."""
    return {
        "db": result.db_url, "start": result.start.isoformat(), "end": result.end.isoformat(),
        "instances": result.instances, "events": result.events,
        "audit": {"ok": result.broken is None, "broken": None if result.broken is None else str(result.broken)},
        "replay": {"replayed": result.replayed, "differences": list(result.replay_failures)},
        "imports": dict(result.totals), "notices": [str(p) for p in result.notices],
        "sla": list(result.sla),
        "states": [{"procedure": p, "state": s, "status": st, "count": n} for p, s, st, n in result.states],
        "sweep_errors": list(result.sweep_errors), "automatic_actions_refused": result.refused,
        "diary": list(result.diary), "follow_up": dict(result.follow_up),
    }


DEMO_MARK = "sop demo"  # sop_meta.created_by of a database the demo made
NOTICES_MARK = ".sop-demo-notices"  # in the notices folder: the files the demo rendered there


def fresh_db(path: Path) -> str:
    """Remove the previous demo database (and the notices it rendered); its URL, absolute.

    Only a database the demo itself created is removed (an SQLite file whose ``sop_meta``
    says so), and only the notices it listed as rendered; any other file at ``path`` — not
    a database, another sop database, a link, a folder — is refused with an InputError and
    left as it is, and so is a notices folder the demo did not make.
    """
    path = Path(path)
    files = [Path(str(path) + suffix) for suffix in ("", "-wal", "-shm")]
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise InputError("--db-file", f"{path} is not a regular file; not overwritten")
    if path.exists():
        if not is_demo_db(path):
            raise InputError("--db-file", f"{path} exists and is not a database sop demo created; not "
                                          "overwritten (choose another --db-file; a demo file from before "
                                          "this check must be removed by hand)")
    elif any(f.exists() or f.is_symlink() for f in files[1:]):
        raise InputError("--db-file", f"{files[1].name} or {files[2].name} exists without {path.name}; not "
                                      "touched (choose another --db-file)")
    notices = notices_dir_for(path)
    listed = _demo_notices(notices)
    for f in files:
        f.unlink(missing_ok=True)
    for name in listed or []:
        (notices / name).unlink(missing_ok=True)
    if listed is not None or (notices.is_dir() and not any(notices.iterdir())):
        (notices / NOTICES_MARK).unlink(missing_ok=True)
        try:
            notices.rmdir()
        except OSError:  # files the demo did not render: theirs, left alone
            pass
    return f"sqlite:///{path.resolve()}"


def is_demo_db(path: Path) -> bool:
    """Whether ``path`` is an SQLite database whose ``sop_meta`` says sop demo created it
    (read without writing anything: opened read-only, no journal recovery by this check)."""
    import sqlite3

    from engine.store.migrate import NotSQLite, read_sqlite

    if not path.is_file() or path.stat().st_size == 0:
        return False
    try:
        rows = read_sqlite(path, "SELECT value FROM sop_meta WHERE key = 'created_by'")
    except (OSError, NotSQLite, sqlite3.Error):
        return False
    return bool(rows) and rows[0][0] == DEMO_MARK


def _demo_notices(folder: Path) -> Optional[list[str]]:
    """The notices the demo rendered into ``folder`` (None: not a folder the demo made)."""
    mark = folder / NOTICES_MARK
    if not mark.is_file() or mark.is_symlink():
        if folder.exists() and not folder.is_dir():
            raise InputError("--db-file", f"{folder} exists and is not a folder; not touched")
        if folder.is_dir() and any(folder.iterdir()):
            raise InputError("--db-file", f"{folder} exists and was not made by sop demo; not touched "
                                          "(choose another --db-file)")
        return None
    names = [n for n in mark.read_text(encoding="utf-8").splitlines() if n and "/" not in n and n not in (".", "..")]
    return names


def mark_demo(engine: Any, notices_dir: Path) -> None:
    """Record that the demo made this database (so a later demo may recreate it) and start
    the list of notices it renders."""
    import sqlalchemy as sa

    from engine.store.tables import sop_meta

    with engine.transaction() as conn:
        if conn.execute(sa.select(sop_meta.c.value).where(sop_meta.c.key == "created_by")).first() is None:
            conn.execute(sa.insert(sop_meta).values(key="created_by", value=DEMO_MARK))
    notices_dir.mkdir(parents=True, exist_ok=True)
    (notices_dir / NOTICES_MARK).touch()


def notices_dir_for(db_file: Path) -> Path:
    """The rendered notices go next to the database: ``sop-demo.db`` → ``sop-demo-notices/``."""
    return db_file.resolve().parent / f"{db_file.stem}-notices"


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
    are swept with ``engine.tick`` — skipped when the earliest due step of the timers table
    is later (asked again after every story step, which may arm new ones), which changes
    nothing but the time the month takes to play.
    """

    def __init__(self, demo: Demo, stories: list[Callable[[Demo], Story]]) -> None:
        self.demo = demo
        self.heap: list[tuple[datetime, int, Story]] = []
        for seq, fn in enumerate(stories):
            self._resume(seq, fn(demo))
        self.swept_to = demo.now
        self.next_due = self._earliest_due()

    def _resume(self, seq: int, gen: Story) -> None:
        try:
            when = next(gen)
        except StopIteration:
            return
        if when < self.demo.now:
            raise RuntimeError(f"demo story {gen.__name__} went back in time to {when} (clock {self.demo.now})")
        heapq.heappush(self.heap, (when, seq, gen))

    def run_until(self, until: datetime) -> None:
        """Play every step and sweep up to ``until`` (exclusive)."""
        t = self.swept_to
        while True:
            t = _next_sweep(t)
            if t >= until:
                break
            self._steps_before(t)
            self.demo.clock.set(t)
            if self.next_due is not None and self.next_due <= t:
                self.demo.engine.tick(t)
                self.next_due = self._earliest_due()
            self.swept_to = t
        self._steps_before(until)

    def _steps_before(self, t: datetime) -> None:
        stepped = False
        while self.heap and self.heap[0][0] < t:
            when, seq, gen = heapq.heappop(self.heap)
            self.demo.clock.set(when)
            self._resume(seq, gen)
            stepped = True
        if stepped:
            self.next_due = self._earliest_due()

    def _earliest_due(self) -> Optional[datetime]:
        import sqlalchemy as sa

        from engine.store.tables import TimerRow

        t = TimerRow.__table__
        with self.demo.engine.read() as conn:
            return conn.execute(sa.select(sa.func.min(t.c.next_fire_at))).scalar_one()

    def close(self) -> None:
        for _, _, gen in self.heap:
            gen.close()


def _day_label(demo: Demo) -> str:
    day = demo.now.date()
    return f"{day:%m-%d} {'工作日' if demo.calendar.is_workday(day) else '休息日'}"


def _next_sweep(t: datetime) -> datetime:
    """Every 15 minutes from 08:00 to 20:00, on the hour at night."""
    return t + (timedelta(minutes=15) if 8 <= t.hour < 20 else timedelta(hours=1))


class _SweepErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run(settings: Settings, say: Say, days: Optional[int] = None, progress: bool = True,
        progress_to: Any = None) -> DemoResult:
    """Simulate the month (or its first ``days`` days) on ``settings.db``; see the module docstring.
    The progress bar goes to ``progress_to`` (default stdout), nowhere without ``progress``."""
    from engine.runtime import demo_scenes

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
    scheduler = Scheduler(demo, demo_scenes.STORIES)
    try:
        scheduler.run_until(MONTH_START)
        days_run = (end - MONTH_START).days
        with click.progressbar(length=days_run, label="  模拟一个月", show_eta=False, show_percent=True,
                               item_show_func=lambda _: _day_label(demo), width=31,
                               file=progress_to if progress else io.StringIO()) as bar:
            for n in range(days_run):
                scheduler.run_until(MONTH_START + timedelta(days=n + 1))
                bar.update(1)
        clock.set(end)
        demo.engine.tick(end)
    finally:
        scheduler.close()
        sweep_log.removeHandler(errors)

    result = DemoResult(settings.db, db_path.resolve() if db_path else None, notices_dir, MONTH_START, end,
                        diary=demo.diary, notices=demo.notices, totals=dict(demo.totals),
                        sweep_errors=errors.messages, follow_up=dict(demo.ids))
    _collect(demo.engine, result)
    return result


def _collect(engine: Any, result: DemoResult) -> None:
    """The end-of-month figures: SLA report, instances by state, audit and replay."""
    import sqlalchemy as sa

    from engine.runtime.sla_report import report
    from engine.store.tables import EventRow, InstanceRow

    result.sla = report(engine, None, None, None)
    inst, ev = InstanceRow.__table__, EventRow.__table__
    with engine.read() as conn:
        rows = conn.execute(sa.select(inst.c.procedure, inst.c.state, inst.c.status, sa.func.count())
                            .group_by(inst.c.procedure, inst.c.state, inst.c.status)
                            .order_by(inst.c.procedure, inst.c.status, inst.c.state)).all()
        ids = [r[0] for r in conn.execute(sa.select(inst.c.id).order_by(inst.c.id))]
        result.refused = conn.execute(sa.select(sa.func.count()).select_from(ev)
                                      .where(ev.c.type == "AutomaticActionRefused")).scalar_one()
    result.states = [(p, s, st, n) for p, s, st, n in rows]
    result.instances, result.events, result.broken = engine.verify()
    for iid in ids:
        r = engine.replay(iid)
        result.replayed += 1
        if not r.ok:
            result.replay_failures.append(f"#{iid}: {r.difference}")


# ---------------------------------------------------------------- what `sop demo` prints at the end

def summary(result: DemoResult, say: Say, table: Callable[[list[list[Any]], list[str]], None]) -> None:
    say("")
    say("本月经过：")
    for line in result.diary:
        say(f"  {line}")
    say("")
    t = result.totals
    say(f"来电话单（demo/calls.csv，每个工作日 18:10 导入，节假日的节后导入）：{t.get('calls', 0)} 通，"
        f"超过三声才接 {t.get('calls_late', 0)} 通，未接 {t.get('calls_missed', 0)} 通（次日上午回拨）")
    say(f"银行对账单（demo/bank/*.csv）：入账 {t.get('payments', 0)} 笔")
    if result.notices:
        say(f"打印的通知单（{result.notices_dir}）：")
        for p in result.notices:
            say(f"  {p.name}")
    say("")
    say("SLA 报告（sop sla report）：")
    table([[r["procedure"], r["sla"], r["assignee"] or "(all)", r["met"], r["breached"], r["open"],
            "-" if r["compliance"] is None else f"{r['compliance']:.1f}%"] for r in result.sla],
          ["procedure", "sla", "assignee", "met", "breached", "open", "compliance"])
    say("")
    say("流程实例（按状态）：")
    table([[p, s, st, n] for p, s, st, n in result.states], ["procedure", "state", "status", "count"])
    say("")
    if result.broken is None:
        say(f"审计（sop audit verify）：ok: {result.instances} instances, {result.events} events, every chain intact")
    else:
        say(f"审计（sop audit verify）：broken: {result.broken}")
    say(f"重放（sop replay）：{result.replayed - len(result.replay_failures)}/{result.replayed} 个实例与存储状态一致")
    for f in result.replay_failures:
        say(f"  replay differs {f}")
    for e in result.sweep_errors:
        say(f"定时任务失败：{e}")
    if result.refused:
        say(f"自动动作被拒（AutomaticActionRefused）：{result.refused}")
    say("")
    where = result.db_path or result.db_url
    say(f"数据库：{where}")
    say("继续查看：")
    db = f"sop --db {result.db_url}"
    ids = result.follow_up
    commands = [
        ("tasks --as chen_jing", "陈静（3、4栋管家）手上的待办"),
        ("tasks --role cs_supervisor", "客服主管队列：回访、投诉效果检查"),
        (f"show {ids.get('complaint_interim')}", "有阶段性答复的来访投诉（CMP-4）"),
        (f"history {ids.get('complaint_interim')}", "它的每一步：谁、何时、做了什么"),
        (f"replay {ids.get('dunning_letter')}", "发过律师函的催缴单：由事件重放出状态"),
        ("sla report --procedure complaint", "投诉答复时限，按人"),
        ("audit verify", "检查每条哈希链"),
        (f"import calls {DATA / 'calls.csv'} --as li_qiang", "再导入一次话单：幂等，什么也不新增"),
    ]
    width = max(len(f"{db} {c}") for c, _ in commands if len(c) <= 32)
    for cmd, what in commands:
        say(f"  {f'{db} {cmd}':<{width}}  # {what}")
