"""The definition checks behind ``sop lint``: each small, named, and located.

Every check takes a loaded procedure (with its positions) and returns issues instead of
raising, so a process owner sees every problem of a file at once, as
``file:line:col: path: message (hint)``.
"""
from __future__ import annotations

import difflib
import re
from collections import deque
from typing import AbstractSet, Callable, Iterable, Mapping

from engine.errors import Issue
from engine.spec.expr import ExprError, compile_expr
from engine.spec.forms import FieldSpec, FormSpec
from engine.spec.models import AssignSpec, EffectSpec, ProcedureSpec, SlaSpec
from engine.spec.parallel import check_parallel
from engine.spec.parallel import successors as _successors  # a parallel state leads to its branches and next
from engine.spec.yamlio import Positions

# Names every expression may read besides the procedure's data fields.
INSTANCE_NAMES = {"id", "state", "assignee", "procedure", "now", "actor", "actor_roles", "parent_id",
                  "site_name", "site_greeting"}
# Names an action's guard (`when`) may read too: the linked instances this one started,
# one procedure name per child (`'callback' in open_children`), read when the action is taken.
LINK_NAMES = {"children", "open_children"}


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
    issues += check_clocks(spec, pos, forms)
    issues += check_duplicate_actions(spec, pos)
    parallel = check_parallel(spec, pos)
    if parallel:
        return issues + parallel + check_expressions(spec, pos, forms)
    issues += check_reachability(spec, pos)
    issues += check_ways_out(spec, pos)
    issues += check_expressions(spec, pos, forms)
    issues += check_message_placeholders(spec, pos, forms)
    issues += check_system_actions(spec, pos)
    issues += check_automatic_states(spec, pos)
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
    for i, sla in enumerate(spec.slas):
        for j, step in enumerate(sla.escalate):
            role_ref(step.notify.role, ("slas", i, "escalate", j, "notify", "role"))
        _effect_refs(sla.on_warn, ("slas", i, "on_warn"), role_ref, procedures, pos, issues)
        _effect_refs(sla.on_breach, ("slas", i, "on_breach"), role_ref, procedures, pos, issues)
    for i, t in enumerate(spec.timers):
        _effect_refs(t.effects, ("timers", i, "effects"), role_ref, procedures, pos, issues)
    for i, q in enumerate(spec.quotas):
        _effect_refs(q.on_miss, ("quotas", i, "on_miss"), role_ref, procedures, pos, issues)
    for i, report in enumerate(spec.reports):
        role_ref(report.role, ("reports", i, "role"))
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
        if e.watch:
            role_ref(e.watch.role, p + ("watch", "role"))
        if e.spawn and e.spawn.procedure not in procedures:
            issues.append(pos.issue(p + ("spawn", "procedure"), f"unknown procedure {e.spawn.procedure!r}",
                                    hint=hint(e.spawn.procedure, procedures)))


def check_duplicate_actions(spec: ProcedureSpec, pos: Positions) -> list[Issue]:
    """Two actions with one name from one state would make ``sop advance`` ambiguous."""
    issues: list[Issue] = []
    seen: dict[tuple[str, str], int] = {}
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

    def expr(source: str | None, path: tuple, extra: AbstractSet[str] = frozenset()) -> None:
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

    def effects(effs: list[EffectSpec], path: tuple) -> None:  # noqa: C901
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
        expr(a.when, ("actions", i, "when"), LINK_NAMES)
        for j, g in enumerate(a.guards):
            expr(g.when, ("actions", i, "guards", j, "when"), LINK_NAMES)
        effects(a.effects, ("actions", i, "effects"))
    for i, sla in enumerate(spec.slas):
        effects(sla.on_warn, ("slas", i, "on_warn"))
        effects(sla.on_breach, ("slas", i, "on_breach"))
        for j, case in enumerate(sla.goal if isinstance(sla.goal, list) else []):
            expr(case.when, ("slas", i, "goal", j, "when"))
    for i, t in enumerate(spec.timers):
        expr(t.when, ("timers", i, "when"))
        effects(t.effects, ("timers", i, "effects"))
    for f_name, f in spec.fields.items():
        expr(f.required_if, ("fields", f_name, "required_if"))
    for i, q in enumerate(spec.quotas):
        effects(q.on_miss, ("quotas", i, "on_miss"))
    for i, r in enumerate(spec.reports):
        expr(r.when, ("reports", i, "when"))
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
    used = {f for f in (spec.start.form, *(a.form for a in spec.actions)) if f is not None}
    for form_id in sorted(used):
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


