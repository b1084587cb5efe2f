"""Opening a database: URL handling, SQLite pragmas, write transactions and schema.

SQLite runs in WAL mode with ``synchronous=FULL``: every committed action survives a
power cut, which is what an audit trail promises. Write transactions start with
``BEGIN IMMEDIATE`` so two writers queue on the lock instead of failing half-way with
"database is locked" when a reader upgrades; read-only work uses a deferred ``BEGIN``.
On both SQLite and PostgreSQL (psycopg) an engine's transactions begin and commit on the
driver (``Connections``); the driver backends (engine/store/backends/) run their SQL there.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Iterator, Optional

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import ConnectionPoolEntry

from engine.errors import InputError
from engine.store import tables  # noqa: F401  (registers the tables)
from engine.store import idempotency, outbox, tokens  # noqa: F401  (API keys and delivery tables)

if TYPE_CHECKING:
    import sqlite3

SQLITE_PRAGMAS = ("PRAGMA busy_timeout=30000", "PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                  "PRAGMA foreign_keys=ON")
_PRAGMA_PATIENCE_S = 30.0  # as long as busy_timeout lets a statement wait for a lock


def open_engine(url: str) -> Engine:
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as e:
        raise InputError("--db", f"not a database URL: {url!r}") from e
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    try:
        # READ COMMITTED (PostgreSQL's default) is enough: writers lock the instance row they
        # change, and the revision-guarded UPDATE and the events primary key back that up.
        engine = sa.create_engine(parsed, pool_pre_ping=True, isolation_level="READ COMMITTED")
    except (ImportError, sa.exc.NoSuchModuleError) as e:
        raise InputError("--db", f"no driver for {parsed.drivername}: {e}") from e
    return engine


def sqlite_file(url: str) -> Optional[Path]:
    """The file of an SQLite URL (``sqlite:///sop.db`` → ``sop.db``); None for other databases."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as e:
        raise InputError("--db", f"not a database URL: {url!r}") from e
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:" \
            or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database).expanduser()


def _sqlite_engine(url: sa.URL) -> Engine:
    if url.database and url.database != ":memory:":
        folder = Path(url.database).expanduser().resolve().parent
        if not folder.is_dir():
            raise InputError("--db", f"folder {folder} does not exist")
        from engine.store.migrate import check_sqlite_file

        check_sqlite_file(Path(url.database).expanduser())
    engine = sa.create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        apply_pragmas(dbapi_conn)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Straight to the driver: this runs once per transaction, and a full SQLAlchemy
        # statement execution costs several times what SQLite needs for BEGIN. Inside a
        # transaction Connections began on the driver, SQLAlchemy's (auto)begin joins it.
        driver = driver_of(conn)
        if not driver.in_transaction:
            read_only = conn.get_execution_options().get("sop_read_only")
            driver.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def apply_pragmas(dbapi_conn: Any) -> None:
    """Set SQLITE_PRAGMAS on a new driver connection, waiting out a concurrent WAL switch.

    Several processes opening the same brand-new file race to switch it to WAL, and SQLite
    answers the loser's ``journal_mode=WAL`` with "database is locked" at once, without
    calling the busy handler. The switch is retried until it is done (by us or the other).
    """
    import sqlite3

    deadline = time.monotonic() + _PRAGMA_PATIENCE_S
    pause = 0.001
    for pragma in SQLITE_PRAGMAS:
        while True:
            try:
                dbapi_conn.execute(pragma).fetchall()
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.05)


class DirectConnection(Connection):
    """The connections :class:`Connections` keeps: ``commit()``/``rollback()`` also end a
    transaction begun straight on the driver, as they would end one of SQLAlchemy's own (a
    caller rolling back inside ``Engine.transaction()`` is obeyed), and ``sop_driver`` names
    the driver connection while such a transaction is open (the driver backends run
    there). Made with the public constructor, ``DirectConnection(engine)``: no private
    attribute of the engine or the connection is set or read."""

    sop_driver: Any = None
    # The batch writer holding this transaction's writes while a batch runs in it
    # (engine/runtime/batch.py); an attribute, read once per commit, not a lookup in ``info``.
    sop_batch: Any = None

    def commit(self) -> None:
        if not self.in_transaction() and self._driver_in_transaction():
            driver_of(self).commit()
        else:
            super().commit()

    def rollback(self) -> None:
        if not self.in_transaction() and self._driver_in_transaction():
            driver_of(self).rollback()
        else:
            super().rollback()

    def _driver_in_transaction(self) -> bool:
        return not self.closed and not self.invalidated and driver_in_transaction(driver_of(self))


