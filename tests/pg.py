"""A throwaway PostgreSQL server for the tests: started once per session, a fresh database per test.

``pg_url`` gives each test its own database, made with ``CREATE DATABASE … TEMPLATE`` from
one that the migrations were run on once (a real ``alembic upgrade`` on PostgreSQL, so
every PostgreSQL test also runs on the migrated schema), and dropped afterwards.

The server comes from the PostgreSQL binaries on the machine (``initdb``, ``pg_ctl``,
``postgres``: ``$SOP_PG_BIN``, then ``PATH``, then ``/usr/lib/postgresql/*/bin``, newest
first). ``initdb`` refuses to run as root, so as root the cluster belongs to an
unprivileged user (``postgres`` if it exists, else ``nobody``) and every server command
runs as that user. The cluster lives in a private temporary folder, listens only on a
Unix socket inside it (no TCP port: test sessions running side by side cannot collide),
trusts local connections, and runs without fsync (nothing here must survive a power cut).
It is stopped and deleted at the end of the session.

With ``SOP_TEST_PG_URL`` set (a server where the tests may create databases, e.g.
``postgresql+psycopg://me@localhost/postgres``) that server is used instead.

Without binaries the PostgreSQL tests are skipped, with the reason — unless
``SOP_REQUIRE_PG`` is set (``.ci/run`` sets it), where they fail instead: CI must run them.
"""
from __future__ import annotations

import atexit
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

EXTERNAL_ENV = "SOP_TEST_PG_URL"
REQUIRE_ENV = "SOP_REQUIRE_PG"
BIN_ENV = "SOP_PG_BIN"
TEMPLATE = "sop_template"
SERVER_SETTINGS = {
    "listen_addresses": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "log_min_messages": "warning",
}
# The same server with PostgreSQL's own durability (every commit waits for its WAL fsync),
# for measuring persisted actions (bench/bench_suite.py goal d).
DURABLE_SETTINGS = {k: v for k, v in SERVER_SETTINGS.items()
                    if k not in ("fsync", "synchronous_commit", "full_page_writes")}


