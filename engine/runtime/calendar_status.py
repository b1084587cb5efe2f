"""``sop calendar status`` and the yearly warning that next year's calendar is provisional.

Why: the State Council publishes next year's holiday notice each November and the
office must copy it into its calendar file (or upgrade ``chinese-calendar``). Until then
deadlines in that year are provisional (engine/statutory.py). From 1 November of the year
before, a year still provisional is a warning: logged by every sweep's process once,
shown by ``sop calendar status``, and sent once to the office director (the holders of
role ``office_director``) through the outbox, so it is delivered, retried and recorded
like every other notification.
"""
from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path
from typing import Any, Optional

from engine.calendar import SHIPPED_FILE, WorkCalendar
from engine.store import timers as timer_store
from engine.store.queue import queue_once

log = logging.getLogger("sop.calendar")

WARN_FROM_MONTH = 11  # the notice usually appears in November
DIRECTOR_ROLE = "office_director"


def warnings(cal: WorkCalendar, today: date) -> list[str]:
    """What is wrong with the calendar on ``today``: this year, or from November next year, provisional."""
    found = []
    if cal.is_provisional(today.year):
        found.append(f"{today.year} is provisional: no State Council notice is known for the current year")
    if today.month >= WARN_FROM_MONTH and cal.is_provisional(today.year + 1):
        found.append(f"{today.year + 1} is still provisional: add the State Council notice for {today.year + 1} "
                     f"under `years:` in {_site_file(cal)}, then run `sop calendar repair`")
    return found


def _site_file(cal: WorkCalendar) -> str:
    """Where the site should write the notice: its own file, never the installed package's copy."""
    if cal.source and Path(cal.source).resolve() != SHIPPED_FILE.resolve():
        return cal.source
    return "the site's calendar file (calendar.yaml beside the org file, or --calendar FILE / SOP_CALENDAR)"


def status(cal: WorkCalendar, now: datetime, open_provisional: Optional[int]) -> dict[str, Any]:
    """Where last, this and next year come from, and the warnings; ``open_provisional`` is
    None where there is no database yet (the calendar itself needs none)."""
    today = now.astimezone(cal.zone).date()
    return {
        "zone": cal.zone.key, "file": cal.source, "today": today.isoformat(),
        "years": [{"year": y, "source": str(cal.year_source(y)), "from": cal.describe_year(y)}
                  for y in range(today.year - 1, today.year + 2)],
        "open_provisional_deadlines": open_provisional,
        "warnings": warnings(cal, today),
    }


def open_provisional_count(engine: Any) -> int:
    with engine.read() as conn:
        return timer_store.provisional_open_count(conn)


def watch(engine: Any, now: datetime) -> None:
    """Called by every sweep: warn once per process, notify the director once per year."""
    cal: WorkCalendar = engine.calendar
    today = now.astimezone(cal.zone).date()
    if today.month < WARN_FROM_MONTH or not cal.is_provisional(today.year + 1):
        return
    year = today.year + 1
    warned: set[int] = engine.__dict__.setdefault("_calendar_warned_years", set())  # once per engine
    if year in warned:
        return
    warned.add(year)
    for text in warnings(cal, today):
        log.warning("working calendar: %s", text)
    notify_director(engine, year, now)


def notify_director(engine: Any, year: int, now: datetime) -> int:
    """Queue the notice for each office director once per year (the outbox key is the dedupe)."""
    directors = [p.id for p in engine.org.staff if DIRECTOR_ROLE in p.roles]
    message = (f"工作日历提醒：尚未录入{year}年国务院节假日安排通知，{year}年的各项期限目前按法定节假日临时计算（provisional）。"
               f"请在日历文件（{engine.calendar.source or 'calendar.yaml'}）的 years: 中录入{year}年放假和调休安排，"
               f"然后运行 sop calendar repair 重新计算未到期的期限。")
    rows = [{"instance_id": 0, "seq": year, "recipient": staff_id, "channel": None, "message": message,
             "idempotency_key": f"calendar:{year}:{staff_id}", "status": "pending", "attempts": 0,
             "created_at": now, "next_attempt_at": now} for staff_id in directors]
    with engine.transaction() as conn:
        return len(queue_once(conn, rows))
