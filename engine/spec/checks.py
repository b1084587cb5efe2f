"""The definition checks behind ``sop lint``: each small, named, and located.

Every check takes a loaded procedure (with its positions) and returns issues instead of
raising, so a process owner sees every problem of a file at once, as
``file:line:col: path: message (hint)``.
"""
from __future__ import annotations

import difflib
from collections import deque
from typing import Callable, Iterable, Mapping

from engine.errors import Issue
from engine.spec.expr import ExprError, compile_expr
from engine.spec.forms import FieldSpec, FormSpec
from engine.spec.models import ActionSpec, AssignSpec, EffectSpec, ProcedureSpec
from engine.spec.yamlio import Positions

# Names every expression may read besides the procedure's data fields.
INSTANCE_NAMES = {"id", "state", "assignee", "procedure", "now", "actor", "parent_id"}


def hint(word: str, options: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, sorted(options), n=1)
    return f"did you mean {match[0]!r}?" if match else ""


def check_procedure(spec: ProcedureSpec, pos: Positions, forms: Mapping[str, FormSpec],
                    roles: Iterable[str], procedures: Iterable[str]) -> list[Issue]:
    """All checks of one procedure against the forms, roles and procedures known."""
    roles = set(roles) | {"system"}  # the engine itself, for actions timers take
    known_procedures = set(procedures) | {spec.id}
    issues: list[Issue] = []
    issues += check_references(spec, pos, forms, roles, known_procedures)
    if any(i for i in issues if "state" in i.message and "unknown" in i.message):
        return issues + check_expressions(spec, pos, forms)
    issues += check_duplicate_actions(spec, pos)
    issues += check_reachability(spec, pos)
    issues += check_ways_out(spec, pos)
    issues += check_expressions(spec, pos, forms)
    return issues


def field_types(spec: ProcedureSpec, forms: Mapping[str, FormSpec]) -> dict[str, FieldSpec]:
    """Every data field an instance of this procedure can hold, with its type."""
    out: dict[str, FieldSpec] = {}
    names = [spec.start.form] + [a.form for a in spec.actions]
    for form_id in names:
        if form_id and form_id in forms:
            out.update(forms[form_id].fields)
    out.update(spec.fields)
    return out


def check_references(spec: ProcedureSpec, pos: Positions, forms: Mapping[str, FormSpec],
                     roles: set[str], procedures: set[str]) -> list[Issue]:
    issues: list[Issue] = []
    states = spec.states

    def state_ref(name: str | None, path: tuple) -> None:
        if name is not None and name not in states:
            issues.append(pos.issue(path, f"unknown state {name!r}", hint=hint(name, states)))

    def role_ref(name: str | None, path: tuple) -> None:
        if name is not None and name not in roles:
            issues.append(pos.issue(path, f"unknown role {name!r}", hint=hint(name, roles)))

    def form_ref(name: str | None, path: tuple) -> None:
        if name is not None and name not in forms:
            issues.append(pos.issue(path, f"unknown form {name!r}", hint=hint(name, forms)))

    state_ref(spec.start.state, ("start", "state"))
    for i, r in enumerate(spec.start.roles):
        role_ref(r, ("start", "roles", i))
    form_ref(spec.start.form, ("start", "form"))
    _effect_refs(spec.start.effects, ("start", "effects"), role_ref, procedures, pos, issues)
    for name, st in states.items():
        role_ref(st.owner, ("states", name, "owner"))
        if st.assign:
            _assign_refs(st.assign, ("states", name, "assign"), role_ref)
        _effect_refs(st.on_enter, ("states", name, "on_enter"), role_ref, procedures, pos, issues)
    for i, a in enumerate(spec.actions):
        base = ("actions", i)
        if a.source != "*":
            for j, s in enumerate(a.source):
                state_ref(s, base + ("from", j) if len(a.source) > 1 or _is_list(pos, base + ("from",)) else base + ("from",))
        state_ref(a.to, base + ("to",))
        for j, r in enumerate(a.roles):
            role_ref(r, base + ("roles", j))
        form_ref(a.form, base + ("form",))
        _effect_refs(a.effects, base + ("effects",), role_ref, procedures, pos, issues)
    return issues


def _is_list(pos: Positions, path: tuple) -> bool:
    return path + (0,) in pos.values


def _assign_refs(a: AssignSpec, path: tuple, role_ref: Callable) -> None:
    role_ref(a.role, path + ("role",))


def _effect_refs(effects: list[EffectSpec], path: tuple, role_ref: Callable, procedures: set[str],
                 pos: Positions, issues: list[Issue]) -> None:
    for k, e in enumerate(effects):
        p = path + (k,)
        if e.assign:
            _assign_refs(e.assign, p + ("assign",), role_ref)
        if e.notify:
            role_ref(e.notify.role, p + ("notify", "role"))
        if e.spawn and e.spawn.procedure not in procedures:
            issues.append(pos.issue(p + ("spawn", "procedure"), f"unknown procedure {e.spawn.procedure!r}",
                                    hint=hint(e.spawn.procedure, procedures)))


