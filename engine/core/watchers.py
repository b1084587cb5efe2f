"""Watchers: people who follow a case without working on it.

Escalation and reassignment move a task away from its worker, who then lost sight of it.
A watcher keeps it in their "cases I watch" inbox and receives the notifications a
procedure sends to ``watchers: true``. Every change is an event, so replay re-derives the
list exactly:

- ``WatcherAdded`` {staff, reason}: ``watch`` (a person's own request), ``effect`` (a
  ``watch:`` effect of the procedure), ``reassigned`` (the previous assignee of a manual
  reassignment, or of an ``assign`` effect with ``keep_watching: true``);
- ``WatcherRemoved`` {staff, reason}: ``unwatch``.

Pure like :mod:`engine.core.decide`: no clock, no database.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Optional

from engine.core import evolve as ev
from engine.core.model import Actor, Decision, Event, EventKind, Instance
from engine.errors import ActionNotAllowed, OutOfScope
from engine.spec.forms import building_of, instance_building
from engine.spec.library import CompiledProcedure
from engine.spec.models import WatchSpec
from engine.spec.org import OrgSpec

WATCHER_ADDED = EventKind.WATCHER_ADDED
WATCHER_REMOVED = EventKind.WATCHER_REMOVED


def _added(proc: CompiledProcedure, inst: Instance, event: Event) -> Instance:
    staff = str(event.data["staff"])
    if staff in inst.watchers:
        return inst.with_(last_occurred_at=event.occurred_at)
    return inst.with_(watchers=inst.watchers + (staff,), last_occurred_at=event.occurred_at)


def _removed(proc: CompiledProcedure, inst: Instance, event: Event) -> Instance:
    staff = str(event.data["staff"])
    return inst.with_(watchers=tuple(w for w in inst.watchers if w != staff), last_occurred_at=event.occurred_at)


ev.register(WATCHER_ADDED, _added)
ev.register(WATCHER_REMOVED, _removed)


def watch_events(inst: Instance, people: Iterable[Optional[str]], reason: str) -> list[dict[str, Any]]:
    """The ``WatcherAdded`` data for each person not yet watching (in order, once each)."""
    seen = set(inst.watchers)
    out = []
    for p in people:
        if p and p not in seen:
            seen.add(p)
            out.append({"staff": p, "reason": reason})
    return out


def watch_targets(spec: WatchSpec, org: OrgSpec, inst: Instance) -> list[str]:
    """Who a ``watch:`` effect names: a staff id, a data field's staff id, the steward of a
    unit's building, every holder of a role, or the current assignee."""
    people: list[str] = []
    if spec.staff:
        people.append(spec.staff)
    if spec.staff_from and org.has(str(inst.data.get(spec.staff_from))):
        people.append(str(inst.data[spec.staff_from]))
    if spec.steward_of:
        s = org.steward_of_building(building_of(inst.data.get(spec.steward_of)))
        if s:
            people.append(s)
    if spec.role:
        people += [s.id for s in org.holders(spec.role)]
    if spec.assignee and inst.assignee:
        people.append(inst.assignee)
    return list(dict.fromkeys(people))


def check_may_watch(org: OrgSpec, inst: Instance, actor: Actor) -> None:
    """A building-scoped person (a steward) may watch only what they could see: a case of
    one of their buildings (or of none), or one assigned to them or that they watch."""
    buildings = org.building_scope(actor.id)
    if buildings is None or inst.assignee == actor.id or actor.id in inst.watchers:
        return
    building = instance_building(inst.data)
    if building is None and inst.assignee is None or building in buildings:
        return
    raise OutOfScope(actor.id, f"watch instance {inst.id}", inst.id, building, buildings, inst.assignee,
                     list(org.supervising_roles))


def decide_watch(org: OrgSpec, inst: Instance, actor: Actor, at: datetime) -> Decision:
    """``sop watch ID``: the actor follows the case."""
    if actor.id in inst.watchers:
        raise ActionNotAllowed("watch", f"you already watch instance {inst.id}")
    check_may_watch(org, inst, actor)
    return Decision(events=[Event(WATCHER_ADDED, actor.id, None, at, {"staff": actor.id, "reason": "watch"})])


def decide_unwatch(inst: Instance, actor: Actor, at: datetime) -> Decision:
    """``sop unwatch ID``: the actor stops following the case (also one added by a rule)."""
    if actor.id not in inst.watchers:
        raise ActionNotAllowed("unwatch", f"you do not watch instance {inst.id}")
    return Decision(events=[Event(WATCHER_REMOVED, actor.id, None, at, {"staff": actor.id, "reason": "unwatch"})])
