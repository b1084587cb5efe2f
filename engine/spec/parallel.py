"""Parallel branches with a join: what a ``kind: parallel`` state means, and its lint checks.

A parallel state (BPMN's parallel gateway, a statechart's orthogonal regions) forks into
``branches``; each branch is a small sub-flow made of the procedure's own states (listed
under the branch, so titles, owners, assignment, forms, SLAs and timers work on them as on
any state), and is done when it reaches one of its ``final`` states. The ``join`` says when
the instance moves on to ``next``: ``all`` branches done, ``any`` one, or the named ones;
branches still open then are cancelled.

States stay one flat namespace, so a branch state belongs to exactly one branch; actions
move within a branch. The checks here say so, and that every branch can finish and the
join can complete.
"""
from __future__ import annotations

from collections import deque
from typing import Optional

from engine.errors import Issue
from engine.spec.models import ProcedureSpec, StateSpec
from engine.spec.yamlio import Positions


def branch_map(spec: ProcedureSpec) -> dict[str, tuple[str, str]]:
    """Each branch state -> (its parallel state, its branch name); the first claim wins."""
    out: dict[str, tuple[str, str]] = {}
    for name, st in spec.states.items():
        for branch, b in st.branches.items():
            for s in b.states:
                out.setdefault(s, (name, branch))
    return out


def joined_branches(st: StateSpec) -> list[str]:
    """The branches whose completion the join waits for (``any``: one of them)."""
    return list(st.branches) if isinstance(st.join, str) else list(st.join)


def join_complete(st: StateSpec, done: set[str]) -> bool:
    """Whether the join of parallel state ``st`` completes with these branches done."""
    wanted = joined_branches(st)
    return bool(done & set(wanted)) if st.join == "any" else set(wanted) <= done


def successors(spec: ProcedureSpec) -> dict[str, set[str]]:
    """Where each state leads: by actions, and a parallel state to its branch starts and next."""
    out: dict[str, set[str]] = {s: set() for s in spec.states}
    for a in spec.actions:
        for s in a.sources(spec.states):
            out[s].add(a.to or s)
    for name, st in spec.states.items():
        out[name].update(b.start for b in st.branches.values())
        if st.next:
            out[name].add(st.next)
    return out


def _can_finish(spec: ProcedureSpec, succ: dict[str, set[str]], start: str, inside: set[str]) -> bool:
    seen, queue = {start}, deque([start])
    while queue:
        s = queue.popleft()
        if s in spec.states and spec.states[s].kind == "final":
            return True
        for n in succ.get(s, ()):
            if n in inside and n not in seen:
                seen.add(n)
                queue.append(n)
    return False


def check_parallel(spec: ProcedureSpec, pos: Positions) -> list[Issue]:
    """Branch states in one branch only, no nesting, known start/next/join names, actions
    that stay within their branch, every joined branch able to finish."""
    issues: list[Issue] = []
    owner: dict[str, tuple[str, str]] = {}
    succ = successors(spec)
    for name, st in spec.states.items():
        base = ("states", name)
        if st.next is not None and st.next not in spec.states:
            issues.append(pos.issue(base + ("next",), f"unknown state {st.next!r}"))
        for branch, b in st.branches.items():
            bp = base + ("branches", branch)
            for i, s in enumerate(b.states):
                issues += _branch_state_issues(spec, pos, bp + ("states", i), name, branch, s, owner)
            if b.start not in b.states:
                issues.append(pos.issue(bp + ("start",), f"start {b.start!r} is not one of the branch's states"))
            elif not _can_finish(spec, succ, b.start, set(b.states)):
                issues.append(pos.issue(bp, f"branch {branch!r} has no way to finish: no final state of it is "
                                            f"reachable from {b.start!r}", key=True,
                                        hint="add an action to one of its final states"))
        issues += _join_issues(spec, pos, name, st, succ)
    issues += _crossing_actions(spec, pos, branch_map(spec))
    return issues


def _branch_state_issues(spec: ProcedureSpec, pos: Positions, path: tuple, parallel: str, branch: str, s: str,
                         owner: dict[str, tuple[str, str]]) -> list[Issue]:
    if s not in spec.states:
        return [pos.issue(path, f"unknown state {s!r}")]
    if s in owner:
        p, b = owner[s]
        return [pos.issue(path, f"state {s!r} is already in branch {b!r} of {p!r}: a state belongs to one branch")]
    owner[s] = (parallel, branch)
    if s in (spec.start.state, parallel) or spec.states[s].kind == "parallel":
        return [pos.issue(path, f"state {s!r} cannot be a branch state (the start state, a parallel state)")]
    return []


def _join_issues(spec: ProcedureSpec, pos: Positions, name: str, st: StateSpec,
                 succ: dict[str, set[str]]) -> list[Issue]:
    if st.kind != "parallel":
        return []
    path = ("states", name, "join")
    unknown = [j for j in joined_branches(st) if j not in st.branches]
    if unknown:
        return [pos.issue(path, f"join names unknown branch {u!r}", hint=f"branches: {', '.join(st.branches)}")
                for u in unknown]
    able = {br for br, b in st.branches.items() if b.start in b.states and _can_finish(spec, succ, b.start, set(b.states))}
    wanted = set(joined_branches(st))
    if not wanted or (st.join == "any" and not wanted & able) or (st.join != "any" and not wanted <= able):
        stuck = ", ".join(sorted(wanted - able)) or "(none named)"
        return [pos.issue(path, f"the join of {name!r} can never complete: branch(es) {stuck} cannot finish")]
    return []


def _crossing_actions(spec: ProcedureSpec, pos: Positions, branches: dict[str, tuple[str, str]]) -> list[Issue]:
    """An action moves within one branch, or outside every branch: the join moves on."""
    issues = []
    for i, a in enumerate(spec.actions):
        if a.source == "*":
            continue
        for s in a.source:
            here: Optional[tuple[str, str]] = branches.get(s)
            there = branches.get(a.to) if a.to else here
            if a.to is not None and a.to in spec.states and here != there:
                where = f"branch {here[1]!r}" if here else "outside the branches"
                issues.append(pos.issue(("actions", i, "to"), f"action {a.name!r} leads from {s!r} ({where}) to "
                                                                f"{a.to!r} in another branch or out of it",
                                        hint="actions stay within a branch; the join moves the instance on"))
    return issues
