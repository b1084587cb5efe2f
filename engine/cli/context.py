"""The one context object of a ``sop`` run and the one way commands reach it.

``main`` (cli.py) makes a ``Context`` from the global options; every command takes it
with ``@pass_ctx``. The engine is built on first use, so ``sop lint`` or ``sop schema``
never need a database and a broken procedure file is reported before a missing one.
"""
from __future__ import annotations

from typing import Any, Optional

import click

from engine.runtime.config import Settings, build_engine


class Context:
    def __init__(self, db: Optional[str], procedures: Optional[str], org: Optional[str], as_json: bool,
                 calendar: Optional[str] = None) -> None:
        self.db, self.procedures, self.org, self.json, self.calendar = db, procedures, org, as_json, calendar
        self.may_create_db = False  # set by the commands that start instances: start, import calls
        self._engine: Any = None

    @property
    def settings(self) -> Settings:
        return Settings.resolve(self.db, self.procedures, self.org, self.calendar)

    @property
    def engine(self) -> Any:
        if self._engine is None:
            settings = self.settings
            settings.load()  # a broken procedure or org file is reported before a missing database
            if not self.may_create_db:
                settings.require_database()
            self._engine = build_engine(settings)
        return self._engine


pass_ctx = click.make_pass_decorator(Context)
