"""Watch and unwatch a case, and the "cases I watch" inbox (CLI, API and web share these).

Watching is a command like claim or assign: one transaction, one event (``WatcherAdded``
or ``WatcherRemoved``, decided by :mod:`engine.core.watchers`), clocks caught up first.
It runs through the engine's own change path so the hash chain, the ledger, the instance
cache and the change hooks see it exactly as any other step.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from engine.core import watchers as wt
from engine.core.model import Instance
from engine.store.queries import InstanceFilter, list_instances


def watch(engine: Any, instance_id: int, staff: str, at: Optional[datetime] = None,
          expected_revision: Optional[int] = None) -> Instance:
    """``staff`` starts watching the instance (a steward only what they could see)."""
    actor = engine.actor(staff)
    return engine._change(instance_id, at, expected_revision,  # noqa: SLF001 - the one change path
                          lambda proc, inst, when, conn: wt.decide_watch(engine.org, inst, actor, when))


def unwatch(engine: Any, instance_id: int, staff: str, at: Optional[datetime] = None,
            expected_revision: Optional[int] = None) -> Instance:
    """``staff`` stops watching the instance."""
    actor = engine.actor(staff)
    return engine._change(instance_id, at, expected_revision,  # noqa: SLF001
                          lambda proc, inst, when, conn: wt.decide_unwatch(inst, actor, when))


def watched(engine: Any, staff: str, limit: int = 500) -> list[Instance]:
    """The running instances ``staff`` watches, oldest activity first (like an inbox)."""
    person = engine.org.person(staff)
    with engine.read() as conn:
        f = InstanceFilter(status="active", watcher=person.id)
        return list_instances(conn, f, engine.clock.now(), limit, 0, oldest_first=True).items
