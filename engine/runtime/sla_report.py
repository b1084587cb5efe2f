"""SLA compliance for auditors: per procedure and SLA, and per assignee within each.

Compliance = met / (met + breached); open clocks are counted but not judged yet. A clock
that breached and was stopped later counts as breached (a breach is never undone).
``provisional`` counts the clocks whose due time was computed on a provisional calendar
year (engine/statutory.py): their verdict may move when the year's notice is added.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, Optional

from engine.store import timers as timer_store


def outcome(status: str, breached_at: Optional[datetime]) -> Optional[str]:
    """How a clock counts: "breached", "met", "open", or None (cancelled: not counted)."""
    if breached_at is not None or status == "breached":
        return "breached"
    if status == "met":
        return "met"
    return "open" if status in ("open", "warned") else None


def compliance(met: int, breached: int) -> Optional[float]:
    judged = met + breached
    return round(100.0 * met / judged, 1) if judged else None


def report(engine: Any, start: Optional[datetime], end: Optional[datetime],
           procedure: Optional[str]) -> list[dict[str, Any]]:
    with engine.read() as conn:
        rows = timer_store.report_rows(conn, start, end, procedure)
    totals: dict[tuple[str, str, Optional[str]], dict[str, int]] = defaultdict(
        lambda: {"met": 0, "breached": 0, "open": 0, "provisional": 0})
    for r in rows:
        result = outcome(r.status, r.breached_at)
        if result is None:
            continue
        for who in (None, r.assignee or "-"):
            totals[(r.procedure, r.name, who)][result] += 1
            totals[(r.procedure, r.name, who)]["provisional"] += bool(r.provisional)
    out = []
    for (proc, sla, who), t in sorted(totals.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] is not None, kv[0][2] or "")):
        out.append({"procedure": proc, "sla": sla, "assignee": who, **t,
                    "compliance": compliance(t["met"], t["breached"])})
    return out
