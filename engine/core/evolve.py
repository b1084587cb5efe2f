"""Fold events into an Instance. The same function builds the stored projection when a
command is handled and re-derives it during replay, so the two cannot drift apart.

``ActionTaken`` is checked against the pinned procedure version: the action must lead
from the instance's state to the recorded target. Anything else is a ReplayMismatch.
"""
from __future__ import annotations

from typing import Optional

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
    return Instance(
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


_EXTENSIONS: dict[str, object] = {}


def register(event_type: str, fold: object) -> None:
    """Let another module (timers, SLA clocks) fold its own event types."""
    _EXTENSIONS[event_type] = fold


def _extension(proc: CompiledProcedure, inst: Instance, event: Event) -> Instance:
    fold = _EXTENSIONS.get(event.type)
    if fold is None:
        raise ReplayMismatch(inst.id, event.seq or None, f"unknown event type {event.type!r}")
    return fold(proc, inst, event)  # type: ignore[operator]