def driver_of(conn: Connection) -> Any:
    """The driver connection (sqlite3's or psycopg's) under ``conn``. SQLAlchemy types it
    Optional, None once the pooled connection is invalidated, which no caller here sees
    (an invalidated connection raises before its driver is asked for)."""
    driver = conn.connection.driver_connection
    if driver is None:
        raise sa.exc.ResourceClosedError("the connection's driver connection is gone")
    return driver


def driver_in_transaction(driver: Any) -> bool:
    """Whether a driver connection (sqlite3 or psycopg) has a transaction open."""
    status = getattr(driver, "info", None)
    if status is not None and hasattr(status, "transaction_status"):  # psycopg: idle is 0
        return bool(status.transaction_status)
    return bool(driver.in_transaction)


_SQLITE_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
_PG_RETRY_STATES = ("40001", "40P01", "55P03")  # serialization failure, deadlock, lock not available


def busy_reason(err: BaseException) -> Optional[str]:
    """Why the database could not take a command now, if ``err`` says it was busy (a lock held
    by another process, a deadlock broken); None for any other error."""
    orig = getattr(err, "orig", None)
    if not isinstance(err, sa.exc.OperationalError) or orig is None:
        return None
    code = getattr(orig, "sqlite_errorcode", None)
    if code in _SQLITE_BUSY_CODES or (code is None and "database is locked" in str(orig)):
        return str(orig).splitlines()[0]
    if getattr(orig, "sqlstate", None) in _PG_RETRY_STATES:
        return str(orig).splitlines()[0]
    return None


def create_schema(engine: Engine) -> None:
    """Bring the schema to the newest migration (see engine.store.migrate).

    A file that is not a database, or a server that refuses us, is the user's ``--db``
    argument being wrong: it becomes an InputError, not a traceback.
    """
    from engine.store import migrate

    try:
        migrate.ensure_schema(engine)
    except (sa.exc.DatabaseError, sa.exc.InterfaceError) as e:
        reason = str(getattr(e, "orig", e)).splitlines()[0]
        raise InputError("--db", f"cannot use {engine.url.render_as_string(hide_password=True)}: {reason}") from None


@contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """One write transaction: commit on success, roll back on any exception."""
    with engine.connect() as conn:
        with conn.begin():
            yield conn


@contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    with engine.connect().execution_options(sop_read_only=True) as conn:
        with conn.begin():
            yield conn


@contextmanager
def savepoint(conn: Connection) -> Iterator[None]:
    """A SAVEPOINT around part of a transaction: rolled back alone if the block raises.

    On SQLite it goes straight to the driver: SQLAlchemy's ``begin_nested`` compiles a new
    SAVEPOINT statement for every name it makes up, which costs more than a command's own
    statements. (The sweep no longer takes one per firing: a failing firing redoes its batch.)
    """
    # Events noted for the ledger inside the savepoint are forgotten with it (store/ledger.py).
    pending = conn.info.get("sop_ledger_pending")
    noted = len(pending) if pending is not None else 0
    try:
        if conn.dialect.name != "sqlite" or conn.engine.echo:
            with conn.begin_nested():
                yield
            return
        driver = driver_of(conn)
        driver.execute("SAVEPOINT sop_part")
        try:
            yield
        except BaseException:
            driver.execute("ROLLBACK TO sop_part")
            driver.execute("RELEASE sop_part")
            raise
        driver.execute("RELEASE sop_part")
    except BaseException:
        if pending is not None:
            del pending[noted:]
        raise