def check_clocks(spec: ProcedureSpec, pos: Positions, forms: Mapping[str, FormSpec]) -> list[Issue]:
    """SLA and timer definitions: durations parse, names exist, workday goals name their mode."""
    from engine.durations import parse_duration
    from engine.schedules import parse_schedule

    issues: list[Issue] = []
    actions = {a.name for a in spec.actions}
    fields = field_types(spec, forms)

    def duration(text: str, path: tuple, mode: object) -> None:
        try:
            d = parse_duration(text.strip().lstrip("+-").strip(), spec.units)
        except ValueError as e:
            issues.append(pos.issue(path, str(e)))
            return
        if d.kind == "workdays" and mode is None:
            issues.append(pos.issue(path, f"{text!r} is in workdays: say how to read it with workday_mode",
                                    hint="workday_mode: end_of_day (by the end of the N-th next working day) "
                                         "or working_hours (N x 7.5 working hours)"))

    def names(values: list[str] | None, known: set[str], what: str, path: tuple) -> None:
        for j, v in enumerate(values or []):
            if v not in known:
                issues.append(pos.issue(path + (j,), f"unknown {what} {v!r}", hint=hint(v, known)))

    for name, text in spec.units.items():
        try:
            parse_duration(text)
        except ValueError as e:
            issues.append(pos.issue(("units", name), str(e)))
    seen: set[str] = set()
    for i, sla in enumerate(spec.slas):
        base = ("slas", i)
        if sla.name in seen:
            issues.append(pos.issue(base + ("name",), f"clock name {sla.name!r} is used twice"))
        seen.add(sla.name)
        if isinstance(sla.goal, str):
            duration(sla.goal, base + ("goal",), sla.workday_mode)
        else:
            for j, case in enumerate(sla.goal):
                duration(case.goal, base + ("goal", j, "goal"), sla.workday_mode)
        names([sla.start_on] if sla.start_on else [], actions, "action", base + ("start_on",))
        names([sla.start_in] if sla.start_in else [], set(spec.states), "state", base + ("start_in",))
        names(sla.stop_on, actions, "action", base + ("stop_on",))
        names(sla.stop_in, set(spec.states), "state", base + ("stop_in",))
        names(sla.pause_in, set(spec.states), "state", base + ("pause_in",))
        names([sla.reset_on] if sla.reset_on else [], actions, "action", base + ("reset_on",))
        names([sla.breach_action] if sla.breach_action else [], actions, "action", base + ("breach_action",))
        if sla.reset_due_field and fields.get(sla.reset_due_field, None) is not None \
                and fields[sla.reset_due_field].type != "datetime":
            issues.append(pos.issue(base + ("reset_due_field",), f"{sla.reset_due_field!r} is not a datetime field"))
        elif sla.reset_due_field and sla.reset_due_field not in fields:
            issues.append(pos.issue(base + ("reset_due_field",), f"unknown field {sla.reset_due_field!r}",
                                    hint=hint(sla.reset_due_field, fields)))
    for i, t in enumerate(spec.timers):
        base = ("timers", i)
        if t.name in seen:
            issues.append(pos.issue(base + ("name",), f"clock name {t.name!r} is used twice"))
        seen.add(t.name)
        names(list(t.states or ()), set(spec.states), "state", base + ("state",))
        names([t.action] if t.action else [], actions, "action", base + ("action",))
        if t.after is not None:
            duration(t.after, base + ("after",), t.workday_mode)
        if t.at is not None:
            duration(t.at.offset, base + ("at", "offset"), t.workday_mode or "end_of_day")
            f = fields.get(t.at.field)
            if f is None:
                issues.append(pos.issue(base + ("at", "field"), f"unknown field {t.at.field!r}",
                                        hint=hint(t.at.field, fields)))
            elif f.type not in ("datetime", "date"):
                issues.append(pos.issue(base + ("at", "field"), f"{t.at.field!r} is not a date or datetime field"))
        if t.schedule is not None:
            try:
                parse_schedule(t.schedule, spec.units)
            except ValueError as e:
                issues.append(pos.issue(base + ("schedule",), str(e)))
    ladders = {s.name for s in spec.slas if s.escalate}
    for i, sla in enumerate(spec.slas):
        for j, step in enumerate(sla.escalate):
            duration(step.after, ("slas", i, "escalate", j, "after"), sla.workday_mode)
    for i, a in enumerate(spec.actions):
        for k, effect in enumerate(a.effects):
            if effect.acknowledge is not None and effect.acknowledge not in ladders:
                issues.append(pos.issue(("actions", i, "effects", k, "acknowledge"),
                                        f"{effect.acknowledge!r} is not an SLA with an escalation ladder",
                                        hint=hint(effect.acknowledge, ladders)))
    for i, q in enumerate(spec.quotas):
        if q.name in seen:
            issues.append(pos.issue(("quotas", i, "name"), f"clock name {q.name!r} is used twice"))
        seen.add(q.name)
        names(list(q.states or ()), set(spec.states), "state", ("quotas", i, "state"))
        names(list(q.actions), actions, "action", ("quotas", i, "action"))
    for i, r in enumerate(spec.reports):
        if r.name in seen:
            issues.append(pos.issue(("reports", i, "name"), f"name {r.name!r} is used twice"))
        seen.add(r.name)
        try:
            parse_schedule(r.schedule, spec.units)
        except ValueError as e:
            issues.append(pos.issue(("reports", i, "schedule"), str(e)))
    return issues