def find_bindir() -> Optional[Path]:
    """A folder holding initdb, pg_ctl and postgres, or None."""
    candidates: list[Path] = []
    if os.environ.get(BIN_ENV):
        candidates.append(Path(os.environ[BIN_ENV]))
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).resolve().parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _major(p.parent.name),
                         reverse=True)
    for d in candidates:
        if all((d / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return d
    return None


def _major(name: str) -> int:
    return int(name) if name.isdigit() else 0


def _server_user() -> Optional[pwd.struct_passwd]:
    """Who runs the server: ourselves, or (as root) an unprivileged account."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' account exists for initdb")


class PgServer:
    """One PostgreSQL cluster in a temporary folder (see the module docstring)."""

    def __init__(self, bindir: Path, settings: Optional[dict[str, str]] = None) -> None:
        self.bindir = bindir
        self.settings = SERVER_SETTINGS if settings is None else settings
        self.user = _server_user()
        self.root = Path(tempfile.mkdtemp(prefix="sop-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.started = False
        self._admin: Any = None
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)

    # -------------------------------------------------------------- processes

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        kw: dict[str, object] = {}
        if self.user is not None:
            kw = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        env = {"PATH": f"{self.bindir}:{os.environ.get('PATH', '')}", "LANG": "C", "LC_ALL": "C",
               "HOME": str(self.root), "TZ": "UTC"}
        return subprocess.run([str(self.bindir / args[0]), *args[1:]], cwd=self.root, env=env, capture_output=True,
                              text=True, timeout=timeout, **kw)  # type: ignore[call-overload]

    def start(self) -> "PgServer":
        reap_orphans(self.bindir)
        (self.root / "owner.pid").write_text(str(os.getpid()))
        r = self._run("initdb", "-D", str(self.data), "-U", "sop", "-A", "trust", "-E", "UTF8", "--locale=C",
                      "--no-sync", "--no-instructions")
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        options = " ".join(f"-c {k}={v!r}" if v == "" else f"-c {k}={v}" for k, v in self.settings.items())
        options += f" -c unix_socket_directories={self.root}"
        r = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start")
        if r.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n{log}")
        self.started = True
        return self

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self.started:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)

    # -------------------------------------------------------------- databases

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://sop@/{database}?host={self.root}"

    def admin(self, sql: str) -> None:
        import psycopg

        if self._admin is None or self._admin.closed:
            self._admin = psycopg.connect(host=str(self.root), user="sop", dbname="postgres", autocommit=True)
        self._admin.execute(sql)  # type: ignore[arg-type]


def reap_orphans(bindir: Path) -> None:
    """Stop and delete the clusters of earlier test sessions that died without cleaning up."""
    for root in Path(tempfile.gettempdir()).glob("sop-pg-*"):
        try:
            owner = int((root / "owner.pid").read_text())
            os.kill(owner, 0)
            continue  # its session is still running
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue  # not ours to judge (no owner file yet, or another user's)
        if (root / "data" / "postmaster.pid").exists():
            stale = PgServer.__new__(PgServer)
            stale.bindir, stale.user, stale.root = bindir, _server_user(), root
            stale._run("pg_ctl", "-D", str(root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


class ExternalServer:
    """A server someone else runs (``SOP_TEST_PG_URL``)."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.base = sa.engine.make_url(url)

    def url(self, database: str) -> str:
        return self.base.set(database=database).render_as_string(hide_password=False)

    def admin(self, sql: str) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine(self.base, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(sql)
        finally:
            engine.dispose()

    def stop(self) -> None:
        pass


class Databases:
    """Fresh databases cloned from a migrated template."""

    def __init__(self, server: "PgServer | ExternalServer", prefix: str) -> None:
        self.server, self.prefix = server, prefix
        self._names = itertools.count(1)
        self.template = f"{prefix}_{TEMPLATE}"
        self.startup_seconds = 0.0

    def prepare(self) -> None:
        from engine.store import migrate
        from engine.store.db import open_engine

        self.server.admin(f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)")
        self.server.admin(f"CREATE DATABASE {self.template}")
        engine = open_engine(self.server.url(self.template))
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()

    def new(self, migrated: bool = True) -> str:
        """A new database: migrated (a copy of the template), or blank."""
        name = f"{self.prefix}_t{next(self._names)}"
        template = self.template if migrated else "template0"
        self.server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.server.admin(f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY")
        return name

    def drop(self, name: str) -> None:
        self.server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"PostgreSQL is required here ({REQUIRE_ENV} is set) but {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[Databases]:
    """The session's PostgreSQL server (started on first use) and its database factory."""
    begin = time.perf_counter()
    external = os.environ.get(EXTERNAL_ENV)
    server: "PgServer | ExternalServer"
    if external:
        server, prefix = ExternalServer(external), f"sop_test_{os.getpid()}"
    else:
        bindir = find_bindir()
        if bindir is None:
            unavailable(f"no PostgreSQL server binaries (initdb, pg_ctl, postgres) found on PATH, in ${BIN_ENV} "
                        "or under /usr/lib/postgresql/*/bin; install PostgreSQL 15 to run them")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            unavailable("the psycopg driver is not installed (pip install -e '.[test]')")
        server, prefix = PgServer(bindir), "sop"  # type: ignore[arg-type]
        atexit.register(server.stop)  # also when the session dies before its finalizers run
        try:
            server.start()
        except Exception:
            server.stop()
            raise
    dbs = Databases(server, prefix)
    try:
        dbs.prepare()
        dbs.startup_seconds = time.perf_counter() - begin
        yield dbs
    finally:
        if external:
            server.admin(f"DROP DATABASE IF EXISTS {dbs.template} WITH (FORCE)")
        server.stop()


@pytest.fixture
def pg_url(pg_databases: Databases) -> Iterator[str]:
    """URL of a fresh, migrated PostgreSQL database of this test's own."""
    name = pg_databases.new()
    try:
        yield pg_databases.server.url(name)
    finally:
        pg_databases.drop(name)


@pytest.fixture
def pg_blank_url(pg_databases: Databases) -> Iterator[str]:
    """URL of an empty PostgreSQL database (no tables) of this test's own."""
    name = pg_databases.new(migrated=False)
    try:
        yield pg_databases.server.url(name)
    finally:
        pg_databases.drop(name)


def fresh_urls(request: pytest.FixtureRequest, tmp_path: Path, database: str) -> Callable[[str], str]:
    """A maker of fresh, migrated databases of one kind (``sqlite`` or ``postgresql``) for
    a test that compares several: one per name asked for, dropped when the test ends."""
    if database == "sqlite":
        return lambda name: f"sqlite:///{tmp_path / (name + '.db')}"
    request.getfixturevalue("pg_url")  # skips (or fails under SOP_REQUIRE_PG) without a server
    dbs = request.getfixturevalue("pg_databases")
    made: list[str] = []
    request.addfinalizer(lambda: [dbs.drop(n) for n in made])

    def new(_name: str) -> str:
        made.append(dbs.new())
        return str(dbs.server.url(made[-1]))

    return new


STORED_TABLES = ("instances", "events", "timers", "outbox", "ledger", "ledger_head", "procedure_versions")


def stored_rows(url: str, tables: tuple[str, ...] = STORED_TABLES) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``tables`` as the database keeps it: SQLite's own values (the stored text,
    0/1), or psycopg's for PostgreSQL (times as the server's timestamptz). For tests that
    compare two databases the same commands (or their replay) wrote."""
    if url.startswith("sqlite:///"):
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as pconn:
        return {t: pconn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}