class Connections:
    """Connections an engine keeps open between its commands, for writing and for reading.

    Checking a connection out of SQLAlchemy's pool, wrapping it in a ``Connection`` and
    returning it costs ~0.1 ms a command, several times SQLite's own ``BEGIN``/``COMMIT``
    (BENCHMARKS.md); a kept connection only begins and commits. A connection goes back to
    the pool instead of being kept when its command failed (it may be broken), when it
    sat idle longer than ``max_idle`` seconds (the pool's pre-ping then checks a server
    connection that may have gone away meanwhile) or when enough are kept already.
    ``close()`` releases them all, so the database file is free for other writers'
    pragmas (or deletion) afterwards.
    """

    def __init__(self, engine: Engine, keep: int = 4, max_idle: float = 30.0) -> None:
        self.engine, self.keep, self.max_idle = engine, keep, max_idle
        self._idle: dict[bool, list[tuple[float, DirectConnection]]] = {False: [], True: []}

    def write(self) -> ContextManager[Connection]:
        """One write transaction: commit on success, roll back on any exception."""
        return self._transaction(read_only=False)

    def read(self) -> ContextManager[Connection]:
        """A read transaction (a deferred ``BEGIN`` on SQLite)."""
        return self._transaction(read_only=True)

    @contextmanager
    def _transaction(self, read_only: bool) -> Iterator[Connection]:
        conn = self._take(read_only)
        if not uses_driver(conn):
            try:
                with conn.begin():
                    yield conn
            except BaseException:
                conn.close()
                raise
            self._give(read_only, conn)
            return
        # BEGIN and COMMIT straight on the driver. SQLAlchemy's transaction objects and
        # events cost ~60-130 us of CPU a transaction (BENCHMARKS.md), a tenth of an action.
        # A statement run through SQLAlchemy inside autobegins its own transaction object,
        # which joins this one (SQLite: see _on_begin; psycopg begins on its first statement
        # either way); it is committed through it then.
        driver = driver_of(conn)
        try:
            if conn.dialect.name == "sqlite":
                begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"
                _on_driver(conn, begin, lambda: driver.execute(begin))
            conn.sop_driver = driver  # the driver backends run on it
            yield conn
            if conn.in_transaction():
                conn.commit()
            else:
                _on_driver(conn, "COMMIT", driver.commit)
        except BaseException:
            _abandon(conn, driver)
            raise
        finally:
            conn.sop_driver = None
        self._give(read_only, conn)

    def _take(self, read_only: bool) -> "DirectConnection":
        idle = self._idle[read_only]
        now = time.monotonic()
        while True:
            try:
                since, conn = idle.pop()  # atomic under the GIL: no two threads get the same one
            except IndexError:
                break
            if now - since <= self.max_idle and not conn.invalidated:
                return conn
            conn.close()
        conn = DirectConnection(self.engine)
        if read_only:
            conn.execution_options(sop_read_only=True)  # (a Connection's options change in place)
        return conn

    def _give(self, read_only: bool, conn: "DirectConnection") -> None:
        idle = self._idle[read_only]
        if conn.invalidated or conn.in_transaction() or len(idle) >= self.keep:
            conn.close()
        else:
            idle.append((time.monotonic(), conn))

    def close(self) -> None:
        """Close every kept connection and dispose of the pool (commands after this reopen)."""
        for idle in self._idle.values():
            while idle:
                idle.pop()[1].close()
        self.engine.dispose()


CORE_ONLY = "sop_core_only"  # execution option: every statement through SQLAlchemy Core (port.backend_for)


def uses_driver(conn: Connection) -> bool:
    """Whether transactions may begin and commit straight on the driver: SQLite
    or psycopg (PostgreSQL), with nobody watching SQLAlchemy's statements (echo or cursor
    event listeners) and no ``CORE_ONLY`` option asking for the general backend."""
    engine = conn.engine
    if engine.dialect.driver not in _DIRECT_DRIVERS or engine.echo or conn.get_execution_options().get(CORE_ONLY):
        return False
    dispatch = engine.dispatch  # cursor listeners on the Engine (or its class): Core only
    return not (dispatch.before_cursor_execute or dispatch.after_cursor_execute)


_DIRECT_DRIVERS = ("pysqlite", "psycopg")


def _on_driver(conn: Connection, sql: str, call: Callable[[], Any]) -> None:
    """Run a driver call, its errors wrapped as SQLAlchemy's own (see ``as_sqlalchemy_error``)."""
    try:
        call()
    except conn.dialect.loaded_dbapi.Error as err:
        raise as_sqlalchemy_error(conn.dialect, sql, (), err) from err


def as_sqlalchemy_error(dialect: Any, sql: str, args: Any, err: Exception,
                        many: bool = False) -> sa.exc.StatementError:
    """A driver's error as SQLAlchemy raises it for the same statement (``OperationalError``
    for "database is locked", ``IntegrityError`` …), so callers of the driver backends catch
    what they would catch off it."""
    return sa.exc.DBAPIError.instance(sql, args, err, dialect.loaded_dbapi.Error, dialect=dialect, ismulti=many)


def _abandon(conn: Connection, driver: Any) -> None:
    """Roll back a failed direct transaction and drop its connection (it may be broken)."""
    try:
        if conn.in_transaction():
            conn.rollback()
        elif driver_in_transaction(driver):
            driver.rollback()
    except Exception:  # noqa: BLE001  (the command's own error is what the caller must see)
        conn.invalidate()
    conn.close()
