"""The ``sop`` command: parse arguments, call the engine, print tables or JSON.

No business logic lives here. Every EngineError becomes one line on stderr and exit 1;
anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional
from zoneinfo import ZoneInfo

import click

from engine.cli_support import Seconds, fail_cleanly, json_flag, json_mode
from engine.errors import InputError
from engine.instants import out_of_range
from engine.runtime.config import Settings, build_engine
from engine.runtime.service import next_deadline
from engine.runtime.views import event_view, instance_view, iso


class Context:
    def __init__(self, db: Optional[str], procedures: Optional[str], org: Optional[str], as_json: bool,
                 calendar: Optional[str] = None) -> None:
        self.db, self.procedures, self.org, self.json, self.calendar = db, procedures, org, as_json, calendar
        self.may_create_db = False  # set by the commands that start instances: start, import calls
        self._engine: Any = None

    @property
    def settings(self) -> Settings:
        return Settings.resolve(self.db, self.procedures, self.org, self.calendar)

    @property
    def engine(self) -> Any:
        if self._engine is None:
            settings = self.settings
            settings.load()  # a broken procedure or org file is reported before a missing database
            if not self.may_create_db:
                settings.require_database()
            self._engine = build_engine(settings)
        return self._engine


def emit(ctx: Context, payload: Any, human: Callable[[], None]) -> None:
    if ctx.json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str))
    else:
        human()


def parse_data(raw: Optional[str]) -> dict[str, Any]:
    if raw is None:
        return {}
    text = raw
    if raw.startswith("@"):
        path = Path(raw[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise InputError("--data", f"cannot read {path}: {e.strerror}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError("--data", f"not valid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(value, dict):
        raise InputError("--data", "must be a JSON object like {\"field\": \"value\"}")
    return value


def parse_time(raw: Optional[str], zone: str, argument: str = "--at") -> Optional[datetime]:
    """ISO 8601; a time without offset is read in the site's zone."""
    if raw is None:
        return None
    try:
        t = datetime.fromisoformat(raw)
    except ValueError:
        raise InputError(argument, f"not an ISO 8601 time: {raw!r} (e.g. 2025-09-30T17:55:00+08:00)") from None
    t = t if t.tzinfo else t.replace(tzinfo=ZoneInfo(zone))
    why = out_of_range(t)
    if why is not None:
        raise InputError(argument, f"{raw!r} is {why}")
    return t


