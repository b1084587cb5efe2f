"""Parallel branches at run time: fork on entering a ``kind: parallel`` state, one task per
open branch, actions within a branch, and the join that moves the instance on.

Every step is an event, folded here, so replay re-derives ``Instance.branches`` exactly:

- ``BranchesForked`` {state, branches: {branch: start state}}
- ``BranchAssigned`` {branch, assignee, role, by?} (``by: claim`` when someone claimed it)
- ``BranchActionTaken`` {branch, action, from, to, input}
- ``BranchFinished`` {branch, state}: the branch reached one of its final states
- ``BranchesJoined`` {from, to, done: [branches], cancelled: {branch: state}}: the join
  completed; the instance enters ``to`` (the parallel state's ``next``) and the branches
  still open are cancelled.

While branches are open the instance itself is assigned to nobody: the work is the
branches', each with its own assignee and role queue (``sop tasks`` lists one task per
open branch). Pure like :mod:`engine.core.decide`, which calls in here.
"""
from __future__ import annotations

from typing import Any, Optional

from engine.core import evolve as ev
from engine.core import model as m
from engine.core.model import Decision, Event, EventKind, Instance
from engine.errors import ActionNotAllowed, NotAuthorized, ReplayMismatch
from engine.spec.library import CompiledProcedure
from engine.spec.parallel import join_complete

BRANCHES_FORKED = EventKind.BRANCHES_FORKED
BRANCH_ASSIGNED = EventKind.BRANCH_ASSIGNED
BRANCH_ACTION_TAKEN = EventKind.BRANCH_ACTION_TAKEN
BRANCH_FINISHED = EventKind.BRANCH_FINISHED
BRANCHES_JOINED = EventKind.BRANCHES_JOINED


# ---------------------------------------------------------------- folds

def _mismatch(inst: Instance, event: Event, why: str) -> ReplayMismatch:
    return ReplayMismatch(inst.id, event.seq or None, why)


def _forked(proc: CompiledProcedure, inst: Instance, event: Event) -> Instance:
    d = event.data
    spec = proc.spec.states.get(d["state"])
    if d["state"] != inst.state or spec is None or spec.kind != "parallel":
        raise _mismatch(inst, event, f"branches forked from {d['state']!r} but the instance was in {inst.state!r}")
    branches = {b: {"state": s, "status": "open", "assignee": None, "role": None} for b, s in d["branches"].items()}
    return inst.with_(branches=branches, last_occurred_at=event.occurred_at)


def _branch(inst: Instance, event: Event) -> dict[str, Any]:
    b = inst.branches.get(event.data["branch"])
    if b is None or b["status"] != "open":
        raise _mismatch(inst, event, f"branch {event.data['branch']!r} is not open")
    return b


def _with_branch(inst: Instance, event: Event, **changes: Any) -> Instance:
    name = event.data["branch"]
    return inst.with_(branches={**inst.branches, name: {**_branch(inst, event), **changes}},
                      last_occurred_at=event.occurred_at)


def _assigned(proc: CompiledProcedure, inst: Instance, event: Event) -> Instance:
    return _with_branch(inst, event, assignee=event.data.get("assignee"), role=event.data.get("role"))


def _action(proc: CompiledProcedure, inst: Instance, event: Event) -> Instance:
    d = event.data
    b = _branch(inst, event)
    action = proc.action(d["action"], b["state"])
    if d["from"] != b["state"] or action is None or (action.to or b["state"]) != d["to"]:
        raise _mismatch(inst, event, f"branch action {d['action']!r} recorded {d['from']!r} -> {d['to']!r}, but "
                                     f"branch {d['branch']!r} was in {b['state']!r} on version {proc.version}")
    moved = _with_branch(inst, event, state=d["to"])
    return moved.with_(data={**inst.data, **d.get("input", {})}) if d.get("input") else moved


def _finished(proc: CompiledProcedure, inst: Instance, event: Event) -> Instance:
    return _with_branch(inst, event, status="done")


def _joined(proc: CompiledProcedure, inst: Instance, event: Event) -> Instance:
    d = event.data
    if d["from"] != inst.state or proc.spec.states[inst.state].next != d["to"]:
        raise _mismatch(inst, event, f"join recorded from {d['from']!r} to {d['to']!r} but the instance was in "
                                     f"{inst.state!r}")
    return inst.with_(state=d["to"], branches={}, last_occurred_at=event.occurred_at)


for _type, _fold in ((BRANCHES_FORKED, _forked), (BRANCH_ASSIGNED, _assigned), (BRANCH_ACTION_TAKEN, _action),
                     (BRANCH_FINISHED, _finished), (BRANCHES_JOINED, _joined)):
    ev.register(_type, _fold)


# ---------------------------------------------------------------- clocks (engine/core/clocks.py)

def states_here(inst: Instance) -> set[str]:
    """The states an instance is in: its own, and those of its open parallel branches."""
    if not inst.branches:
        return {inst.state}
    return {inst.state} | {b["state"] for b in inst.branches.values() if b["status"] == "open"}


def clock_owner(proc: CompiledProcedure, inst: Instance, state: Optional[str]) -> Optional[str]:
    """Whose clock it is: the branch's assignee for a clock started in a branch state."""
    where = proc.branch_states.get(state) if state else None
    branch = inst.branches.get(where[1]) if where else None
    return branch["assignee"] if branch else inst.assignee


def branch_closed(proc: CompiledProcedure, inst: Instance, state: Optional[str]) -> bool:
    """Whether ``state`` is a branch state whose branch is no longer open: a clock started
    in a branch stops when the branch finishes, is cancelled by the join, or the join passed."""
    where = proc.branch_states.get(state) if state else None
    if where is None:
        return False
    branch = inst.branches.get(where[1]) if inst.state == where[0] else None
    return branch is None or branch["status"] != "open"


