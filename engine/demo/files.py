"""The files ``sop demo`` makes, and the only ones it removes when run again.

The demo marks the database it creates (``sop_meta.created_by``) and lists the notices it
renders; a later run recreates only those. Any other file at ``--db-file`` — not a
database, another sop database, a link, a folder — is refused and left as it is.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from engine.errors import InputError


DEMO_MARK = "sop demo"  # sop_meta.created_by of a database the demo made
NOTICES_MARK = ".sop-demo-notices"  # in the notices folder: the files the demo rendered there


def fresh_db(path: Path) -> str:
    """Remove the previous demo database (and the notices it rendered); its URL, absolute.

    Only a database the demo itself created is removed (an SQLite file whose ``sop_meta``
    says so), and only the notices it listed as rendered; any other file at ``path`` — not
    a database, another sop database, a link, a folder — is refused with an InputError and
    left as it is, and so is a notices folder the demo did not make.
    """
    path = Path(path)
    files = [Path(str(path) + suffix) for suffix in ("", "-wal", "-shm")]
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise InputError("--db-file", f"{path} is not a regular file; not overwritten")
    if path.exists():
        if not is_demo_db(path):
            raise InputError("--db-file", f"{path} exists and is not a database sop demo created; not "
                                          "overwritten (choose another --db-file; a demo file from before "
                                          "this check must be removed by hand)")
    elif any(f.exists() or f.is_symlink() for f in files[1:]):
        raise InputError("--db-file", f"{files[1].name} or {files[2].name} exists without {path.name}; not "
                                      "touched (choose another --db-file)")
    notices = notices_dir_for(path)
    listed = _demo_notices(notices)
    for f in files:
        f.unlink(missing_ok=True)
    for name in listed or []:
        (notices / name).unlink(missing_ok=True)
    if listed is not None or (notices.is_dir() and not any(notices.iterdir())):
        (notices / NOTICES_MARK).unlink(missing_ok=True)
        try:
            notices.rmdir()
        except OSError:  # files the demo did not render: theirs, left alone
            pass
    return f"sqlite:///{path.resolve()}"


def is_demo_db(path: Path) -> bool:
    """Whether ``path`` is an SQLite database whose ``sop_meta`` says sop demo created it
    (read without writing anything: opened read-only, no journal recovery by this check)."""
    from engine.store.overview import created_by_of_file

    if not path.is_file() or path.stat().st_size == 0:
        return False
    return created_by_of_file(path) == DEMO_MARK


def _demo_notices(folder: Path) -> Optional[list[str]]:
    """The notices the demo rendered into ``folder`` (None: not a folder the demo made)."""
    mark = folder / NOTICES_MARK
    if not mark.is_file() or mark.is_symlink():
        if folder.exists() and not folder.is_dir():
            raise InputError("--db-file", f"{folder} exists and is not a folder; not touched")
        if folder.is_dir() and any(folder.iterdir()):
            raise InputError("--db-file", f"{folder} exists and was not made by sop demo; not touched "
                                          "(choose another --db-file)")
        return None
    names = [n for n in mark.read_text(encoding="utf-8").splitlines() if n and "/" not in n and n not in (".", "..")]
    return names


def mark_demo(engine: Any, notices_dir: Path) -> None:
    """Record that the demo made this database (so a later demo may recreate it) and start
    the list of notices it renders."""
    engine.mark_created_by(DEMO_MARK)
    notices_dir.mkdir(parents=True, exist_ok=True)
    (notices_dir / NOTICES_MARK).touch()


def notices_dir_for(db_file: Path) -> Path:
    """The rendered notices go next to the database: ``sop-demo.db`` → ``sop-demo-notices/``."""
    return db_file.resolve().parent / f"{db_file.stem}-notices"
