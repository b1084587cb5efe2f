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


@click.group("import")
def import_group() -> None:
    """Import records from outside systems (idempotent: importing again creates nothing)."""


def register(main: click.Group) -> None:
    """Attach the ``import`` group to the ``sop`` command (called from cli.py)."""
    main.add_command(import_group)


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
    from cli import fail_cleanly

    ctx = click_ctx.obj

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
