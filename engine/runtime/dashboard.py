"""The figures of the SLA dashboard: the SLA report, by month, person and building, and the
monthly quality targets QA-1..5.

Everything is counted from the same projections ``sop sla report`` reads (the ``timers``
rows of SLA clocks, classified by :func:`engine.runtime.sla_report.outcome`) plus the
instances of complaints and callbacks; nothing here writes. Months and buildings are
those of the clock's start and its instance's unit, in the site's zone.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional
from zoneinfo import ZoneInfo

from engine.runtime.sla_report import compliance, outcome, report
from engine.store import queries
from engine.store import timers as timer_store

SATISFIED = ("very_satisfied", "satisfied")


@dataclass
class Tally:
    met: int = 0
    breached: int = 0
    open: int = 0

    def add(self, result: str) -> None:
        setattr(self, result, getattr(self, result) + 1)

    @property
    def compliance(self) -> Optional[float]:
        return compliance(self.met, self.breached)


@dataclass
class QualityMonth:
    """One month's QA figures; a rate is None when there is nothing to divide by."""

    month: str
    complaints: int = 0
    complaints_closed: int = 0
    callbacks_due: int = 0       # closed complaints that need a callback (not anonymous)
    callbacks_done: int = 0      # … whose callback is completed
    surveyed: int = 0            # callbacks with a satisfaction answer
    satisfied: int = 0
    sla: Tally = field(default_factory=Tally)

    @property
    def handling_rate(self) -> Optional[float]:      # QA-1
        return _pct(self.complaints_closed, self.complaints)

    @property
    def callback_rate(self) -> Optional[float]:      # QA-1
        return _pct(self.callbacks_done, self.callbacks_due)

    @property
    def satisfaction(self) -> Optional[float]:       # QA-2
        return _pct(self.satisfied, self.surveyed)

    @property
    def punctuality(self) -> Optional[float]:        # QA-3
        return self.sla.compliance


@dataclass
class Dashboard:
    procedures: list[dict[str, Any]]              # the SLA report's rows of all assignees together
    people: dict[str, Tally]                      # per assignee, every SLA of every procedure
    months: dict[str, Tally]                      # "2025-09" -> tally
    month_procedure: dict[tuple[str, str], Tally]
    buildings: dict[str, Tally]                   # building ("-" when the instance has no unit)
    quality: list[QualityMonth]
    report: list[dict[str, Any]]                  # the SLA report itself (as GET /v1/reports/sla)


def _pct(part: int, whole: int) -> Optional[float]:
    return round(100.0 * part / whole, 1) if whole else None


def _month(t: datetime, zone: ZoneInfo) -> str:
    return t.astimezone(zone).strftime("%Y-%m")


def figures(engine: Any, start: Optional[datetime] = None, end: Optional[datetime] = None,
            procedure: Optional[str] = None) -> Dashboard:
    zone = ZoneInfo(engine.org.site.zone)
    rows = report(engine, start, end, procedure)
    people: dict[str, Tally] = defaultdict(Tally)
    months: dict[str, Tally] = defaultdict(Tally)
    month_procedure: dict[tuple[str, str], Tally] = defaultdict(Tally)
    buildings: dict[str, Tally] = defaultdict(Tally)
    quality: dict[str, QualityMonth] = {}

    def q(month: str) -> QualityMonth:
        return quality.setdefault(month, QualityMonth(month))

    with engine.read() as conn:
        clocks = timer_store.report_detail_rows(conn, start, end, procedure)
        complaints = queries.started_between(conn, ("complaint",), start, end)
        callbacks = {c.parent_id: c for c in queries.started_between(conn, ("callback",), start, None)
                     if c.parent_id is not None}
        surveys = queries.started_between(conn, ("callback",), start, end)
    for r in clocks:
        result = outcome(r.status, r.breached_at)
        if result is None:
            continue
        month = _month(r.started_at, zone)
        people[r.assignee or "-"].add(result)
        months[month].add(result)
        month_procedure[(month, r.procedure)].add(result)
        buildings[r.building or "-"].add(result)
        q(month).sla.add(result)
    for c in complaints:
        m = q(_month(c.started_at, zone))  # type: ignore[arg-type]  # a stored instance has started
        m.complaints += 1
        if c.status == "completed":
            m.complaints_closed += 1
            if not c.data.get("anonymous"):
                m.callbacks_due += 1
                child = callbacks.get(c.id)
                if child is not None and child.status == "completed":
                    m.callbacks_done += 1
    for cb in surveys:
        answer = cb.data.get("satisfaction")
        if answer:
            m = q(_month(cb.started_at, zone))  # type: ignore[arg-type]  # a stored instance has started
            m.surveyed += 1
            m.satisfied += answer in SATISFIED
    return Dashboard(procedures=[r for r in rows if r["assignee"] is None], people=dict(sorted(people.items())),
                     months=dict(sorted(months.items())), month_procedure=dict(sorted(month_procedure.items())),
                     buildings=dict(sorted(buildings.items())), quality=[quality[k] for k in sorted(quality)],
                     report=rows)