def _all_effects(spec: ProcedureSpec) -> Iterable[tuple[EffectSpec, tuple]]:
    """Every effect of the procedure with its path, wherever it is written."""
    def each(effs: list[EffectSpec], path: tuple) -> Iterable[tuple[EffectSpec, tuple]]:
        for k, e in enumerate(effs):
            yield e, path + (k,)
    yield from each(spec.start.effects, ("start", "effects"))
    for name, st in spec.states.items():
        yield from each(st.on_enter, ("states", name, "on_enter"))
    for i, a in enumerate(spec.actions):
        yield from each(a.effects, ("actions", i, "effects"))
    for i, sla in enumerate(spec.slas):
        yield from each(sla.on_warn, ("slas", i, "on_warn"))
        yield from each(sla.on_breach, ("slas", i, "on_breach"))
    for i, t in enumerate(spec.timers):
        yield from each(t.effects, ("timers", i, "effects"))


def check_spawn_data(spec: ProcedureSpec, pos: Positions, forms: Mapping[str, FormSpec],
                     procedures: Mapping[str, ProcedureSpec]) -> list[Issue]:
    """``spawn.data`` fills the child's start form: a key the form does not have would refuse
    the spawning action at run time ("unknown field"). A child not loaded is not checked."""
    issues: list[Issue] = []
    for e, p in _all_effects(spec):
        if e.spawn is None or e.spawn.procedure not in procedures:
            continue
        child = procedures[e.spawn.procedure]
        form_id = child.start.form
        if form_id is not None and form_id not in forms:
            continue  # the child's own lint says "unknown form"
        fields = forms[form_id].fields if form_id else {}
        for key in e.spawn.data:
            if key not in fields:
                where = f"start form {form_id!r}" if form_id else "start (it takes no data)"
                issues.append(pos.issue(p + ("spawn", "data", key),
                                        f"spawn data field {key!r} is not in {child.id}'s {where}",
                                        hint=hint(key, fields) or (f"fields: {', '.join(sorted(fields))}"
                                                                   if fields else "")))
    return issues


