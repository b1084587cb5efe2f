"""Time and deadlines: ``sop tick``, ``sop worker``, ``sop calendar …`` and ``sop sla report``.

``tick`` fires what is due on a settable clock (engine/timeskip.py); ``worker`` runs the
sweep on the real clock; the calendar commands read and repair the site's working
calendar; ``sla report`` sums SLA compliance.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional
from zoneinfo import ZoneInfo

import click

from engine.cli.context import Context, pass_ctx
from engine.cli.errors import fail_cleanly
from engine.cli.output import emit, json_flag, table
from engine.cli.parsing import Seconds, parse_time
from engine.errors import InputError
from engine.runtime.config import build_engine
from engine.runtime.views import iso


@click.command()
@json_flag
@click.option("--until", "until_raw", help="Fire everything due up to this time (ISO 8601); default now.")
@pass_ctx
@fail_cleanly
def tick(ctx: Context, until_raw: Optional[str]) -> None:
    """Fire every due timer and SLA step up to --until, on a settable clock."""
    from engine.clock import FakeClock

    settings = ctx.settings
    library, org = settings.load()
    until = parse_time(until_raw, org.site.zone, "--until") if until_raw else None
    from engine.clock import SystemClock
    clock = FakeClock(until) if until else SystemClock()
    settings.require_database()
    eng = build_engine(settings, clock)
    fired = eng.tick(clock.now())
    zone = ZoneInfo(org.site.zone)
    rows = [{"instance": f.instance_id, "name": f.name, "due": iso(f.due, zone), "status": f.kind,
             "state": f.state} for f in fired]
    emit(ctx, rows, lambda: (table([[r["instance"], r["name"], r["due"], r["status"], r["state"]] for r in rows],
                                   ["instance", "clock", "due", "status", "state"]) if rows
                             else click.echo("nothing due")))


@click.command()
@click.option("--interval", type=Seconds(), default=1.0, show_default=True, help="Seconds between sweeps.")
@pass_ctx
@fail_cleanly
def worker(ctx: Context, interval: float) -> None:
    """Run the timer sweep on the real clock until stopped (SIGTERM/SIGINT stop it cleanly)."""
    from engine.runtime.worker import run_worker

    run_worker(ctx.engine, interval, click.echo)


@click.group()
def calendar() -> None:
    """The site's working calendar: where each year comes from; repair deadlines after a change."""


@calendar.command("status")
@json_flag
@pass_ctx
@fail_cleanly
def calendar_status(ctx: Context) -> None:
    """Where last, this and next year's workdays come from, provisional deadlines, warnings."""
    from engine.runtime.calendar_status import open_provisional_count, status

    settings = ctx.settings
    try:
        settings.require_database()
    except InputError:
        count = None  # no database yet: the calendar is still worth reading
    else:
        count = open_provisional_count(ctx.engine)
    report = status(settings.work_calendar(), datetime.now(timezone.utc), count)

    def human() -> None:
        click.echo(f"calendar file: {report['file'] or '(built-in defaults)'}   zone: {report['zone']}")
        table([[y["year"], y["source"], y["from"]] for y in report["years"]], ["year", "source", "from"])
        if count is not None:
            click.echo(f"open deadlines on a provisional year: {count}")
        for w in report["warnings"]:
            click.echo(f"warning: {w}")

    emit(ctx, report, human)


@calendar.command("repair")
@json_flag
@click.option("--at", help="When the repair happens (ISO 8601); default now.")
@pass_ctx
@fail_cleanly
def calendar_repair(ctx: Context, at: Optional[str]) -> None:
    """Recompute open deadlines on the calendar as it is now; one ClockRepaired event per moved clock."""
    from engine.runtime.calendar_repair import repair_all

    eng = ctx.engine
    zone = ZoneInfo(eng.org.site.zone)
    done = repair_all(eng, parse_time(at, eng.org.site.zone))
    rows = [{"instance": r.instance_id, "clock": r.name, "old_due": iso(datetime.fromisoformat(r.old_due), zone),
             "new_due": iso(datetime.fromisoformat(r.new_due), zone), "reason": r.reason} for r in done]
    emit(ctx, rows, lambda: (table([[r["instance"], r["clock"], r["old_due"], r["new_due"]] for r in rows],
                                   ["instance", "clock", "old due", "new due"]) if rows
                             else click.echo("no open deadline changed")))


@click.group()
def sla() -> None:
    """SLA compliance."""


@sla.command("report")
@json_flag
@click.option("--from", "start", help="SLA clocks started on or after this date/time.")
@click.option("--to", "end", help="…and before this date/time.")
@click.option("--procedure", help="Only this procedure.")
@pass_ctx
@fail_cleanly
def sla_report(ctx: Context, start: Optional[str], end: Optional[str], procedure: Optional[str]) -> None:
    """Met, breached, open and compliance % per procedure and SLA, and per assignee."""
    from engine.runtime.sla_report import report

    eng = ctx.engine
    if procedure is not None and procedure not in eng.library.procedures and procedure not in eng.library.disabled:
        known = ", ".join(sorted(eng.library.procedures))
        raise InputError("--procedure", f"unknown procedure {procedure!r}; known: {known}")
    zone = eng.org.site.zone
    rows = report(eng, parse_time(start, zone, "--from"), parse_time(end, zone, "--to"), procedure)
    emit(ctx, rows, lambda: table(
        [[r["procedure"], r["sla"], r["assignee"] or "(all)", r["met"], r["breached"], r["open"],
          "-" if r["compliance"] is None else f"{r['compliance']:.1f}%", r["provisional"] or ""] for r in rows],
        ["procedure", "sla", "assignee", "met", "breached", "open", "compliance", "provisional"]))


COMMANDS = (tick, worker, calendar, sla)
