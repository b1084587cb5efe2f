"""Working a case: start, advance, record, claim, assign, show, tasks, history, replay.

Each command parses its arguments, calls one ``Engine`` method and prints the instance
(``show_instance``) or a table; ``start --each`` reads its rows in ``engine/cli/rows.py``
and ``replay --with`` is the what-if of ``engine/cli/definitions.py``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional
from zoneinfo import ZoneInfo

import click

from engine.cli.context import Context, pass_ctx
from engine.cli.errors import fail_cleanly
from engine.cli.output import emit, json_flag, table
from engine.cli.parsing import instance_id, parse_data, parse_time
from engine.errors import InputError
from engine.runtime.queries import next_deadline
from engine.runtime.views import event_view, instance_view, iso


def show_instance(ctx: Context, inst: Any) -> None:
    view = instance_view(ctx.engine, inst)

    def human() -> None:
        click.echo(f"#{view['id']}  {view['procedure']} @ {view['version']}  state: {view['state']} ({view['status']})")
        who = view["assignee"] or "-"
        click.echo(f"assignee: {who}   role queue: {view['assignee_role'] or '-'}   revision: {view['revision']}")
        if view["parent"]:
            click.echo(f"parent: #{view['parent']}")
        if view["children"]:
            click.echo("children: " + ", ".join(f"#{c}" for c in view["children"]))
        if view["watchers"]:
            click.echo("watchers: " + ", ".join(view["watchers"]))
        for name, br in view["branches"].items():
            click.echo(f"branch {name}: {br['state']} ({br['status']})  assignee: {br['assignee'] or '-'}  "
                       f"role queue: {br['role'] or '-'}")
        for k, v in view["data"].items():
            click.echo(f"  {k}: {v}")
        if view["actions"]:
            click.echo("actions:")
            for a in view["actions"]:
                form = f"  form: {a['form']}" if a["form"] else ""
                branch = f"  branch: {a['branch']}" if a.get("branch") else ""
                click.echo(f"  {a['name']}  {a['title']}  roles: {', '.join(a['roles'])}{form}{branch}")
        if view["deadlines"]:
            click.echo("deadlines:")
            for d in view["deadlines"]:
                mark = f"  provisional ({', '.join(map(str, d['provisional_years']))})" if d.get("provisional") else ""
                click.echo(f"  {d['name']}  due {d['due']}  {d['status']}{mark}")

    emit(ctx, view, human)


@click.command()
@json_flag
@click.argument("procedure")
@click.option("--as", "staff", required=True, help="Staff id from the org file.")
@click.option("--data", help="JSON object, or @file.json")
@click.option("--at", help="When it happened (ISO 8601); default now.")
@click.option("--each", type=click.Path(path_type=Path, dir_okay=False),
              help="Start one instance per row of a .jsonl or .csv file (fields of the start form), "
                   "all in one transaction: a refused row starts none.")
@click.option("--key", help="With --each: a key per row from its fields, e.g. 'fee_cycle:{period}:{unit}'; "
                            "a row whose key was started before is not started again.")
@pass_ctx
@fail_cleanly
def start(ctx: Context, procedure: str, staff: str, data: Optional[str], at: Optional[str], each: Optional[Path],
          key: Optional[str]) -> None:
    """Start an instance of PROCEDURE (or one per row of a file, with --each)."""
    ctx.may_create_db = True
    eng = ctx.engine
    if each is not None or key is not None:
        from engine.cli.rows import start_each

        if each is None or data is not None:
            raise InputError("--each", "give --data for one instance, or --each FILE (and --key) for many")
        start_each(ctx, procedure, staff, each, key, parse_time(at, eng.org.site.zone))
        return
    inst = eng.start(procedure, staff, parse_data(data), parse_time(at, eng.org.site.zone))
    show_instance(ctx, inst)



@click.command()
@json_flag
@click.argument("instance")
@click.argument("action")
@click.option("--as", "staff", required=True)
@click.option("--data", help="JSON object, or @file.json")
@click.option("--at", help="When it happened (ISO 8601); default now.")
@click.option("--revision", type=int, help="Refuse if the instance is no longer at this revision.")
@pass_ctx
@fail_cleanly
def advance(ctx: Context, instance: str, action: str, staff: str, data: Optional[str], at: Optional[str],
            revision: Optional[int]) -> None:
    """Take ACTION on INSTANCE."""
    eng = ctx.engine
    inst = eng.advance(instance_id(instance), action, staff, parse_data(data), parse_time(at, eng.org.site.zone),
                       revision)
    show_instance(ctx, inst)


@click.command()
@json_flag
@click.argument("instance")
@click.option("--as", "staff", required=True)
@click.option("--data", required=True, help="JSON object, or @file.json")
@click.option("--at")
@pass_ctx
@fail_cleanly
def record(ctx: Context, instance: str, staff: str, data: str, at: Optional[str]) -> None:
    """Record data on INSTANCE without moving it."""
    eng = ctx.engine
    show_instance(ctx, eng.record(instance_id(instance), staff, parse_data(data), parse_time(at, eng.org.site.zone)))


@click.command()
@json_flag
@click.argument("instance")
@click.option("--as", "staff", required=True)
@click.option("--at")
@pass_ctx
@fail_cleanly
def claim(ctx: Context, instance: str, staff: str, at: Optional[str]) -> None:
    """Take an unassigned task from your role's queue."""
    eng = ctx.engine
    show_instance(ctx, eng.claim(instance_id(instance), staff, parse_time(at, eng.org.site.zone)))


