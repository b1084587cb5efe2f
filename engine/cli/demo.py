"""``sop demo``: one month at the demo site on a fresh embedded database (engine/demo/)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, ContextManager, Optional, TextIO

import click

from engine.cli.context import Context, pass_ctx
from engine.cli.errors import fail_cleanly
from engine.cli.output import emit, json_flag, table
from engine.runtime.config import Settings


@click.command()
@json_flag
@click.option("--db-file", type=click.Path(path_type=Path), default=Path("sop-demo.db"), show_default=True,
              help="SQLite file for the demo (recreated).")
@pass_ctx
@fail_cleanly
def demo(ctx: Context, db_file: Path) -> None:
    """Simulate one month at the demo site on a fresh embedded database and say where it is."""
    from engine import demo as demo_run

    url = demo_run.fresh_db(db_file)
    base = ctx.settings
    settings = Settings(url, base.procedures, base.org, base.calendar)
    # With --json the progress goes to stderr, so stdout is one JSON document.
    if ctx.json:
        result = demo_run.run(settings, lambda line: click.echo(line, err=True),
                              progress=_bar(sys.stderr))  # (click.get_text_stream: gone in Click 9)
    else:
        result = demo_run.run(settings, click.echo, progress=_bar(None))
    emit(ctx, demo_run.as_json(result), lambda: demo_run.summary(result, click.echo, table))


def _bar(stream: Optional[TextIO]) -> Callable[[int, Callable[[], str]], ContextManager[Any]]:
    """The month's progress bar on ``stream`` (stdout when None), the day's label beside it."""

    def progress(length: int, label: Callable[[], str]) -> ContextManager[Any]:
        return click.progressbar(length=length, label="  模拟一个月", show_eta=False, show_percent=True,
                                 item_show_func=lambda _: label(), width=31, file=stream)

    return progress


COMMANDS = (demo,)
