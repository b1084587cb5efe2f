"""``sop watch ID`` and ``sop unwatch ID``: follow a case without working on it.

Registered on the ``sop`` group by ``register(main, …)`` at the end of ``cli.py``; the work
is in engine/runtime/watching.py. ``sop tasks --as STAFF --watching`` lists the cases a
person watches. See docs/procedures.md, "Watchers".
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import click

from engine.cli_support import fail_cleanly


def register(main: click.Group, json_flag: Callable[..., Any], pass_ctx: Callable[..., Any],
             show_instance: Callable[..., None], instance_id: Callable[[str], int],
             parse_time: Callable[..., Any]) -> None:
    @main.command()
    @json_flag
    @click.argument("instance")
    @click.option("--as", "staff", required=True, help="Staff id from the org file: who starts watching.")
    @click.option("--at", help="When (ISO 8601); default now.")
    @pass_ctx
    @fail_cleanly
    def watch(ctx: Any, instance: str, staff: str, at: Optional[str]) -> None:
        """Watch INSTANCE: it stays in your `sop tasks --watching` list and you get the
        notifications the procedure sends to its watchers (a steward: only a case they could see)."""
        from engine.runtime import watching

        eng = ctx.engine
        show_instance(ctx, watching.watch(eng, instance_id(instance), staff, parse_time(at, eng.org.site.zone)))

    @main.command()
    @json_flag
    @click.argument("instance")
    @click.option("--as", "staff", required=True, help="Staff id from the org file: who stops watching.")
    @click.option("--at", help="When (ISO 8601); default now.")
    @pass_ctx
    @fail_cleanly
    def unwatch(ctx: Any, instance: str, staff: str, at: Optional[str]) -> None:
        """Stop watching INSTANCE (also a case a rule or a reassignment made you watch)."""
        from engine.runtime import watching

        eng = ctx.engine
        show_instance(ctx, watching.unwatch(eng, instance_id(instance), staff, parse_time(at, eng.org.site.zone)))
