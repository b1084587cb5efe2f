"""``sop import calls|payments``: bring records from outside systems into the engine.

Each subcommand hands its file to an adapter (adapters/calls.py, adapters/payments.py) and
prints what was created, what was already there (imports are idempotent) and which lines
were refused. A refused line never stops the good ones; the exit code is 1 when any line
was refused.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from engine.cli.context import Context, pass_ctx
from engine.cli.errors import fail_cleanly
from engine.cli.output import emit, json_flag


@click.group("import")
def import_group() -> None:
    """Import records from outside systems (idempotent: importing again creates nothing)."""


@import_group.command("calls")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--as", "staff", required=True, help="Staff id recorded as the importer (front desk or CS supervisor).")
@json_flag
@pass_ctx
@fail_cleanly
def calls(ctx: Context, file: Path, staff: str) -> None:
    """Import call-detail records (CSV: call_id, caller, ring_started_at, answered_at, rings, seat).

    Each call becomes a phone_call instance judged on its own ring and answer times (PHN-6).
    """
    from adapters.calls import import_calls

    ctx.may_create_db = True  # it starts phone_call instances, like `sop start`
    result = import_calls(ctx.engine, file, staff)
    emit(ctx, result.summary(), lambda: click.echo(
        f"calls: {len(result.created)} created, {len(result.existing)} already imported, "
        f"{len(result.errors)} refused"))
    _refused_lines(file, result.errors)


@import_group.command("payments")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--as", "staff", required=True,
              help="Staff id recorded as the importer (finance, front desk): the log says who booked it.")
@json_flag
@pass_ctx
@fail_cleanly
def payments(ctx: Context, file: Path, staff: str) -> None:
    """Import payments (CSV: unit, period, amount, paid_at, reference[, channel]).

    Each payment is recorded on the open dunning case of its unit and month (DUN-12), or on
    its fee cycle before dunning; a reference already booked is skipped.
    """
    from adapters.payments import import_payments

    result = import_payments(ctx.engine, file, staff)
    full = sum(1 for r in result.recorded if r["paid_in_full"])
    emit(ctx, result.summary(), lambda: click.echo(
        f"payments: {len(result.recorded)} recorded ({full} paid in full), "
        f"{len(result.existing)} already imported, {len(result.errors)} refused"))
    _refused_lines(file, result.errors)


def _refused_lines(file: Path, errors: list[Any]) -> None:
    """One ``file:line: why`` on stderr per refused line, then exit 1 if there was any."""
    for err in errors:
        click.echo(f"{file}:{err.line}: {err.message}", err=True)
    if errors:
        sys.exit(1)


COMMANDS = (import_group,)