def check_duplicate_actions(spec: ProcedureSpec, pos: Positions) -> list[Issue]:
    """Two actions with one name from one state would make ``sop advance`` ambiguous."""
    issues, seen = [], {}
    for i, a in enumerate(spec.actions):
        for s in a.sources(spec.states):
            key = (a.name, s)
            if key in seen:
                issues.append(pos.issue(("actions", i, "name"),
                                        f"action {a.name!r} is defined twice from state {s!r} "
                                        f"(first at actions[{seen[key]}])"))
            else:
                seen[key] = i
    return issues


def _successors(spec: ProcedureSpec) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {s: set() for s in spec.states}
    for a in spec.actions:
        for s in a.sources(spec.states):
            out[s].add(a.to or s)
    return out


def check_reachability(spec: ProcedureSpec, pos: Positions) -> list[Issue]:
    succ = _successors(spec)
    seen, queue = {spec.start.state}, deque([spec.start.state])
    while queue:
        for nxt in succ.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return [pos.issue(("states", s), f"state {s!r} is unreachable from the start state {spec.start.state!r}",
                      key=True) for s in spec.states if s not in seen]


def check_ways_out(spec: ProcedureSpec, pos: Positions) -> list[Issue]:
    """A non-final state with no action leaving it would trap instances forever."""
    succ = _successors(spec)
    issues = []
    for s, st in spec.states.items():
        if st.kind == "final":
            continue
        if not any(n != s for n in succ[s]):
            issues.append(pos.issue(("states", s), f"state {s!r} is not final but no action leaves it",
                                    key=True, hint="add an action from it, or make it kind: final"))
    finals = [s for s, st in spec.states.items() if st.kind == "final"]
    if not finals:
        issues.append(pos.issue(("states",), "the procedure has no final state", key=True))
    return issues


def check_expressions(spec: ProcedureSpec, pos: Positions, forms: Mapping[str, FormSpec]) -> list[Issue]:
    known = set(field_types(spec, forms)) | INSTANCE_NAMES
    issues: list[Issue] = []

    def expr(source: str | None, path: tuple, extra: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        if source is None:
            return
        try:
            e = compile_expr(source)
        except ExprError as err:
            issues.append(pos.issue(path, f"expression {source!r}: {err}"))
            return
        for name in sorted(e.names() - known - extra):
            issues.append(pos.issue(path, f"expression {source!r} names unknown field {name!r}",
                                    hint=hint(name, known)))

    def effects(effs: list[EffectSpec], path: tuple) -> None:
        for k, e in enumerate(effs):
            p = path + (k,)
            expr(e.when, p + ("when",))
            for f, src in (e.compute or {}).items():
                expr(src, p + ("compute", f))
            for f in list((e.compute or {})) + list((e.set or {})):
                if f not in known:
                    issues.append(pos.issue(p + ("compute" if e.compute else "set", f),
                                            f"effect sets undeclared field {f!r}",
                                            hint="declare it under fields: or in a form"))
            if e.spawn:
                expr(e.spawn.when, p + ("spawn", "when"))
                for f, src in e.spawn.data.items():
                    expr(src, p + ("spawn", "data", f))

    effects(spec.start.effects, ("start", "effects"))
    for name, st in spec.states.items():
        effects(st.on_enter, ("states", name, "on_enter"))
    for i, a in enumerate(spec.actions):
        expr(a.when, ("actions", i, "when"))
        effects(a.effects, ("actions", i, "effects"))
    for f_name, f in spec.fields.items():
        expr(f.required_if, ("fields", f_name, "required_if"))
    return issues


def check_form(form: FormSpec, pos: Positions) -> list[Issue]:
    """Form-local checks; names in ``required_if`` are checked per procedure using the form,
    because a condition may read instance data collected by an earlier form."""
    issues = []
    for name, f in form.fields.items():
        if f.required_if is None:
            continue
        try:
            compile_expr(f.required_if)
        except ExprError as err:
            issues.append(pos.issue(("fields", name, "required_if"), f"expression: {err}"))
    return issues


def check_form_conditions(spec: ProcedureSpec, pos: Positions, forms: Mapping[str, FormSpec],
                          form_positions: Mapping[str, Positions]) -> list[Issue]:
    known = set(field_types(spec, forms)) | INSTANCE_NAMES
    issues = []
    used = {spec.start.form, *(a.form for a in spec.actions)} - {None}
    for form_id in sorted(used):  # type: ignore[type-var]
        form = forms.get(form_id)
        fpos = form_positions.get(form_id)
        if form is None or fpos is None:
            continue
        for name, f in form.fields.items():
            try:
                names = compile_expr(f.required_if).names() if f.required_if else set()
            except ExprError:
                continue
            for n in sorted(names - known):
                issues.append(fpos.issue(("fields", name, "required_if"),
                                         f"expression {f.required_if!r} names field {n!r}, unknown "
                                         f"in procedure {spec.id!r}", hint=hint(n, known)))
    return issues
