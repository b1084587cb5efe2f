"""``sop watch ID`` and ``sop unwatch ID``: follow a case without working on it.

The work is in engine/runtime/watching.py. ``sop tasks --as STAFF --watching``
(engine/cli/instances.py) lists the cases a person watches. See docs/procedures.md,
"Watchers".
"""
from __future__ import annotations

from typing import Optional

import click

from engine.cli.context import Context, pass_ctx
from engine.cli.errors import fail_cleanly
from engine.cli.instances import show_instance
from engine.cli.output import json_flag
from engine.cli.parsing import instance_id, parse_time


@click.command()
@json_flag
@click.argument("instance")
@click.option("--as", "staff", required=True, help="Staff id from the org file: who starts watching.")
@click.option("--at", help="When (ISO 8601); default now.")
@pass_ctx
@fail_cleanly
def watch(ctx: Context, instance: str, staff: str, at: Optional[str]) -> None:
    """Watch INSTANCE: it stays in your `sop tasks --watching` list and you get the
    notifications the procedure sends to its watchers (a steward: only a case they could see)."""
    from engine.runtime import watching

    eng = ctx.engine
    show_instance(ctx, watching.watch(eng, instance_id(instance), staff, parse_time(at, eng.org.site.zone)))


@click.command()
@json_flag
@click.argument("instance")
@click.option("--as", "staff", required=True, help="Staff id from the org file: who stops watching.")
@click.option("--at", help="When (ISO 8601); default now.")
@pass_ctx
@fail_cleanly
def unwatch(ctx: Context, instance: str, staff: str, at: Optional[str]) -> None:
    """Stop watching INSTANCE (also a case a rule or a reassignment made you watch)."""
    from engine.runtime import watching

    eng = ctx.engine
    show_instance(ctx, watching.unwatch(eng, instance_id(instance), staff, parse_time(at, eng.org.site.zone)))


COMMANDS = (watch, unwatch)