# ---------------------------------------------------------------- decisions

def open_states(inst: Instance) -> set[str]:
    """The states the open branches are in."""
    return {b["state"] for b in inst.branches.values() if b["status"] == "open"}


def fork(b: Any, state: str) -> None:
    """Entering parallel ``state``: the case leaves its assignee, each branch starts."""
    spec = b.proc.spec.states[state]
    if b.inst.assignee is not None or b.inst.assignee_role is not None:
        b.emit(m.ASSIGNED, {"assignee": None, "role": None, "by": "rule"})
    b.emit(BRANCHES_FORKED, {"state": state, "branches": {name: br.start for name, br in spec.branches.items()}})
    for name, br in spec.branches.items():
        enter_branch(b, name, br.start)
    join_if_complete(b)


def enter_branch(b: Any, branch: str, state: str) -> None:
    """A branch enters ``state``: its assignment, its ``on_enter`` effects, done if final."""
    from engine.core import decide as dc  # decide calls in here; imported at use

    spec = b.proc.spec.states[state]
    current = b.inst.branches[branch]
    if spec.assign is not None or spec.owner is not None:
        assignee, role = dc.resolve_assignment(spec.assign, spec.owner, b.org, b.inst)
        if spec.assign is None and dc._can_act(b.proc, b.org, current["assignee"], state):
            assignee, role = current["assignee"], current["role"]
        if (assignee, role) != (current["assignee"], current["role"]):
            b.emit(BRANCH_ASSIGNED, {"branch": branch, "assignee": assignee, "role": role})
    dc._apply_effects(b, spec.on_enter)
    if spec.kind == "final" and b.inst.branches.get(branch, {}).get("status") == "open":
        b.emit(BRANCH_FINISHED, {"branch": branch, "state": state})


def join_if_complete(b: Any) -> None:
    """The join of the parallel state the instance is in: move on to ``next`` when it completes."""
    from engine.core import decide as dc

    if not b.inst.active or not b.inst.branches:
        return
    spec = b.proc.spec.states[b.inst.state]
    done = {n for n, br in b.inst.branches.items() if br["status"] == "done"}
    if not join_complete(spec, done):
        return
    cancelled = {n: br["state"] for n, br in b.inst.branches.items() if br["status"] == "open"}
    b.emit(BRANCHES_JOINED, {"from": b.inst.state, "to": spec.next, "done": sorted(done), "cancelled": cancelled})
    dc._enter_state(b, spec.next)


def branch_for(proc: CompiledProcedure, inst: Instance, name: str) -> Optional[str]:
    """The open branch in whose state action ``name`` is available."""
    for branch, br in inst.branches.items():
        if br["status"] == "open" and proc.action(name, br["state"]) is not None:
            return branch
    return None


def as_branch_task(inst: Instance, branch: str) -> Instance:
    """The instance as the task of one branch: its state, assignee and role queue."""
    br = inst.branches[branch]
    return inst.with_(state=br["state"], assignee=br["assignee"], assignee_role=br["role"])


def decide_branch_action(b: Any, branch: str, name: str, data: dict[str, Any], links: Optional[dict[str, Any]]
                         ) -> Decision:
    """Take action ``name`` in ``branch``: the checks of any action, against the branch's
    state and assignee; then the branch moves, finishes, and perhaps the join completes."""
    from engine.core import decide as dc

    proc, inst = b.proc, b.inst
    br = inst.branches[branch]
    action = proc.action(name, br["state"])
    assert action is not None  # branch_for found it
    role = dc._role_for(b.actor, action.roles)
    if role is None:
        raise NotAuthorized(b.actor.id, f"take {name!r}", action.roles)
    dc.check_scope(b.org, as_branch_task(inst, branch), b.actor, f"take {name!r}")
    values = dc._validate(proc.form(action.form), data, dict(inst.data), action.form or name, b.org)
    b.role = role
    seen = {**values, **links} if links else values
    if not dc._check(b, action.when, seen):
        raise ActionNotAllowed(name, action.refusal or f"condition not met: {action.when}")
    for guard in action.guards:
        if not dc._check(b, guard.when, seen):
            raise ActionNotAllowed(name, guard.refusal)
    before = br["state"]
    b.emit(BRANCH_ACTION_TAKEN, {"branch": branch, "action": name, "from": before, "to": action.to or before,
                                 "input": values})
    dc._apply_effects(b, action.effects)
    if b.inst.active and b.inst.branches and action.to and action.to != before:
        enter_branch(b, branch, action.to)
    join_if_complete(b)
    return b.decision


def decide_branch_claim(b: Any) -> Decision:
    """``sop claim`` on an instance in branches: the first open, unassigned branch whose
    role queue the actor is in (within their building scope) becomes theirs."""
    from engine.core import decide as dc

    inst = b.inst
    queues = {n: br["role"] for n, br in inst.branches.items() if br["status"] == "open" and br["assignee"] is None}
    branch = next((n for n, r in queues.items() if r in b.actor.roles), None)
    if branch is None:
        roles = sorted({r for r in queues.values() if r})
        if not roles:
            raise ActionNotAllowed("claim", f"instance {inst.id} has no unassigned branch to claim")
        raise NotAuthorized(b.actor.id, f"claim a branch of instance {inst.id}", roles)
    dc.check_scope(b.org, as_branch_task(inst, branch), b.actor, f"claim instance {inst.id}")
    b.role = queues[branch]
    b.emit(BRANCH_ASSIGNED, {"branch": branch, "assignee": b.actor.id, "role": queues[branch], "by": "claim"})
    return b.decision
