"""``sop db upgrade`` and ``sop db current``: the database schema, through Alembic migrations.

Registered on the ``sop`` group by ``register(main)`` at the end of ``cli.py``. Every other
command upgrades the schema on its own when it opens the database; ``sop db upgrade`` does
it explicitly (before starting new ``sop serve`` / ``sop worker`` processes, say) and says
from which revision to which. Neither needs the procedures or the org file.
"""
from __future__ import annotations

import json
from typing import Any

import click

from engine.cli_support import fail_cleanly, json_flag

from engine.runtime.config import DEFAULT_DB, require_database


def _say(payload: dict[str, Any], human: str) -> None:
    obj = click.get_current_context().obj
    if obj is not None and obj.json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        click.echo(human)


def _url() -> str:
    obj = click.get_current_context().obj
    return (obj.db if obj is not None else None) or DEFAULT_DB


@click.group()
def db() -> None:
    """The database schema (Alembic migrations)."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Migrate up to this revision.")
@json_flag
@fail_cleanly
def upgrade(revision: str) -> None:
    """Create or upgrade the schema of the --db database."""
    from engine.store import migrate

    url = _url()
    before, after = migrate.upgrade_url(url, revision)
    payload = {"database": migrate.display_url(url), "from": before, "to": after, "head": migrate.head()}
    if before == after:
        human = f"{payload['database']}: already at revision {after}"
    else:
        human = f"{payload['database']}: upgraded from {before or '(empty)'} to {after}"
    _say(payload, human)


@db.command()
@json_flag
@fail_cleanly
def current() -> None:
    """Show the schema revision of the --db database and the newest one."""
    from engine.store import migrate

    url = _url()
    require_database(url)
    rev, head = migrate.current_url(url)
    payload = {"database": migrate.display_url(url), "current": rev, "head": head, "up_to_date": rev == head}
    state = "up to date" if rev == head else "needs `sop db upgrade`"
    _say(payload, f"{payload['database']}: revision {rev or '(none)'}, newest {head} ({state})")


def register(main: click.Group) -> None:
    main.add_command(db)
