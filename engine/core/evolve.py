"""Fold events into an Instance. The same function builds the stored projection when a
command is handled and re-derives it during replay, so the two cannot drift apart.

``ActionTaken`` is checked against the pinned procedure version: the action must lead
from the instance's state to the recorded target. Anything else is a ReplayMismatch.
"""
from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any, Callable, Optional, Sequence

from engine.codec import Clock, ClockStatus
from engine.core import model as m
from engine.core.model import Event, Instance
from engine.errors import ReplayMismatch
from engine.spec.library import CompiledProcedure


def start(instance_id: int, proc: CompiledProcedure, event: Event) -> Instance:
    if event.type != m.INSTANCE_STARTED:
        raise ReplayMismatch(instance_id, event.seq or 1, f"the log starts with {event.type}, not {m.INSTANCE_STARTED}")
    d = event.data
    if d.get("state") != proc.spec.start.state:
        raise ReplayMismatch(instance_id, event.seq or 1,
                             f"started in state {d.get('state')!r} but version {proc.version} starts in "
                             f"{proc.spec.start.state!r}")
    return _new_instance(
        id=instance_id, procedure=proc.id, version=proc.version, state=d["state"],
        data=dict(d.get("data", {})), parent_id=d.get("parent_id"),
        started_at=event.occurred_at, last_occurred_at=event.occurred_at,
    )


def evolve(proc: CompiledProcedure, inst: Instance, event: Event) -> Instance:
    """Apply one event (not InstanceStarted) to an instance."""
    d, t, at = event.data, event.type, event.occurred_at
    if t == m.ACTION_TAKEN:
        return _action(proc, inst, event)
    if t == m.DATA_RECORDED:
        return inst.with_(data={**inst.data, **d["changes"]}, last_occurred_at=at)
    if t == m.ASSIGNED:
        return inst.with_(assignee=d.get("assignee"), assignee_role=d.get("role"), last_occurred_at=at)
    if t == m.INSTANCE_COMPLETED:
        return inst.with_(status="completed", last_occurred_at=at)
    if t == m.CHILD_SPAWNED:
        return inst.with_(children=inst.children + (int(d["child_id"]),), last_occurred_at=at)
    if t == m.NOTIFICATION_QUEUED:
        return inst.with_(last_occurred_at=at)
    if t == m.VERSION_MIGRATED:
        return _migrated(inst, event)
    return _extension(proc, inst.with_(last_occurred_at=at), event)


def _action(proc: CompiledProcedure, inst: Instance, event: Event) -> Instance:
    d = event.data
    seq: Optional[int] = event.seq or None
    if d["from"] != inst.state:
        raise ReplayMismatch(inst.id, seq, f"action {d['action']!r} recorded from {d['from']!r} "
                                           f"but the instance was in {inst.state!r}")
    action = proc.action(d["action"], inst.state)
    if action is None:
        raise ReplayMismatch(inst.id, seq, f"version {proc.version} has no action {d['action']!r} "
                                           f"from state {inst.state!r}")
    target = action.to or inst.state
    if d["to"] != target:
        raise ReplayMismatch(inst.id, seq, f"action {d['action']!r} recorded to {d['to']!r}, "
                                           f"but version {proc.version} leads to {target!r}")
    return inst.with_(state=target, data={**inst.data, **d.get("input", {})}, last_occurred_at=event.occurred_at)


def _migrated(inst: Instance, event: Event) -> Instance:
    """Onto another version: the version and (perhaps mapped) state change, nothing else.
    The events after this one fold under the new version (``fold``'s ``versions``)."""
    d = event.data
    if d["from"] != inst.version or d["state_from"] != inst.state:
        raise ReplayMismatch(inst.id, event.seq or None,
                             f"migration recorded from version {d['from']} in state {d['state_from']!r} but the "
                             f"instance was on {inst.version} in {inst.state!r}")
    return inst.with_(version=d["to"], state=d["state_to"], last_occurred_at=event.occurred_at)


Fold = Callable[[CompiledProcedure, Instance, Event], Instance]
_EXTENSIONS: dict[str, Fold] = {}


def register(event_type: str, fold: Fold) -> None:
    """Let another module (timers, SLA clocks) fold its own event types.

    ``fold(proc, inst, event)`` returns the instance after the event, like ``evolve``: as
    ``inst.with_(…)`` (or ``inst`` itself), reading ``inst`` before that call and not after
    it — during a replay ``inst`` is a draft that ``with_`` changes in place (see ``fold``).
    """
    _EXTENSIONS[event_type] = fold


def _extension(proc: CompiledProcedure, inst: Instance, event: Event) -> Instance:
    fold = _EXTENSIONS.get(event.type)
    if fold is None:
        raise ReplayMismatch(inst.id, event.seq or None, f"unknown event type {event.type!r}")
    return fold(proc, inst, event)


def fold(proc: CompiledProcedure, instance_id: int, events: Sequence[Event],
         versions: Optional[Callable[[str], CompiledProcedure]] = None, **then: Any) -> Instance:
    """``start`` with the first event, then ``evolve`` with each of the others, then the
    fields in ``then`` set (replay sets revision and last_hash): the same Instance, built
    once instead of once (or twice) per event.

    ``proc`` is the version the instance started on; after a ``VersionMigrated`` event the
    rest of the log folds under the version it names, got from ``versions(version)``.

    Replay folds every event of a log, and copying the frozen Instance for each was the
    largest part of it. Here every event still goes through ``evolve`` itself, but on a
    draft whose ``with_`` changes the draft in place: no one else holds the intermediate
    instances, so only the last one needs to be a real Instance.
    """
    inst = start(instance_id, proc, events[0])
    migrated = m.VERSION_MIGRATED
    if not _DRAFTS:
        for e in events[1:]:
            inst = evolve(proc, inst, e)
            if e.type == migrated:
                proc = _version(proc, versions, e)
        return inst.with_(**then) if then else inst
    draft = _Draft.of(inst, copy=False)  # the started instance goes nowhere else
    for i in range(1, len(events)):
        e = events[i]
        after = evolve(proc, draft, e)
        if after is not draft:  # a fold that built an Instance of its own
            draft = _Draft.of(after)
        if e.type == migrated:
            proc = _version(proc, versions, e)
    return draft.with_(**then).instance()


