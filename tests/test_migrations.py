"""Alembic migrations: they make exactly the models' schema, on SQLite and PostgreSQL.

The schema test imports every module of ``engine`` and ``adapters`` first, so a table
model added anywhere without a migration shows up as a difference here (and the test
below proves the comparison would see it).
"""
from __future__ import annotations

import ast
import builtins
import importlib
import pkgutil
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata, render_python_code
from alembic.migration import MigrationContext
from alembic.operations import ops

from engine.errors import InputError
from engine.store import migrate
from engine.store.db import open_engine

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'blank.db'}"
    return str(request.getfixturevalue("pg_blank_url"))


def every_table_model() -> sa.MetaData:
    """The models' metadata after importing every module of the product (not only the store)."""
    import adapters
    import engine

    for package in (engine, adapters):
        for mod in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not mod.name.startswith("engine.store.migrations"):
                importlib.import_module(mod.name)
    return migrate.metadata()


def schema_diff(engine: sa.Engine, metadata: sa.MetaData) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return list(compare_metadata(context, metadata))


def test_the_migrations_make_exactly_the_models_schema(blank_url: str) -> None:
    engine = open_engine(blank_url)
    try:
        assert migrate.upgrade(engine) == (None, migrate.head())
        diff = schema_diff(engine, every_table_model())
        assert diff == [], ("the models and the migrations differ; write a migration in "
                            "engine/store/migrations/versions for: " + repr(diff))
    finally:
        engine.dispose()


def test_the_comparison_sees_a_table_that_has_no_migration(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'sop.db'}")
    migrate.upgrade(engine)
    models = sa.MetaData()
    for table in every_table_model().tables.values():
        table.to_metadata(models)
    sa.Table("newly_added", models, sa.Column("id", sa.Integer, primary_key=True))
    diff = schema_diff(engine, models)
    assert [(d[0], d[1].name) for d in diff] == [("add_table", "newly_added")]


def test_tables_covered_by_the_migrations() -> None:
    """The list the issue note gives; update it with the migration that adds a table."""
    assert sorted(every_table_model().tables) == [
        "api_requests", "api_tokens", "events", "instances", "ledger", "ledger_head", "outbox", "outbox_attempts",
        "procedure_versions", "sop_meta", "staff_passwords", "timers"]


def test_a_new_sqlite_file_gets_the_schema_a_real_upgrade_makes(tmp_path: Path) -> None:
    fast, real = tmp_path / "fast.db", tmp_path / "real.db"
    migrate.ensure_schema(open_engine(f"sqlite:///{fast}"))
    migrate.upgrade(open_engine(f"sqlite:///{real}"))

    def schema(path: Path) -> list[tuple[str, str]]:
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()

    assert schema(fast) == schema(real)
    with sqlite3.connect(fast) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(migrate.head(),)]


def test_a_database_made_before_migrations_is_adopted_with_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = open_engine(url)
    metadata = every_table_model()
    metadata.tables["procedure_versions"].create(old)  # an early create_all made only some tables
    metadata.tables["instances"].create(old)
    with old.begin() as conn:
        conn.execute(sa.text("INSERT INTO procedure_versions VALUES ('complaint', 'v1', '{}', '2025-10-09 01:00:00')"))
    migrate.ensure_schema(old)
    assert schema_diff(old, metadata) == []
    with old.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM procedure_versions")).scalar_one() == 1
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == migrate.head()


def test_a_database_from_a_newer_sop_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    engine = open_engine(url)
    migrate.ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'f00d'"))
    with pytest.raises(InputError, match="f00d.*newer sop"):
        migrate.ensure_schema(engine)


def _at_once(engines: list[sa.Engine], work: Any) -> list[BaseException]:
    """Run ``work(engine)`` for every engine, each in its own thread, released together;
    what they raised."""
    errors: list[BaseException] = []
    gate = threading.Barrier(len(engines))

    def run(e: sa.Engine) -> None:
        gate.wait()
        try:
            work(e)
        except BaseException as err:  # collected for the assertion
            errors.append(err)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    return errors


def test_processes_opening_an_empty_database_at_once_migrate_it_once(blank_url: str) -> None:
    engines = [open_engine(blank_url) for _ in range(4)]
    errors = _at_once(engines, migrate.ensure_schema)
    assert errors == []
    with engines[0].connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [migrate.head()]
    assert schema_diff(engines[0], every_table_model()) == []
    for e in engines:
        e.dispose()


def test_connections_opening_a_new_sqlite_file_at_once_all_get_wal(tmp_path: Path) -> None:
    """SQLite refuses the loser of a race to switch a new file to WAL at once, without
    waiting; before the retry about one round in three failed with "database is locked"."""
    for round_ in range(20):
        engines = [open_engine(f"sqlite:///{tmp_path / f'new{round_}.db'}") for _ in range(4)]
        modes: list[str] = []

        def connect(e: sa.Engine) -> None:
            with e.connect() as conn:
                modes.append(conn.exec_driver_sql("PRAGMA journal_mode").scalar_one())

        errors = _at_once(engines, connect)
        for e in engines:
            e.dispose()
        assert errors == [] and modes == ["wal"] * 4, f"round {round_}"


# ------------------------------------------------------------------ the migration files themselves

VERSIONS = sorted(p for p in (migrate.MIGRATIONS / "versions").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", VERSIONS, ids=[p.name for p in VERSIONS])
def test_a_migration_uses_only_names_it_defines_or_imports(path: Path) -> None:
    """The autogenerate trap: ``sqlmodel.sql.sqltypes.AutoString()`` without ``import sqlmodel``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    defined = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    assert used - defined == set(), f"{path.name} uses names it never imports"


def test_autogenerate_writes_the_store_types_as_plain_sqlalchemy() -> None:
    metadata = every_table_model()
    upgrade = ops.UpgradeOps(ops=[ops.CreateTableOp.from_table(metadata.tables["timers"])])
    code = render_python_code(upgrade, render_item=migrate.render_item)
    assert "sqlmodel" not in code and "UTCDateTime" not in code
    assert "sa.DateTime(timezone=True)" in code and "sa.String()" in code


def test_the_migrations_are_one_line_of_history() -> None:
    script = migrate.script()
    assert len(script.get_heads()) == 1 and [r.revision for r in script.walk_revisions()][-1] == "0001"


def test_the_sweep_claim_walks_the_partial_due_time_index_on_postgresql(pg_url: str) -> None:
    from datetime import datetime, timezone

    from engine.store import timers

    engine = open_engine(pg_url)
    sent: list[tuple[str, Any]] = []
    sa.event.listen(engine, "before_cursor_execute", lambda _c, _cur, stmt, params, _ctx, _many:
                    sent.append((stmt, params)))
    with engine.begin() as conn:
        timers.lock_due(conn, datetime.now(timezone.utc), 50)
    statement, params = sent[-1]
    assert "FOR UPDATE OF instances, timers SKIP LOCKED" in statement
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # an empty table: ask whether the index can serve
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, params))
    engine.dispose()
    assert "ix_timers_next_fire" in plan, plan
