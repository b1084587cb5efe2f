"""Schema migrations: Alembic, configured in code, run under a lock.

The migrations live in ``engine/store/migrations/versions`` and are the only way the
schema is made or changed, on SQLite and PostgreSQL alike. ``upgrade`` brings a database
to the newest revision (``sop db upgrade``); ``ensure_schema`` is what every process does
when it opens a database (``Engine`` calls it through ``db.create_schema``):

- at the newest revision already: one cheap query, nothing else;
- older (or never migrated): a real upgrade, in one transaction, under a lock — a
  PostgreSQL advisory lock, SQLite's write lock (``BEGIN IMMEDIATE``) — so several
  processes starting at once upgrade it once;
- a brand-new, empty SQLite file: the statements that running the migrations on an
  in-memory SQLite database produced, replayed. The migrations run once per process
  (about 100 ms); the replay costs about a millisecond, and the suite makes hundreds of
  fresh databases. The schema is the migrations' own output, so it cannot drift from a
  real upgrade the way ``create_all`` + ``stamp`` could.

A database at a revision this code does not know (made by a newer ``sop``) is refused.
"""
from __future__ import annotations

import importlib
import pkgutil
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from engine.errors import InputError

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
_PG_LOCK = 0x736F70_6D6967  # pg_advisory_xact_lock key: "sop" "mig"
# Alembic keeps the running migration in module-global proxies (``alembic.context``,
# ``alembic.op``), so two threads of one process must not run migrations at once.
_ALEMBIC = threading.Lock()


def metadata() -> sa.MetaData:
    """The models' metadata, with every table module of the store imported."""
    import engine.store as store
    from sqlmodel import SQLModel

    for mod in pkgutil.iter_modules(store.__path__):
        if mod.name not in ("migrate", "migrations"):
            importlib.import_module(f"engine.store.{mod.name}")
    return SQLModel.metadata


def render_item(type_: str, obj: Any, _autogen: Any) -> Any:
    """Autogenerate hook: the store's column types written as plain SQLAlchemy types."""
    if type_ == "type":
        from sqlmodel.sql.sqltypes import AutoString

        from engine.store.tables import UTCDateTime

        if isinstance(obj, UTCDateTime):
            return "sa.DateTime(timezone=True)"
        if isinstance(obj, AutoString):
            return "sa.String()" if obj.length is None else f"sa.String(length={obj.length})"
    return False


@lru_cache(maxsize=1)
def script() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


def head() -> str:
    rev = script().get_current_head()
    assert rev is not None, "no migrations found"
    return rev


