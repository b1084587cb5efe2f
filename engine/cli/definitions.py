"""Procedure definitions and changing them: ``sop lint``, ``schema``, ``graph``, ``migrate``
and the what-if form of ``sop replay`` (``--with FILE``).

The work is in engine/spec/ (lint, schema, graph), engine/runtime/migration.py and
engine/runtime/whatif.py. See docs/procedures.md, "Changing a procedure".
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import click

from engine.cli.context import Context, pass_ctx
from engine.cli.errors import fail_cleanly
from engine.cli.output import emit, json_flag, table
from engine.cli.parsing import instance_id, parse_time


@click.command()
@json_flag
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@pass_ctx
@fail_cleanly
def lint(ctx: Context, paths: tuple[Path, ...]) -> None:
    """Check procedure and form files; one `file:line:col: message` per problem."""
    from engine.spec.lint import lint as run_lint
    from engine.spec.org import load_org

    settings = ctx.settings
    targets = list(paths) or [settings.procedures, settings.procedures.parent / "forms"]
    issues = run_lint(targets, load_org(settings.org).roles)
    payload = [{"file": i.file, "line": i.line, "col": i.col, "path": i.path, "message": i.message, "hint": i.hint}
               for i in issues]

    def human() -> None:
        for i in issues:
            click.echo(str(i))

    emit(ctx, payload, human)
    if issues:
        sys.exit(1)


@click.command()
@json_flag
@click.option("--out", type=click.Path(path_type=Path), help="Folder to write the schema files into.")
@click.argument("kind", required=False, type=click.Choice(["procedure", "form"]))
@fail_cleanly
def schema(out: Optional[Path], kind: Optional[str]) -> None:
    """Write the JSON Schema of procedure and form files (for editors)."""
    from engine.spec import schema as sch

    if out is not None:
        for path in sch.write_all(out):
            click.echo(str(path))
        return
    model = sch.SCHEMAS[f"{kind or 'procedure'}.schema.json"]
    click.echo(sch.render(model), nl=False)


@click.command()
@json_flag
@click.argument("procedure")
@pass_ctx
@fail_cleanly
def graph(ctx: Context, procedure: str) -> None:
    """Print PROCEDURE as a Mermaid state diagram."""
    from engine.spec.graph import mermaid

    library, _ = ctx.settings.load()
    proc = library.get(procedure)
    spec, text = proc.spec, mermaid(proc.spec)
    payload = {"procedure": spec.id, "title": spec.title, "version": proc.version, "mermaid": text,
               "states": [{"name": n, "title": s.title, "kind": s.kind} for n, s in spec.states.items()],
               "start": spec.start.state,
               "transitions": [{"action": a.name, "title": a.title, "from": s, "to": a.to or s}
                               for a in spec.actions for s in a.sources(spec.states)]}
    emit(ctx, payload, lambda: click.echo(text, nl=False))


@click.command()
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
@click.option("--as", "staff", required=True,
              help="Who migrates (a supervisor): named on every instance's VersionMigrated event.")
@pass_ctx
@fail_cleanly
def migrate(ctx: Context, procedure: str, version_from: str, version_to: str, maps: tuple[str, ...],
            dry_run: bool, at_raw: Optional[str], staff: str) -> None:
    """Move running instances of PROCEDURE from one version onto another, all or nothing."""
    from engine.runtime import migration as mg

    eng = ctx.engine
    at = parse_time(at_raw, eng.org.site.zone)
    done = mg.migrate(eng, procedure, version_from, version_to, mg.parse_map(list(maps)), dry_run, at, by=staff)
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


def what_if_report(ctx: Context, instance: Optional[str], with_file: Any, procedure: Optional[str],
                   since_raw: Optional[str], asof_raw: Optional[str]) -> None:
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


COMMANDS = (lint, schema, graph, migrate)
