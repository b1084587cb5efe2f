"""``sop import …``: bring records from outside systems into the engine.

Each subcommand parses its file, hands rows to an adapter and prints what was created,
what was already there (imports are idempotent) and which lines were refused. A refused
line never stops the good ones; the exit code is 1 when any line was refused.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from engine.cli_support import json_flag


@click.group("import")
def import_group() -> None:
    """Import records from outside systems (idempotent: importing again creates nothing)."""


def register(main: click.Group) -> None:
    """Attach the ``import`` group to the ``sop`` command (called from cli.py)."""
    main.add_command(import_group)
    main.add_command(notice_group)


@import_group.command("calls")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--as", "staff", required=True, help="Staff id recorded as the importer (front desk or CS supervisor).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.pass_context
def calls(click_ctx: click.Context, file: Path, staff: str, as_json: bool) -> None:
    """Import call-detail records (CSV: call_id, caller, ring_started_at, answered_at, rings, seat).

    Each call becomes a phone_call instance judged on its own ring and answer times (PHN-6).
    """
    from adapters.calls import import_calls
    from engine.cli_support import fail_cleanly

    ctx = click_ctx.obj
    ctx.json = ctx.json or as_json
    ctx.may_create_db = True  # it starts phone_call instances, like `sop start`

    @fail_cleanly
    def run() -> None:
        result = import_calls(ctx.engine, file, staff)
        if as_json or ctx.json:
            click.echo(json.dumps(result.summary(), ensure_ascii=False, indent=2))
        else:
            click.echo(f"calls: {len(result.created)} created, {len(result.existing)} already imported, "
                       f"{len(result.errors)} refused")
        for err in result.errors:
            click.echo(f"{file}:{err.line}: {err.message}", err=True)
        if result.errors:
            sys.exit(1)

    run()


@import_group.command("payments")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--as", "staff", required=True,
              help="Staff id recorded as the importer (finance, front desk): the log says who booked it.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.pass_context
def payments(click_ctx: click.Context, file: Path, staff: str, as_json: bool) -> None:
    """Import payments (CSV: unit, period, amount, paid_at, reference[, channel]).

    Each payment is recorded on the open dunning case of its unit and month (DUN-12), or on
    its fee cycle before dunning; a reference already booked is skipped.
    """
    from adapters.payments import import_payments
    from engine.cli_support import fail_cleanly

    ctx = click_ctx.obj
    ctx.json = ctx.json or as_json

    @fail_cleanly
    def run() -> None:
        result = import_payments(ctx.engine, file, staff)
        if as_json or ctx.json:
            click.echo(json.dumps(result.summary(), ensure_ascii=False, indent=2))
        else:
            full = sum(1 for r in result.recorded if r["paid_in_full"])
            click.echo(f"payments: {len(result.recorded)} recorded ({full} paid in full), "
                       f"{len(result.existing)} already imported, {len(result.errors)} refused")
        for err in result.errors:
            click.echo(f"{file}:{err.line}: {err.message}", err=True)
        if result.errors:
            sys.exit(1)

    run()


@click.group("notice")
def notice_group() -> None:
    """Printed notices (催费通知单, 催费通知书, 律师函, 收费通知单, 维修单) from a case."""


@notice_group.command("render")
@json_flag
@click.argument("instance")
@click.argument("kind")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=Path("."),
              show_default=True, help="Folder to write the notice into.")
@click.option("--at", "at_raw", help="Issue date for a notice the case has not recorded (ISO 8601); default now.")
@click.pass_context
def notice_render(click_ctx: click.Context, instance: str, kind: str, out_dir: Path, at_raw: str | None) -> None:
    """Render notice KIND of case INSTANCE to a UTF-8 text file and print its path.

    KIND: door_notice, notice_1, notice_2, final_notice, lawyer_letter, fee_notice, repair_slip.
    """
    from adapters.notices import render_notice
    from cli import _instance_id, fail_cleanly, parse_time

    ctx = click_ctx.obj

    @fail_cleanly
    def run() -> None:
        eng = ctx.engine
        path = render_notice(eng, _instance_id(instance), kind, out_dir, parse_time(at_raw, eng.org.site.zone))
        if ctx.json:
            click.echo(json.dumps({"instance": int(instance.lstrip("#")), "kind": kind, "file": str(path)}))
        else:
            click.echo(str(path))

    run()