def alembic_config(connection: Optional[Connection] = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def current(conn: Connection) -> Optional[str]:
    """The database's revision, or None if it was never migrated."""
    return MigrationContext.configure(conn).get_current_revision()


def _known(rev: Optional[str]) -> None:
    if rev is None:
        return
    try:
        script().get_revision(rev)
    except Exception as e:  # alembic raises ResolutionError / CommandError subclasses
        raise InputError("--db", f"the database schema is at revision {rev}, which this sop does not know "
                                 f"(newest here: {head()}); it was made by a newer sop") from e


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
    # SQLite: the engine's write transactions begin with BEGIN IMMEDIATE, which is the lock.


def upgrade(engine: Engine, revision: str = "head") -> tuple[Optional[str], Optional[str]]:
    """Run the migrations up to ``revision``; (revision before, revision after)."""
    with engine.begin() as conn:
        _lock(conn)
        before = current(conn)
        _known(before)
        if before is None:
            _not_foreign(conn)
        with _ALEMBIC:
            command.upgrade(alembic_config(conn), revision)
        return before, current(conn)


SOP_TABLES = ("instances", "events", "procedure_versions", "timers", "outbox")


def _not_foreign(conn: Connection) -> None:
    """An SQLite file that holds tables but none of sop's is another program's database:
    refused, never written into (a database sop made before migrations existed has some of
    sop's tables and is adopted)."""
    if conn.dialect.name != "sqlite":
        return
    names = set(sa.inspect(conn).get_table_names())
    if names and not names & set(SOP_TABLES):
        shown = ", ".join(sorted(names)[:5]) + (", …" if len(names) > 5 else "")
        raise InputError("--db", f"{conn.engine.url.database} is a database of something else (tables {shown}), "
                                 "not sop's; not touched")


class NotSQLite(Exception):
    """The file is not an SQLite database."""


def read_sqlite(path: Path, query: str) -> list[tuple[Any, ...]]:
    """Rows of a read-only query on an SQLite file, through SQLite itself.

    Never a plain ``open()``/``close()`` of the file: closing any descriptor of a file drops
    every POSIX lock this process holds on it, so SQLite connections of this same process
    (a server's sweep, mid-transaction) would lose theirs and a second writer could corrupt
    the database. SQLite's own opens share one descriptor per file and keep the locks.
    Raises NotSQLite for a file that is not a database, sqlite3.Error for the rest.
    """
    import sqlite3

    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return list(conn.execute(query))
    except sqlite3.DatabaseError as e:
        if getattr(e, "sqlite_errorname", "") == "SQLITE_NOTADB":
            raise NotSQLite(str(path)) from None
        raise
    finally:
        conn.close()


def check_sqlite_file(path: Path) -> None:
    """Before a connection touches it (sop's pragmas switch a file to WAL mode, a write): an
    existing, non-empty file must be an SQLite database that is sop's (or a brand-new one);
    anything else is refused, the file left byte for byte as it was."""
    import sqlite3

    try:
        if not path.is_file() or path.stat().st_size == 0:
            return
        names = {r[0] for r in read_sqlite(path, "SELECT name FROM sqlite_master WHERE type = 'table' "
                                                 "AND name NOT LIKE 'sqlite_%'")}
    except NotSQLite:
        raise InputError("--db", f"{path} is not an SQLite database; not touched") from None
    except (OSError, sqlite3.Error):
        return  # (a database mid-recovery, say: the ordinary open reports or recovers it)
    if names and not names & set(SOP_TABLES):
        shown = ", ".join(sorted(names)[:5]) + (", …" if len(names) > 5 else "")
        raise InputError("--db", f"{path} is a database of something else (tables {shown}), not sop's; not touched")


def display_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def _opened(url: str, work: Any) -> Any:
    """Run ``work(engine)`` on a database opened from ``url``; a refusal if it cannot be reached."""
    from engine.store.db import open_engine

    engine = open_engine(url)
    try:
        return work(engine)
    except sa.exc.OperationalError as e:
        raise InputError("--db", f"cannot reach {display_url(url)}: {str(e.orig).strip()}") from e
    finally:
        engine.dispose()


def upgrade_url(url: str, revision: str = "head") -> tuple[Optional[str], Optional[str]]:
    """``sop db upgrade``: :func:`upgrade` on the database at ``url``."""
    return _opened(url, lambda engine: upgrade(engine, revision))


def current_url(url: str) -> tuple[Optional[str], str]:
    """``sop db current``: (the database's revision, the newest revision here)."""
    def read(engine: Engine) -> Optional[str]:
        with engine.connect().execution_options(sop_read_only=True) as conn:
            with conn.begin():
                return _read_version(conn)

    return _opened(url, read), head()


def ensure_schema(engine: Engine) -> None:
    """Bring the database to the newest revision if it is not there yet (see module doc)."""
    target = head()
    with engine.connect().execution_options(sop_read_only=True) as conn:
        with conn.begin():
            rev = _read_version(conn)
    if rev == target:
        return
    _known(rev)
    if engine.dialect.name == "sqlite" and rev is None and _replay_template(engine, target):
        return
    upgrade(engine)


def _read_version(conn: Connection) -> Optional[str]:
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    revs = [r[0] for r in conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))]
    return revs[0] if len(revs) == 1 else None


# ---------------------------------------------------------------- brand-new SQLite files

@lru_cache(maxsize=4)
def _sqlite_schema(target: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(DDL statements, version rows) that the migrations leave in an empty SQLite database."""
    mem = sa.create_engine("sqlite://")
    try:
        with _ALEMBIC, mem.begin() as conn:
            command.upgrade(alembic_config(conn), target)
            ddl = tuple(r[0] for r in conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid"))
            versions = tuple(r[0] for r in conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}"))
    finally:
        mem.dispose()
    return ddl, versions


def _replay_template(engine: Engine, target: str) -> bool:
    """Give an empty SQLite database the migrated schema; False if it is not empty."""
    ddl, versions = _sqlite_schema(target)
    with engine.begin() as conn:  # BEGIN IMMEDIATE: a second process waits, then finds tables
        if conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar_one():
            return False
        for statement in ddl:
            conn.exec_driver_sql(statement)
        for v in versions:
            conn.execute(sa.text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:v)"), {"v": v})
    return True
