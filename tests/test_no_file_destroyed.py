"""No command overwrites or deletes a file that is not something it made.

``sop demo --db-file FILE`` recreates only a database the demo itself created (an SQLite
file whose ``sop_meta`` says so) and only the notices it rendered; ``sop notice render``
never writes over an existing file; ``sop audit checkpoint`` (tests/test_audit_ledger.py)
never over anything but the same checkpoint. Every refusal is one line and exit 1, and the
file is left byte for byte.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import tests.test_rules_dunning as dun
from cli import main
from engine import demo as demo_run
from engine.runtime.config import Settings, build_engine
from tests.case_helpers import clock, engine, runner  # noqa: F401  (fixtures)
from tests.conftest import ROOT

CLEAN_ENV = {"SOP_DB": None, "SOP_PROCEDURES": None, "SOP_ORG": None}


def demo(db: Path) -> object:
    return CliRunner().invoke(main, ["demo", "--db-file", str(db)], env=CLEAN_ENV)


def refused(result: object, *words: str) -> bool:
    r = result  # type: ignore[assignment]
    return (r.exit_code == 1 and r.stdout == "" and r.stderr.count("\n") == 1  # type: ignore[attr-defined]
            and all(w in r.stderr for w in words) and "Traceback" not in r.output)  # type: ignore[attr-defined]


@pytest.mark.parametrize("content", [b"my thesis, chapter 3\n", b"", b"SQLite format 3\x00" + b"\x00" * 84],
                         ids=["text", "empty", "sqlite-header-only"])
def test_demo_refuses_a_file_that_is_not_a_database_it_created(tmp_path: Path, content: bytes) -> None:
    precious = tmp_path / "notes.db"
    precious.write_bytes(content)
    assert refused(demo(precious), str(precious), "not overwritten")
    assert precious.read_bytes() == content


def test_demo_refuses_an_sqlite_database_of_someone_else(tmp_path: Path) -> None:
    other = tmp_path / "accounts.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE ledger (x)")
        conn.execute("INSERT INTO ledger VALUES (1)")
    before = other.read_bytes()
    assert refused(demo(other), "not a database sop demo created")
    assert other.read_bytes() == before


def test_demo_refuses_a_sop_database_it_did_not_create(tmp_path: Path) -> None:
    db = tmp_path / "sop.db"
    eng = build_engine(Settings(f"sqlite:///{db}", ROOT / "procedures", ROOT / "org" / "demo.yaml"))
    eng.start("complaint", "liu_fang", {"channel": "online", "content": "电梯经常停运", "anonymous": True})
    eng.close()
    before = db.read_bytes()
    assert refused(demo(db), "not a database sop demo created")
    assert db.read_bytes() == before


def test_demo_refuses_a_folder_a_link_and_a_stray_journal(tmp_path: Path) -> None:
    folder = tmp_path / "folder.db"
    folder.mkdir()
    assert refused(demo(folder), "not a regular file") and folder.is_dir()
    target = tmp_path / "target.txt"
    target.write_text("keep", encoding="utf-8")
    link = tmp_path / "link.db"
    link.symlink_to(target)
    assert refused(demo(link), "not a regular file") and target.read_text(encoding="utf-8") == "keep"
    wal = tmp_path / "x.db-wal"
    wal.write_bytes(b"journal of something")
    assert refused(demo(tmp_path / "x.db"), "x.db-wal") and wal.read_bytes() == b"journal of something"


def test_demo_leaves_a_notices_folder_it_did_not_make(tmp_path: Path) -> None:
    notices = tmp_path / "sop-demo-notices"
    notices.mkdir()
    (notices / "letter.txt").write_text("mine", encoding="utf-8")
    assert refused(demo(tmp_path / "sop-demo.db"), "sop-demo-notices", "not touched")
    assert (notices / "letter.txt").read_text(encoding="utf-8") == "mine"
    assert not (tmp_path / "sop-demo.db").exists()


def test_demo_recreates_its_own_database_and_only_its_own_notices(tmp_path: Path) -> None:
    db = tmp_path / "sop-demo.db"
    url = demo_run.fresh_db(db)
    eng = build_engine(Settings(url, ROOT / "procedures", ROOT / "org" / "demo.yaml"))
    notices = demo_run.notices_dir_for(db)
    demo_run.mark_demo(eng, notices)
    eng.close()
    (notices / "rendered.txt").write_text("by the demo", encoding="utf-8")
    (notices / demo_run.NOTICES_MARK).write_text("rendered.txt\n", encoding="utf-8")
    (notices / "added-by-hand.txt").write_text("mine", encoding="utf-8")
    assert demo_run.is_demo_db(db)
    assert demo_run.fresh_db(db) == url and not db.exists()
    assert sorted(p.name for p in notices.iterdir()) == ["added-by-hand.txt"]


def test_notice_render_never_writes_over_an_existing_file(engine, runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = dun.in_ledger(engine)
    out = tmp_path / "out"
    out.mkdir()
    args = ["notice", "render", str(c.id), "door_notice", "--out", str(out), "--at", "2025-09-29T15:00:00+08:00"]
    name = f"dunning-{c.id}-door_notice-3-1201.txt"
    (out / name).write_text("a letter I wrote", encoding="utf-8")
    res = runner.invoke(main, args)
    assert res.exit_code == 0 and Path(res.stdout.strip()).name == f"dunning-{c.id}-door_notice-3-1201-2.txt"
    assert (out / name).read_text(encoding="utf-8") == "a letter I wrote"
    again = runner.invoke(main, args)  # the same notice again: the same file, nothing new
    assert again.stdout == res.stdout and len(list(out.iterdir())) == 2


@pytest.mark.parametrize("command", [["tasks", "--as", "chen_jing"], ["db", "upgrade"], ["audit", "verify"]],
                         ids=["tasks", "db-upgrade", "audit-verify"])
def test_no_command_writes_into_a_file_that_is_not_a_sop_database(tmp_path: Path, command: list[str]) -> None:
    other = tmp_path / "accounts.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE accounts (x)")
        conn.execute("INSERT INTO accounts VALUES (1)")
    text = tmp_path / "notes.txt"
    text.write_text("my notes\n", encoding="utf-8")
    for victim, words in ((other, "a database of something else (tables accounts)"),
                          (text, "is not an SQLite database")):
        before = victim.read_bytes()
        r = CliRunner().invoke(main, ["--db", f"sqlite:///{victim}", *command], env=CLEAN_ENV)
        assert refused(r, str(victim), words, "not touched")
        assert victim.read_bytes() == before  # not even switched to WAL
        assert not Path(f"{victim}-wal").exists() and not Path(f"{victim}-shm").exists()


def test_checking_a_database_file_keeps_this_process_locks_on_it(tmp_path: Path) -> None:
    """Closing any descriptor of a file drops every POSIX lock the process holds on it: the
    file check before opening a database must go through SQLite. Otherwise another process,
    closing its connection, believes it is the last one, checkpoints and deletes the WAL
    under this process's open connection, and the database is corrupted (seen: `sop serve`)."""
    import sqlite3
    import subprocess
    import sys

    from engine.demo import is_demo_db
    from engine.store.migrate import check_sqlite_file

    db = tmp_path / "held.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE instances (id INTEGER)")
    holder.execute("INSERT INTO instances VALUES (1)")   # in the WAL, not yet checkpointed
    check_sqlite_file(db)
    is_demo_db(db)
    subprocess.run([sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                    "c.execute('SELECT count(*) FROM instances').fetchall(); c.close()", str(db)],
                   check=True, timeout=60)
    assert (tmp_path / "held.db-wal").exists()           # the other process saw it was not the last
    holder.close()
