"""The ``sop`` command: the ``main`` group and the topic modules registered on it.

Every command lives in a topic module of ``engine/cli/`` (instances, definitions, clock,
act, watch, audit, serve, staff, outbox, db, imports, notices, demo), each listing its ``COMMANDS``;
they are registered here as engine/api/app.py includes its routers. No business logic
lives in the CLI: every EngineError becomes one line on stderr and exit 1
(``engine/cli/errors.py``); anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import sys
from typing import Optional

import click

from engine.cli import (act, audit, clock, db, definitions, demo, imports, instances, notices, outbox, serve,
                        staff, watch)
from engine.cli.context import Context
from engine.cli.errors import SopGroup

TOPICS = (instances, act, watch, definitions, clock, audit, serve, staff, outbox, db, imports, notices, demo)


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
        sys.stdout.reconfigure(encoding="utf-8")
        sys.stderr.reconfigure(encoding="utf-8")  # type: ignore[union-attr]  # stderr is the same kind of stream as stdout
    click_ctx.obj = Context(db, procedures, org, as_json, calendar)
    if click_ctx.invoked_subcommand is None:  # `sop` alone: the help, on stdout
        click.echo(click_ctx.get_help())


for _topic in TOPICS:
    for _command in _topic.COMMANDS:
        main.add_command(_command)

if __name__ == "__main__":
    main()