def table(rows: list[list[Any]], headers: list[str]) -> None:
    """A plain table that lines up Chinese (double-width) text too."""
    import unicodedata

    def width(s: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)

    cells = [[("" if c is None else str(c)) for c in r] for r in rows]
    widths = [max([width(h)] + [width(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "  ".join(v + " " * (w - width(v)) for v, w in zip(values, widths)).rstrip()

    click.echo(line(headers))
    click.echo(line(["-" * w for w in widths]))
    for r in cells:
        click.echo(line(r))


class CommandLineError(click.ClickException):
    """A malformed command line, shown like every other user error: one line, exit 1."""

    exit_code = 1

    def __init__(self, error: click.UsageError) -> None:
        super().__init__(error.format_message())
        self.command_path = error.ctx.command_path if error.ctx else "sop"
        self.as_json = bool(error.ctx and error.ctx.meta.get("sop.json")) or json_mode()

    def show(self, file: Any = None) -> None:
        if self.as_json:
            click.echo(json.dumps({"error": self.format_message(), "code": "usage"}, ensure_ascii=False), err=True)
        else:
            click.echo(f"error: {self.format_message()} (see '{self.command_path} --help')", err=True)


class SopGroup(click.Group):
    """The top-level group: turns click's usage errors into one-line user errors."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["sop.json"] = "--json" in args  # so a malformed command line is reported as JSON too
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:
            raise _one_line(e) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            raise _one_line(e) from None


def _one_line(e: click.UsageError) -> click.ClickException:
    no_args_help = getattr(click.exceptions, "NoArgsIsHelpError", ())
    if no_args_help and isinstance(e, no_args_help) and e.ctx is not None:
        click.echo(e.ctx.get_help())  # `sop`, `sop audit`, …: the help, on stdout
        sys.exit(0)
    return CommandLineError(e)


@click.group(cls=SopGroup, invoke_without_command=True)
@click.option("--db", envvar="SOP_DB", help="Database URL (env SOP_DB; default sqlite:///sop.db).")
@click.option("--procedures", envvar="SOP_PROCEDURES", help="Procedures directory (env SOP_PROCEDURES).")
@click.option("--org", envvar="SOP_ORG", help="Organisation file (env SOP_ORG).")
@click.option("--calendar", envvar="SOP_CALENDAR",
              help="The site's working calendar file (env SOP_CALENDAR; default: calendar.yaml beside --org).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.pass_context
def main(click_ctx: click.Context, db: Optional[str], procedures: Optional[str], org: Optional[str],
         calendar: Optional[str], as_json: bool) -> None:
    """sop — 物业客服 workflow engine: procedures as YAML state machines with SLA timers."""
    if hasattr(sys.stdout, "reconfigure") and (sys.stdout.encoding or "").lower() != "utf-8":
        sys.stdout.reconfigure(encoding="utf-8")  # type: ignore[union-attr]
        sys.stderr.reconfigure(encoding="utf-8")  # type: ignore[union-attr]
    click_ctx.obj = Context(db, procedures, org, as_json, calendar)
    if click_ctx.invoked_subcommand is None:  # `sop` alone: the help, on stdout
        click.echo(click_ctx.get_help())


pass_ctx = click.make_pass_decorator(Context)


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


@main.command()
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
        from engine.cli_bulk import start_each

        if each is None or data is not None:
            raise InputError("--each", "give --data for one instance, or --each FILE (and --key) for many")
        start_each(eng, procedure, staff, each, key, parse_time(at, eng.org.site.zone), ctx.json)
        return
    inst = eng.start(procedure, staff, parse_data(data), parse_time(at, eng.org.site.zone))
    show_instance(ctx, inst)


MAX_ID = 2**31 - 1  # the id column's range (INTEGER on PostgreSQL)


def _instance_id(raw: str) -> int:
    try:
        value = int(raw.lstrip("#"))
    except ValueError:
        raise InputError("ID", f"not an instance id: {raw!r}") from None
    if not 1 <= value <= MAX_ID:
        raise InputError("ID", f"not an instance id: {raw!r} (ids run from 1 to {MAX_ID})")
    return value


@main.command()
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
    inst = eng.advance(_instance_id(instance), action, staff, parse_data(data), parse_time(at, eng.org.site.zone),
                       revision)
    show_instance(ctx, inst)


@main.command()
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
    show_instance(ctx, eng.record(_instance_id(instance), staff, parse_data(data), parse_time(at, eng.org.site.zone)))


@main.command()
@json_flag
@click.argument("instance")
@click.option("--as", "staff", required=True)
@click.option("--at")
@pass_ctx
@fail_cleanly
def claim(ctx: Context, instance: str, staff: str, at: Optional[str]) -> None:
    """Take an unassigned task from your role's queue."""
    eng = ctx.engine
    show_instance(ctx, eng.claim(_instance_id(instance), staff, parse_time(at, eng.org.site.zone)))


@main.command()
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
    show_instance(ctx, eng.assign(_instance_id(instance), assignee, staff, parse_time(at, eng.org.site.zone)))


@main.command()
@json_flag
@click.argument("instance")
@pass_ctx
@fail_cleanly
def show(ctx: Context, instance: str) -> None:
    """Show an instance: state, data, actions, deadlines, links."""
    show_instance(ctx, ctx.engine.show(_instance_id(instance)))


@main.command()
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
    if watching:
        from engine.runtime.watching import watched
        items = watched(eng, staff)  # type: ignore[arg-type]  (staff is given, checked above)
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


@main.command()
@json_flag
@click.argument("instance")
@pass_ctx
@fail_cleanly
def history(ctx: Context, instance: str) -> None:
    """The events of an instance, oldest first."""
    eng = ctx.engine
    zone = ZoneInfo(eng.org.site.zone)
    rows = [event_view(e, zone) for e in eng.history(_instance_id(instance))]
    emit(ctx, rows, lambda: table(
        [[r["seq"], r["type"], r["actor"], r["role"] or "", r["occurred_at"],
          json.dumps(r["data"], ensure_ascii=False)[:80]] for r in rows],
        ["seq", "type", "actor", "role", "occurred_at", "data"]))


@main.command()
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
        from engine.cli_change import what_if_report
        what_if_report(ctx, emit, table, instance, with_file, procedure, since_raw, asof_raw, parse_time,
                       _instance_id)
        return
    if instance is None or procedure or since_raw or asof_raw:
        raise InputError("replay", "give an INSTANCE, or --with FILE (with --procedure, --since, --as-of)")
    r = ctx.engine.replay(_instance_id(instance))
    payload = {"instance": r.instance_id, "ok": r.ok, "events": r.events, "seq": r.seq, "difference": r.difference}
    emit(ctx, payload, lambda: click.echo(
        f"instance {r.instance_id}: replay of {r.events} events matches the stored state" if r.ok
        else f"instance {r.instance_id}: replay differs{' at seq ' + str(r.seq) if r.seq else ''}: {r.difference}"))
    if not r.ok:
        sys.exit(1)


@main.command()
@json_flag
@click.option("--db-file", type=click.Path(path_type=Path), default=Path("sop-demo.db"), show_default=True,
              help="SQLite file for the demo (recreated).")
@pass_ctx
@fail_cleanly
def demo(ctx: Context, db_file: Path) -> None:
    """Simulate one month at the demo site on a fresh embedded database and say where it is."""
    from engine.runtime import demo as demo_run

    url = demo_run.fresh_db(db_file)
    base = ctx.settings
    settings = Settings(url, base.procedures, base.org, base.calendar)
    # With --json the progress goes to stderr, so stdout is one JSON document.
    if ctx.json:
        result = demo_run.run(settings, lambda line: click.echo(line, err=True),
                              progress_to=click.get_text_stream("stderr"))
    else:
        result = demo_run.run(settings, click.echo)
    emit(ctx, demo_run.as_json(result), lambda: demo_run.summary(result, click.echo, table))


@main.command()
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


@main.command()
@click.option("--interval", type=Seconds(), default=1.0, show_default=True, help="Seconds between sweeps.")
@pass_ctx
@fail_cleanly
def worker(ctx: Context, interval: float) -> None:
    """Run the timer sweep on the real clock until stopped (SIGTERM/SIGINT stop it cleanly)."""
    from engine.runtime.worker import run_worker

    run_worker(ctx.engine, interval, click.echo)


@main.group()
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


@main.group()
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


@main.command()
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
    if ctx.json:
        click.echo(json.dumps([{"file": i.file, "line": i.line, "col": i.col, "path": i.path,
                                "message": i.message, "hint": i.hint} for i in issues], ensure_ascii=False, indent=2))
    else:
        for i in issues:
            click.echo(str(i))
    if issues:
        sys.exit(1)


@main.command()
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


@main.command()
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


from adapters.cli_commands import register as _register_adapters  # noqa: E402  (sop import …)
_register_adapters(main)


from engine.cli_api import register  # noqa: E402  (serve, staff token, outbox)
register(main)

from engine.cli_db import register as _register_db  # noqa: E402  (sop db upgrade/current)
_register_db(main)

from engine.cli_audit import register as _register_audit  # noqa: E402  (sop audit verify/checkpoint)
_register_audit(main, json_flag, pass_ctx, emit)

from engine.cli_change import register as _register_change  # noqa: E402  (sop migrate)
_register_change(main, json_flag, pass_ctx, emit, parse_time)

from engine.cli_watch import register as _register_watch  # noqa: E402  (sop watch/unwatch)
_register_watch(main, json_flag, pass_ctx, show_instance, _instance_id, parse_time)

if __name__ == "__main__":
    main()
