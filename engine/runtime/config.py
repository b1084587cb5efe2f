"""Where things are: database URL, procedures directory and org file, from options or env.

Defaults are the embedded ones: ``sqlite:///sop.db`` in the working directory, the
shipped ``procedures/`` (with ``forms/`` beside it) and the shipped demo organisation.
The working calendar file belongs to the site: ``--calendar``/``SOP_CALENDAR``, else the
``calendar.yaml`` beside the org file, else the shipped one (``WorkCalendar.for_site``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from engine.calendar import WorkCalendar
from engine.clock import Clock, SystemClock
from engine.errors import InputError
from engine.spec.library import SHIPPED_ROOT, Library, load_directory
from engine.spec.org import OrgSpec, load_org

if TYPE_CHECKING:  # (service imports this module)
    from engine.runtime.service import Engine

DEFAULT_DB = "sqlite:///sop.db"


@dataclass(frozen=True)
class Settings:
    db: str
    procedures: Path
    org: Path
    calendar: Optional[Path] = None  # None: beside the org file, else the shipped one

    @classmethod
    def resolve(cls, db: Optional[str], procedures: Optional[str], org: Optional[str],
                calendar: Optional[str] = None) -> "Settings":
        proc_dir = Path(procedures or os.environ.get("SOP_PROCEDURES") or SHIPPED_ROOT / "procedures")
        org_file = Path(org or os.environ.get("SOP_ORG") or SHIPPED_ROOT / "org" / "demo.yaml")
        calendar = calendar or os.environ.get("SOP_CALENDAR") or None
        if not proc_dir.is_dir():
            raise InputError("--procedures", f"{proc_dir} is not a directory")
        if not org_file.is_file():
            raise InputError("--org", f"{org_file} does not exist")
        if calendar is not None and not Path(calendar).is_file():
            raise InputError("--calendar", f"{calendar} does not exist")
        return cls(db or os.environ.get("SOP_DB") or DEFAULT_DB, proc_dir, org_file,
                   Path(calendar) if calendar else None)

    def work_calendar(self) -> WorkCalendar:
        return WorkCalendar.for_site(self.calendar, self.org)

    def require_database(self) -> None:
        require_database(self.db)

    def load(self) -> tuple[Library, OrgSpec]:
        """The checked library and org, memoised while none of their files change.

        A file with problems disables only its own procedure (a form: the procedures using
        it; ``Library.disabled``): every other procedure keeps working, and a command that
        needs a disabled one is refused with the problems (``ProcedureDisabled``).

        Loading and checking every procedure costs about a second of pure Python; a process
        that builds several engines (tests, the API) pays it once per set of file versions.
        """
        key = (self.procedures.resolve(), self.org.resolve(), _fingerprint(self.procedures, self.org))
        if key not in _LOADED:
            org = load_org(self.org)
            _LOADED.clear()
            _LOADED[key] = (load_directory(self.procedures, org.roles), org)
        return _LOADED[key]


_LOADED: dict[tuple, tuple[Library, OrgSpec]] = {}


def _fingerprint(procedures: Path, org: Path) -> tuple:
    files = [org, *sorted(procedures.glob("*.yaml")), *sorted((procedures.parent / "forms").glob("*.yaml"))]
    out = []
    for f in files:
        st = f.stat()
        out.append((str(f), st.st_mtime_ns, st.st_size))
    return tuple(out)


def require_database(url: str) -> None:
    """Refuse an SQLite file that does not exist (a typo in ``--db``) instead of creating it.

    Only the commands that set a database up or start instances create one: ``sop db
    upgrade``, ``sop start``, ``sop import calls`` and ``sop demo``; everything else reads or
    changes what is there.
    """
    from engine.store.db import sqlite_file

    path = sqlite_file(url)
    if path is not None and not path.exists():
        raise InputError("--db", f"{path} does not exist (`sop db upgrade` or `sop start` creates a database)")


def build_engine(settings: Settings, clock: Optional[Clock] = None) -> Engine:
    """The engine with every runtime part wired in (the one place that wires them)."""
    from engine.runtime.service import Engine

    library, org = settings.load()
    return Engine(settings.db, library, org, clock or SystemClock(), settings.work_calendar())