@click.command()
@json_flag
@click.argument("instance")
@click.argument("assignee")
@click.option("--as", "staff", required=True)
@click.option("--at")
@pass_ctx
@fail_cleanly
def assign(ctx: Context, instance: str, assignee: str, staff: str, at: Optional[str]) -> None:
    """Assign INSTANCE to ASSIGNEE (supervisors)."""
    eng = ctx.engine
    show_instance(ctx, eng.assign(instance_id(instance), assignee, staff, parse_time(at, eng.org.site.zone)))


@click.command()
@json_flag
@click.argument("instance")
@pass_ctx
@fail_cleanly
def show(ctx: Context, instance: str) -> None:
    """Show an instance: state, data, actions, deadlines, links."""
    show_instance(ctx, ctx.engine.show(instance_id(instance)))


@click.command()
@json_flag
@click.option("--as", "staff", help="Tasks waiting on this person (and their roles' queues).")
@click.option("--role", help="Tasks queued for this role.")
@click.option("--watching", is_flag=True, help="With --as: the running cases this person watches instead.")
@pass_ctx
@fail_cleanly
def tasks(ctx: Context, staff: Optional[str], role: Optional[str], watching: bool) -> None:
    """Open instances waiting on a person or a role (or watched by a person)."""
    if bool(staff) == bool(role):
        raise InputError("tasks", "give exactly one of --as STAFF or --role ROLE")
    if watching and not staff:
        raise InputError("--watching", "give --as STAFF: whose watched cases")
    eng = ctx.engine
    if watching and staff:  # (--watching without --as was refused above)
        from engine.runtime.watching import watched
        items = watched(eng, staff)
    else:
        items = eng.tasks(staff=staff, role=role)
    zone = ZoneInfo(eng.org.site.zone)
    rows = [{"id": i.id, "procedure": i.procedure, "state": i.state, "assignee": i.assignee,
             "assignee_role": i.assignee_role, "unit": i.data.get("unit"),
             "last_occurred_at": iso(i.last_occurred_at, zone), **next_deadline(i, zone)} for i in items]
    emit(ctx, rows, lambda: table([[r["id"], r["procedure"], r["state"], r["assignee"] or "-", r["assignee_role"],
                                    r["unit"] or "", r["last_occurred_at"], _due_cell(r)] for r in rows],
                                  ["id", "procedure", "state", "assignee", "role", "unit", "since", "due"]))


def _due_cell(row: dict[str, Any]) -> str:
    if row["due"] is None:
        return ""
    return f"{row['due']} {row['sla_status']}" + (" provisional" if row["provisional"] else "")


@click.command()
@json_flag
@click.argument("instance")
@pass_ctx
@fail_cleanly
def history(ctx: Context, instance: str) -> None:
    """The events of an instance, oldest first."""
    eng = ctx.engine
    zone = ZoneInfo(eng.org.site.zone)
    rows = [event_view(e, zone) for e in eng.history(instance_id(instance))]
    emit(ctx, rows, lambda: table(
        [[r["seq"], r["type"], r["actor"], r["role"] or "", r["occurred_at"],
          json.dumps(r["data"], ensure_ascii=False)[:80]] for r in rows],
        ["seq", "type", "actor", "role", "occurred_at", "data"]))


@click.command()
@json_flag
@click.argument("instance", required=False)
@click.option("--with", "with_file", type=click.Path(path_type=Path), metavar="FILE",
              help="What-if: re-run recorded histories under this edited procedure file; write nothing.")
@click.option("--procedure", help="With --with: the procedure the file defines (checked).")
@click.option("--since", "since_raw", help="With --with: only instances started since this date or time.")
@click.option("--as-of", "asof_raw", help="With --with: judge SLAs as of this time (default: the latest event in the store).")
@pass_ctx
@fail_cleanly
def replay(ctx: Context, instance: Optional[str], with_file: Optional[Path], procedure: Optional[str],
           since_raw: Optional[str], asof_raw: Optional[str]) -> None:
    """Re-derive the state from the events; exit 1 naming the first difference.

    With --with FILE: re-run the recorded commands of every instance (or INSTANCE) under the
    edited file and say per instance where the outcome would differ (docs/procedures.md)."""
    if with_file is not None:
        from engine.cli.definitions import what_if_report
        what_if_report(ctx, instance, with_file, procedure, since_raw, asof_raw)
        return
    if instance is None or procedure or since_raw or asof_raw:
        raise InputError("replay", "give an INSTANCE, or --with FILE (with --procedure, --since, --as-of)")
    r = ctx.engine.replay(instance_id(instance))
    payload = {"instance": r.instance_id, "ok": r.ok, "events": r.events, "seq": r.seq, "difference": r.difference}
    emit(ctx, payload, lambda: click.echo(
        f"instance {r.instance_id}: replay of {r.events} events matches the stored state" if r.ok
        else f"instance {r.instance_id}: replay differs{' at seq ' + str(r.seq) if r.seq else ''}: {r.difference}"))
    if not r.ok:
        sys.exit(1)


COMMANDS = (start, advance, record, claim, assign, show, tasks, history, replay)
