"""``sop db upgrade`` and ``sop db current``: the database schema, through Alembic migrations.

Every other command upgrades the schema on its own when it opens the database;
``sop db upgrade`` does it explicitly (before starting new ``sop serve`` / ``sop worker``
processes, say) and says from which revision to which. Neither needs the procedures or
the org file.
"""
from __future__ import annotations

import click

from engine.cli.context import Context, pass_ctx
from engine.cli.errors import fail_cleanly
from engine.cli.output import emit, json_flag
from engine.runtime.config import DEFAULT_DB, require_database


@click.group()
def db() -> None:
    """The database schema (Alembic migrations)."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Migrate up to this revision.")
@json_flag
@pass_ctx
@fail_cleanly
def upgrade(ctx: Context, revision: str) -> None:
    """Create or upgrade the schema of the --db database."""
    from engine.store import migrate

    url = ctx.db or DEFAULT_DB
    before, after = migrate.upgrade_url(url, revision)
    payload = {"database": migrate.display_url(url), "from": before, "to": after, "head": migrate.head()}
    if before == after:
        human = f"{payload['database']}: already at revision {after}"
    else:
        human = f"{payload['database']}: upgraded from {before or '(empty)'} to {after}"
    emit(ctx, payload, lambda: click.echo(human))


@db.command()
@json_flag
@pass_ctx
@fail_cleanly
def current(ctx: Context) -> None:
    """Show the schema revision of the --db database and the newest one."""
    from engine.store import migrate

    url = ctx.db or DEFAULT_DB
    require_database(url)
    rev, head = migrate.current_url(url)
    payload = {"database": migrate.display_url(url), "current": rev, "head": head, "up_to_date": rev == head}
    state = "up to date" if rev == head else "needs `sop db upgrade`"
    emit(ctx, payload,
         lambda: click.echo(f"{payload['database']}: revision {rev or '(none)'}, newest {head} ({state})"))


COMMANDS = (db,)