def draft_of(inst: Instance) -> Instance:
    """A working copy of ``inst`` to fold several events onto (``fold_on``) when no one
    needs the instances in between: one copy of its fields instead of one or two per
    event. ``inst`` itself is never changed; ``finish`` turns the draft into an Instance."""
    return _Draft.of(inst) if _DRAFTS else inst


def fold_on(proc: CompiledProcedure, draft: Instance, event: Event) -> Instance:
    """``evolve`` onto a draft of ``draft_of`` (changed in place; a fold that builds an
    Instance of its own gets a draft of that): the draft to fold the next event onto."""
    after = evolve(proc, draft, event)
    return after if after is draft or not _DRAFTS else _Draft.of(after)


def finish(draft: Instance) -> Instance:
    """The Instance a draft of ``draft_of`` stands for (the draft is not to be used after)."""
    return draft.instance() if isinstance(draft, _Draft) else draft


def _version(proc: CompiledProcedure, versions: Optional[Callable[[str], CompiledProcedure]],
             event: Event) -> CompiledProcedure:
    """The version a ``VersionMigrated`` event moves onto."""
    to = event.data["to"]
    if proc.version == to:
        return proc
    if versions is None:
        raise ReplayMismatch(None, event.seq or None, f"migrated to version {to}, which this replay cannot load")
    return versions(to)


class _Draft(Instance):
    """Replay's working copy of an Instance: ``with_`` sets the fields on the draft itself.

    An Instance subclass, so that folds read it exactly as they read an Instance (fields,
    properties); ``fold`` hands out only the real Instance that ``instance()`` makes.
    """

    @classmethod
    def of(cls, inst: Instance, copy: bool = True) -> "_Draft":
        """A draft of the instance's fields (sharing its attribute dict when not ``copy``)."""
        draft = object.__new__(cls)
        object.__setattr__(draft, "__dict__", dict(vars(inst)) if copy else vars(inst))
        return draft

    def with_(self, **changes: Any) -> "_Draft":
        self.__dict__.update(changes)  # a name that is no field is refused by instance()
        return self

    def instance(self) -> Instance:
        """The Instance with the draft's fields, made the way ``Instance.with_`` makes one."""
        values = self.__dict__
        if len(values) != len(_FIELDS):  # a draft only gains names: one that is no field
            raise TypeError(f"Instance has no field(s) {', '.join(sorted(values.keys() - _FIELDS))}")
        inst = object.__new__(Instance)
        object.__setattr__(inst, "__dict__", values)
        return inst


_FIELDS = frozenset(f.name for f in fields(Instance))


def _drafts_work() -> bool:
    """Whether a draft's instance() equals the Instance it was drafted from: drafts copy
    an Instance's attribute dict, and should Instance ever lose it (slots) or set up more
    than its fields, fold falls back to one Instance per event."""
    try:
        sample = Instance(id=7, procedure="p", version="v", state="s", data={"k": 1}, children=(8,),
                          clocks={"c": Clock.of(status=ClockStatus.OPEN)}, revision=3)
        copy = _Draft.of(sample).with_(state="t").instance()
    except (AttributeError, TypeError):
        return False
    expected = sample.with_(state="t")
    return type(copy) is Instance and copy == expected and list(vars(copy)) == list(vars(expected))


_DRAFTS = _drafts_work()


def _instance_maker() -> Any:
    """``_new_instance(**fields)``: ``Instance(**fields)`` for the fields ``start`` sets,
    made the way ``Instance.with_`` makes one, from the defaults of a blank Instance.

    The frozen ``__init__`` sets fifteen fields one ``object.__setattr__`` at a time, twice
    what the rest of starting an instance costs, and replay starts one per log. Only while
    ``data`` and ``clocks`` are the fields with a default factory (empty dicts, ``data``
    always given, ``clocks`` made fresh here) and a sample comes out as ``__init__`` makes
    it; otherwise the constructor.
    """
    factories = {f.name: f.default_factory for f in fields(Instance) if f.default_factory is not MISSING}
    if not _DRAFTS or factories != {"data": dict, "clocks": dict, "branches": dict}:
        return Instance
    blank = dict(vars(Instance(id=0, procedure="", version="", state="")))
    new, set_dict = object.__new__, object.__setattr__

    def from_blank(**values: Any) -> Instance:
        inst = new(Instance)
        set_dict(inst, "__dict__", {**blank, "clocks": {}, "branches": {}, **values})
        return inst

    sample = {"id": 3, "procedure": "p", "version": "v", "state": "s", "data": {"k": 1}, "parent_id": 2,
              "started_at": None, "last_occurred_at": None}
    a, b = from_blank(**sample), Instance(**sample)  # type: ignore[arg-type]  # a sample of the fields, not typed one by one
    again = from_blank(**sample)
    if a != b or list(vars(a).items()) != list(vars(b).items()) or a.clocks is again.clocks \
            or a.branches is again.branches:
        return Instance
    return from_blank


_new_instance = _instance_maker()