MESSAGE_NAMES = {"id", "state"}  # what a notify message may insert besides the instance's data
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def check_message_placeholders(spec: ProcedureSpec, pos: Positions, forms: Mapping[str, FormSpec]) -> list[Issue]:
    """``{name}`` in a notify message must be a field of the instance, ``{id}`` or ``{state}``:
    anything else is sent as an empty string."""
    known = set(field_types(spec, forms)) | MESSAGE_NAMES
    issues: list[Issue] = []
    for e, p in _all_effects(spec):
        if e.notify is None:
            continue
        for name in _PLACEHOLDER.findall(e.notify.message):
            if name not in known:
                issues.append(pos.issue(p + ("notify", "message"),
                                        f"message placeholder {{{name}}} is not a field of the instance, "
                                        f"{{id}} or {{state}}", hint=hint(name, known)))
    return issues


def _running_states(spec: ProcedureSpec, sla: SlaSpec) -> set[str]:
    """The states in which an SLA clock can be running (started, not stopped, not paused)."""
    if sla.start_in:
        first = {sla.start_in}
    elif sla.start_on:
        first = {a.to or s for a in spec.actions if a.name == sla.start_on for s in a.sources(spec.states)}
    else:
        first = {spec.start.state}
    first = {s for s in first if s in spec.states and s not in sla.stop_in}
    seen, queue = set(first), deque(first)
    while queue:
        s = queue.popleft()
        for a in spec.actions_from(s):
            nxt = a.to or s
            if a.name in sla.stop_on or nxt in sla.stop_in or nxt not in spec.states or nxt in seen:
                continue
            seen.add(nxt)
            queue.append(nxt)
    return {s for s in seen if s not in sla.pause_in and spec.states[s].kind != "final"}


def check_system_actions(spec: ProcedureSpec, pos: Positions) -> list[Issue]:
    """An SLA's ``breach_action`` and a timer's ``action`` are taken by the engine as
    ``system``: the action must allow the role ``system`` and be available from the states
    where the clock runs; otherwise the engine's attempt is refused when it comes due."""
    issues: list[Issue] = []

    def check(name: str, path: tuple, states: set[str], what: str) -> None:
        named = [a for a in spec.actions if a.name == name]
        if not named:
            return  # check_clocks says "unknown action"
        if not any("system" in a.roles for a in named):
            issues.append(pos.issue(path, f"action {name!r} does not allow the role 'system', "
                                          f"so the engine cannot take it {what}",
                                    hint="add system to its roles"))
            return
        missing = sorted(s for s in states if not any(s in a.sources(spec.states) for a in named))
        if missing:
            issues.append(pos.issue(path, f"action {name!r} is not available from "
                                          f"{', '.join(repr(s) for s in missing)}, where the clock runs",
                                    hint="add those states to its from:, or stop the clock before them"))

    for i, sla in enumerate(spec.slas):
        if sla.breach_action:
            check(sla.breach_action, ("slas", i, "breach_action"), _running_states(spec, sla), "on breach")
    for i, t in enumerate(spec.timers):
        if t.action:
            # armed in its state, or (no state) for the whole instance: every state not final
            states = (set(t.states) & set(spec.states) if t.states
                      else {n for n, st in spec.states.items() if st.kind != "final"})
            check(t.action, ("timers", i, "action"), states, "when the timer fires")
    return issues


def check_automatic_states(spec: ProcedureSpec, pos: Positions) -> list[Issue]:
    """``kind: automatic`` means the engine moves the instance on by itself: a timer armed
    in the state (or for the whole instance) or an SLA running there whose action leaves
    it, or an ``on_enter`` that completes the instance. Without one it waits forever."""
    issues: list[Issue] = []
    for s, st in spec.states.items():
        if st.kind != "automatic":
            continue
        if any(e.complete for e in st.on_enter):
            continue
        leaving = {a.name for a in spec.actions_from(s) if (a.to or s) != s}
        timers = any(t.action in leaving for t in spec.timers if t.state in (None, s))
        slas = any(sla.breach_action in leaving for sla in spec.slas if s in _running_states(spec, sla))
        if not (timers or slas):
            issues.append(pos.issue(("states", s), f"state {s!r} is automatic but nothing moves an instance "
                                                   f"out of it by itself", key=True,
                                    hint="add a timer with an action leaving it, an SLA breach_action, "
                                         "or make it kind: task or wait"))
    return issues
