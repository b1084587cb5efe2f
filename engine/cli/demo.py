"""``sop demo``: one month at the demo site on a fresh embedded database (engine/demo/)."""
from __future__ import annotations

from pathlib import Path

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
                              progress_to=click.get_text_stream("stderr"))
    else:
        result = demo_run.run(settings, click.echo)
    emit(ctx, demo_run.as_json(result), lambda: demo_run.summary(result, click.echo, table))


COMMANDS = (demo,)
