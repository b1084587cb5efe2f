"""Alembic's environment: how migrations reach a database.

At run time ``engine.store.migrate`` passes an open connection (inside its own transaction,
under its lock) in ``config.attributes["connection"]``; no ``alembic.ini`` is involved.
A developer writing the next migration can still use the stock command, e.g.::

    alembic -c engine/store/migrations/alembic.ini -x db=sqlite:///dev.db revision --autogenerate -m "..."

(the small ini there only names this folder). Autogenerate renders the store's own column
types as plain SQLAlchemy ones (``UTCDateTime`` → ``sa.DateTime(timezone=True)``,
SQLModel's ``AutoString`` → ``sa.String()``), so a generated file never needs sqlmodel
or the engine to import; ``tests/test_migrations.py`` checks every file for that.
"""
from __future__ import annotations

import os
from typing import Any

from alembic import context

from engine.store.migrate import metadata, render_item

config = context.config


def _configure(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata(),
        render_item=render_item,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    from engine.store.db import open_engine  # the stock command line: open the database ourselves

    url = context.get_x_argument(as_dictionary=True).get("db") or os.environ.get("SOP_DB") or "sqlite:///sop.db"
    engine = open_engine(url)
    try:
        with engine.begin() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: run `sop db upgrade` against the database")
run()
