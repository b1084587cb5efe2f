"""``sop migrate`` and the what-if form of ``sop replay`` (``--with FILE``): changing a procedure.

Registered on the ``sop`` group by ``register(main, …)`` at the end of ``cli.py``; the work
is in engine/runtime/migration.py and engine/runtime/whatif.py. See docs/procedures.md,
"Changing a procedure".
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import click

from engine.cli_support import fail_cleanly


def register(main: click.Group, json_flag: Callable[..., Any], pass_ctx: Callable[..., Any],
             emit: Callable[..., None], parse_time: Callable[..., Any]) -> None:
    @main.command()
    @json_flag
    @click.argument("procedure")
    @click.option("--from", "version_from", required=True, metavar="VERSION",
                  help="Move the running instances pinned to this version (`sop show N` prints it); `any`: every "
                       "version but --to.")
    @click.option("--to", "version_to", default="current", show_default=True, metavar="VERSION",
                  help="Onto this version: `current` (the library's) or a stored version.")
    @click.option("--map", "maps", multiple=True, metavar="OLD=NEW",
                  help="A state of the old version that becomes this state of the new one (repeatable).")
    @click.option("--dry-run", is_flag=True, help="Print what would happen per instance; write nothing.")
    @click.option("--at", "at_raw", help="When the migration happens (ISO 8601); default now.")
    @pass_ctx
    @fail_cleanly
    def migrate(ctx: Any, procedure: str, version_from: str, version_to: str, maps: tuple[str, ...],
                dry_run: bool, at_raw: Optional[str]) -> None:
        """Move running instances of PROCEDURE from one version onto another, all or nothing."""
        from engine.runtime import migration as mg

        eng = ctx.engine
        at = parse_time(at_raw, eng.org.site.zone)
        done = mg.migrate(eng, procedure, version_from, version_to, mg.parse_map(list(maps)), dry_run, at)
        verb = "would migrate" if dry_run else "migrated"
        payload = {"procedure": procedure, "dry_run": dry_run, "instances": [d.view() for d in done]}

        def human() -> None:
            if not done:
                where = "another version" if version_from == "any" else f"version {version_from}"
                click.echo(f"{procedure}: no running instance on {where}")
            for d in done:
                extra = f"; cancelled clocks: {', '.join(d.cancelled)}" if d.cancelled else ""
                fired = f"; {d.fired} due clock event(s) first" if d.fired else ""
                click.echo(f"#{d.instance} {verb} {d.version_from} → {d.version_to}: state {d.state_from} → "
                           f"{d.state_to}{' (mapped)' if d.mapped else ''}{extra}{fired}")
        emit(ctx, payload, human)


def what_if_report(ctx: Any, emit: Callable[..., None], table: Callable[..., None], instance: Optional[str],
                   with_file: Any, procedure: Optional[str], since_raw: Optional[str], asof_raw: Optional[str],
                   parse_time: Callable[..., Any], instance_id: Callable[[str], int]) -> None:
    """``sop replay --with FILE``: a table per instance (same / differs: …), or JSON."""
    from datetime import date, datetime
    from zoneinfo import ZoneInfo

    from engine.errors import InputError
    from engine.runtime import whatif

    eng = ctx.engine
    zone = eng.org.site.zone
    since = None
    if since_raw:
        try:
            day = date.fromisoformat(since_raw)
        except ValueError:
            since = parse_time(since_raw, zone, "--since")
        else:
            since = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone))
    asof = parse_time(asof_raw, zone, "--as-of")
    if instance is not None and since is not None:
        raise InputError("--since", "give an INSTANCE or --since, not both")
    ids = [instance_id(instance)] if instance is not None else None
    edited, results = whatif.what_if(eng, with_file, procedure, since, asof, ids)
    payload = {"procedure": edited.id, "version": edited.version, "instances": [r.view() for r in results],
               "differ": sum(not r.same for r in results)}

    def human() -> None:
        if not results:
            click.echo(f"{edited.id}: no recorded instance to replay")
            return
        table([[f"#{r.instance}", "same" if r.same else "differs", "; ".join(r.differences())] for r in results],
              ["instance", "outcome", "what would differ"])
        click.echo(f"{payload['differ']} of {len(results)} instance(s) of {edited.id} would differ under "
                   f"{with_file} (version {edited.version})")
    emit(ctx, payload, human)
