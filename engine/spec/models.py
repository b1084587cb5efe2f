"""The procedure DSL as pydantic models: what a process owner writes in ``procedures/*.yaml``.

A procedure is a state machine: ``states`` (task, wait, automatic, final), ``actions``
that move an instance from one or more source states to a target (``from: "*"`` means
any state that is not final, e.g. "payment received" ends a dunning case from anywhere),
the ``roles`` allowed to take each action, an optional ``form`` for the data it needs,
a ``when`` guard over the data, and ``effects`` (set data, compute data, assign, notify,
spawn a linked procedure, complete). Models are strict (unknown keys are errors) so a typo
in a key is caught by ``sop lint`` with its line and column.
"""
from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.spec.forms import FieldSpec

ID_PATTERN = r"^[a-z][a-z0-9_]*$"
StateKind = Literal["task", "wait", "automatic", "final", "parallel"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AssignSpec(Strict):
    """Who works on a state: a named person, the steward of the unit's building, or a role.

    ``steward_of`` names the data field that holds the unit (e.g. ``unit``); the org file
    says which steward covers that building. ``role`` is the queue: when no person is
    resolved, the task waits for anyone with that role to claim it.
    """

    staff: Optional[str] = Field(None, description="A staff id from the org file")
    staff_from: Optional[str] = Field(None, description="Data field holding a staff id (e.g. the first receiver)")
    steward_of: Optional[str] = Field(None, description="Data field holding the unit; its building's steward")
    role: Optional[str] = Field(None, description="Role queue (also the fallback)")
    keep_watching: bool = Field(False, description="The person it moves away from keeps watching the case "
                                                   "(an escalation must not lose the worker)")

    @model_validator(mode="after")
    def _one_target(self) -> "AssignSpec":
        if not (self.staff or self.staff_from or self.steward_of or self.role):
            raise ValueError("assign needs staff, staff_from, steward_of or role")
        if self.staff and self.steward_of:
            raise ValueError("give staff or steward_of, not both")
        return self


class NotifySpec(Strict):
    """A message to people, written to the outbox in the same transaction."""

    role: Optional[str] = Field(None, description="Everyone with this role")
    staff: Optional[str] = Field(None, description="A staff id")
    staff_from: Optional[str] = Field(None, description="Data field holding a staff id")
    steward_of: Optional[str] = Field(None, description="Data field holding the unit")
    assignee: bool = Field(False, description="Whoever the instance is assigned to")
    watchers: bool = Field(False, description="Everyone watching the instance (`sop watch`, `watch:` effects)")
    message: str = Field(description="Text (Chinese); {field} inserts instance data, {id} the instance id")
    channel: Optional[str] = Field(None, description="Preferred channel: sms, email, webhook")

    @model_validator(mode="after")
    def _someone(self) -> "NotifySpec":
        if not (self.role or self.staff or self.staff_from or self.steward_of or self.assignee or self.watchers):
            raise ValueError("notify needs role, staff, staff_from, steward_of, assignee or watchers")
        return self


class WatchSpec(Strict):
    """People who start watching the case: it stays in their "cases I watch" inbox and they
    receive the notifications sent to ``watchers: true``, without being assigned."""

    role: Optional[str] = Field(None, description="Everyone with this role")
    staff: Optional[str] = Field(None, description="A staff id")
    staff_from: Optional[str] = Field(None, description="Data field holding a staff id")
    steward_of: Optional[str] = Field(None, description="Data field holding the unit; its building's steward")
    assignee: bool = Field(False, description="Whoever the instance is assigned to now")

    @model_validator(mode="after")
    def _someone(self) -> "WatchSpec":
        if not (self.role or self.staff or self.staff_from or self.steward_of or self.assignee):
            raise ValueError("watch needs role, staff, staff_from, steward_of or assignee")
        return self


class SpawnSpec(Strict):
    """Start another procedure linked to this instance (its ``parent``)."""

    procedure: str = Field(description="Id of the procedure to start")
    data: dict[str, str] = Field(default_factory=dict, description="Child field -> expression over this instance")
    when: Optional[str] = Field(None, description="Only spawn when this expression is true")


class EffectSpec(Strict):
    """Exactly one of the keys below; ``when`` makes it conditional."""

    set: Optional[dict[str, Any]] = Field(None, description="Field -> literal value")
    compute: Optional[dict[str, str]] = Field(None, description="Field -> expression")
    assign: Optional[AssignSpec] = None
    notify: Optional[NotifySpec] = None
    spawn: Optional[SpawnSpec] = None
    complete: Optional[bool] = Field(None, description="End the instance (status completed)")
    acknowledge: Optional[str] = Field(None, description="SLA name: its escalation is acknowledged and stops")
    watch: Optional[WatchSpec] = Field(None, description="People who start watching the case")
    when: Optional[str] = Field(None, description="Apply only when this expression is true")

    @model_validator(mode="after")
    def _exactly_one(self) -> "EffectSpec":
        given = [k for k in ("set", "compute", "assign", "notify", "spawn", "complete", "acknowledge", "watch")
                 if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("an effect has exactly one of set, compute, assign, notify, spawn, complete, acknowledge, "
                             "watch"
                             + (f" (got {', '.join(given)})" if given else ""))
        return self


class BranchSpec(Strict):
    """One branch of a ``kind: parallel`` state: a small sub-flow of the procedure's states,
    worked at the same time as the other branches, each with its own assignee and actions.
    The branch is done when it reaches one of its ``final`` states."""

    title: str = Field(description="Branch name shown to staff (Chinese)")
    start: str = Field(description="The branch's first state")
    states: list[str] = Field(min_length=1, description="The states of this branch (the start included)")


class StateSpec(Strict):
    title: str = Field(description="State name shown to staff (Chinese)")
    kind: StateKind = Field("task", description="task: a person works; wait: waiting for the outside; "
                                                "automatic: the engine moves on; final: the end; "
                                                "parallel: branches worked at the same time, then a join")
    branches: dict[str, BranchSpec] = Field(default_factory=dict,
                                            description="kind: parallel: branch name -> its sub-flow")
    join: Union[Literal["all", "any"], list[str]] = Field(
        "all", description="kind: parallel: move on when all branches, any one, or these named ones are done")
    next: Optional[str] = Field(None, description="kind: parallel: the state entered when the join completes")
    owner: Optional[str] = Field(None, description="Role responsible for this state")
    assign: Optional[AssignSpec] = Field(None, description="Assignment on entering this state")
    on_enter: list[EffectSpec] = Field(default_factory=list, description="Effects on entering")
    rules: list[str] = Field(default_factory=list, description="Rule IDs encoded here")
    description: str = ""

    @model_validator(mode="after")
    def _parallel_keys(self) -> "StateSpec":
        if self.kind == "parallel" and (not self.branches or not self.next):
            raise ValueError("a parallel state needs branches and next")
        if self.kind != "parallel" and (self.branches or self.next or self.join != "all"):
            raise ValueError("branches, join and next belong to a state of kind: parallel")
        return self


class GuardSpec(Strict):
    """One more condition of an action, with its own refusal: each rule refuses in its own words."""

    when: str = Field(description="Guard expression; the action is refused with `refusal` when false")
    refusal: str = Field(description="Message shown when this guard is false")


class ActionSpec(Strict):
    name: str = Field(pattern=ID_PATTERN, description="Action name, used by `sop advance ID NAME`")
    title: str = Field(description="Action label (Chinese)")
    source: Union[Literal["*"], list[str]] = Field(alias="from", description='Source state(s), or "*" for any non-final state')
    to: Optional[str] = Field(None, description="Target state; omit to stay in the state")
    roles: list[str] = Field(min_length=1, description="Roles allowed to take the action")
    form: Optional[str] = Field(None, description="Form id for the data this action needs")
    when: Optional[str] = Field(None, description="Guard expression; the action is refused when false")
    refusal: Optional[str] = Field(None, description="Message shown when the guard is false")
    guards: list[GuardSpec] = Field(default_factory=list,
                                    description="More guards, checked after `when` in order, each with its refusal")
    effects: list[EffectSpec] = Field(default_factory=list)
    rules: list[str] = Field(default_factory=list, description="Rule IDs encoded here")

    @field_validator("source", mode="before")
    @classmethod
    def _one_source_is_a_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) and v != "*" else v

    def sources(self, states: dict[str, StateSpec]) -> list[str]:
        if self.source == "*":
            return [s for s, spec in states.items() if spec.kind != "final"]
        return list(self.source)


class StartSpec(Strict):
    state: str = Field(description="The first state")
    roles: list[str] = Field(min_length=1, description="Roles allowed to start an instance")
    form: Optional[str] = Field(None, description="Form for the start data")
    effects: list[EffectSpec] = Field(default_factory=list)


WorkdayMode = Literal["end_of_day", "working_hours"]


class GoalCase(Strict):
    """One branch of a data-dependent goal: the first case whose ``when`` holds applies."""

    when: Optional[str] = Field(None, description="Expression; omit for the default case")
    goal: str = Field(description="Duration, e.g. '1 workday', '4 working hours', '3 rings'")


class EscalationStep(Strict):
    """One rung of an SLA's escalation ladder: ``after`` the breach, tell the next level.
    The task stays with its worker; the people told watch it until someone acknowledges."""

    after: str = Field(description="Time after the breach: 0s, 2 working hours, 1 workday")
    notify: NotifySpec = Field(description="Who is told, and what")


class SlaSpec(Strict):
    """An SLA clock: starts, may pause, stops; met when stopped by the due time, else breached.

    Rule CMP-3 reads: ``start`` when the complaint is received, ``stop`` on the ``reply``
    action, ``goal`` 1 workday for oral complaints and 3 for letters.
    """

    name: str = Field(pattern=ID_PATTERN, description="SLA name, shown in `sop show` deadlines")
    title: str = Field(description="Label (Chinese)")
    start_on: Optional[str] = Field(None, description="Action that starts the clock; omit to start with the instance")
    start_in: Optional[str] = Field(None, description="State whose entry starts the clock")
    stop_on: list[str] = Field(default_factory=list, description="Actions that stop the clock")
    stop_in: list[str] = Field(default_factory=list, description="States whose entry stops the clock")
    pause_in: list[str] = Field(default_factory=list, description="States in which the clock is paused")
    goal: Union[str, list[GoalCase]] = Field(description="Duration, or cases [{when, goal}] chosen by data")
    workday_mode: Optional[WorkdayMode] = Field(
        None, description="How 'N workdays' is read: end_of_day (by the end of the N-th next working day) "
                          "or working_hours (N x the working-day length in working hours). Required for workday goals.")
    warn_at: list[int] = Field(default_factory=list, description="Warn at these percentages of the goal, e.g. [50, 80]")
    on_warn: list["EffectSpec"] = Field(default_factory=list, description="Effects when a warning threshold passes")
    on_breach: list["EffectSpec"] = Field(default_factory=list, description="Effects when the due time passes")
    breach_action: Optional[str] = Field(None, description="Action the engine takes (as system) on breach")
    escalate: list[EscalationStep] = Field(
        default_factory=list, description="After the breach, each rung in turn until an action acknowledges "
                                          "(effect acknowledge: SLA name) or the clock stops")
    reset_on: Optional[str] = Field(None, description="Action that sets a new due time from data (CMP-4 interim reply)")
    reset_due_field: Optional[str] = Field(None, description="Datetime field holding the new due time")
    rules: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> "SlaSpec":
        if self.start_on and self.start_in:
            raise ValueError("give start_on or start_in, not both")
        if not (self.stop_on or self.stop_in):
            raise ValueError("an SLA needs stop_on or stop_in")
        if bool(self.reset_on) != bool(self.reset_due_field):
            raise ValueError("reset_on and reset_due_field go together")
        if any(not 0 < p < 100 for p in self.warn_at):
            raise ValueError("warn_at percentages must be between 0 and 100")
        return self


class AtSpec(Strict):
    """A time computed from data: ``field`` plus ``offset`` (``starts_at`` - 15m)."""

    field: str = Field(description="Date or datetime field of the instance")
    offset: str = Field("0s", description="Wall-clock or working duration, may start with '-'")
    time: Optional[str] = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
                                description="For a date field: the local time of day (default 00:00)")


class TimerSpec(Strict):
    """A timer: fires once (``after`` / ``at``) or on a schedule while its state lasts.

    Armed on entering ``state`` (or at start when no state is given) and cancelled when the
    state is left; with a list of states, armed on entering any of them from outside the list
    and cancelled on leaving the list (moving between them keeps it running). Exactly one of
    ``after``, ``at``, ``schedule``.
    """

    name: str = Field(pattern=ID_PATTERN, description="Timer name")
    title: str = Field(description="Label (Chinese)")
    state: Optional[Union[str, list[str]]] = Field(
        None, description="Armed while in this state (or any of these states); omit for the whole instance")
    after: Optional[str] = Field(None, description="Duration after entering the state")
    at: Optional[AtSpec] = Field(None, description="Time computed from data")
    schedule: Optional[str] = Field(None, description="Recurring: 'every 15 minutes', 'every workday at 10:00', "
                                                      "'monthly on day 16', 'monthly on day 30 or last day'")
    workday_mode: Optional[WorkdayMode] = Field(None, description="For 'after: N workdays'")
    when: Optional[str] = Field(None, description="Only act when this expression holds at firing time")
    effects: list["EffectSpec"] = Field(default_factory=list, description="Effects when it fires")
    action: Optional[str] = Field(None, description="Action the engine takes (as system) when it fires")
    rules: list[str] = Field(default_factory=list)

    @property
    def states(self) -> Optional[tuple[str, ...]]:
        """The states it runs in (None: the whole instance)."""
        if self.state is None:
            return None
        return (self.state,) if isinstance(self.state, str) else tuple(self.state)

    @model_validator(mode="after")
    def _one_kind(self) -> "TimerSpec":
        kinds = [k for k in ("after", "at", "schedule") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a timer has exactly one of after, at, schedule")
        return self


class QuotaSpec(Strict):
    """A per-period quota, judged at the end of every period while it runs: "the steward
    patrols the works at least twice every workday" (REN-4).

    Counts the given actions taken in each period (a workday's working hours, a calendar
    day, a Monday-to-Sunday week); at the period's end the period is met or missed, with an
    event each, and ``on_miss`` runs. Armed on coming into ``state`` like a timer; only whole
    periods are judged, so the day it is armed after the period began is not.
    """

    name: str = Field(pattern=ID_PATTERN, description="Quota name")
    title: str = Field(description="Label (Chinese)")
    action: Union[str, list[str]] = Field(description="The action(s) that count")
    count: int = Field(ge=1, description="At least this many in each period")
    per: Literal["workday", "day", "week"] = Field(description="The period: workday, day or week")
    state: Optional[Union[str, list[str]]] = Field(None, description="Runs while in this state (or these states)")
    on_miss: list["EffectSpec"] = Field(default_factory=list, description="Effects when a period is missed")
    rules: list[str] = Field(default_factory=list)

    @property
    def actions(self) -> tuple[str, ...]:
        return (self.action,) if isinstance(self.action, str) else tuple(self.action)

    @property
    def states(self) -> Optional[tuple[str, ...]]:
        if self.state is None:
            return None
        return (self.state,) if isinstance(self.state, str) else tuple(self.state)


class ReportSpec(Strict):
    """One report over all running instances of the procedure, on a schedule (DUN-6's
    催费日报表): one message per occurrence to the people named, a line per instance.

    A report is a snapshot of the moment it is sent: after downtime only the latest missed
    occurrence is sent, since earlier snapshots cannot be made any more.
    """

    name: str = Field(pattern=ID_PATTERN, description="Report name")
    title: str = Field(description="Label (Chinese)")
    schedule: str = Field(description="When: e.g. 'every workday at 17:30', 'weekly on the last workday at 16:00'")
    when: Optional[str] = Field(None, description="Which running instances it lists (all when omitted)")
    role: str = Field(description="Sent to everyone with this role")
    heading: str = Field(description="First line (Chinese); {date} the day, {count} the instances listed")
    line: str = Field(description="One line per instance; {field} inserts its data, {id} its number")
    empty: Optional[str] = Field(None, description="Sent when no instance is listed (nothing is sent when omitted)")
    channel: Optional[str] = Field(None, description="Preferred channel: sms, email, webhook")
    rules: list[str] = Field(default_factory=list)


class ProcedureSpec(Strict):
    id: str = Field(pattern=ID_PATTERN, description="Procedure id (file name without .yaml)")
    title: str = Field(description="Procedure title (Chinese)")
    description: str = ""
    rules: list[str] = Field(default_factory=list, description="Rule IDs this procedure encodes")
    fields: dict[str, FieldSpec] = Field(default_factory=dict,
                                         description="Instance fields set by effects, not by forms")
    units: dict[str, str] = Field(default_factory=dict, description="Units of this procedure, e.g. {ring: 5s}")
    start: StartSpec
    states: dict[str, StateSpec]
    actions: list[ActionSpec] = Field(default_factory=list)
    slas: list[SlaSpec] = Field(default_factory=list, description="SLA clocks")
    timers: list[TimerSpec] = Field(default_factory=list, description="Timers")
    quotas: list[QuotaSpec] = Field(default_factory=list, description="Per-period quotas (at least N actions a period)")
    reports: list[ReportSpec] = Field(default_factory=list, description="Scheduled reports over the running instances")

    @field_validator("states")
    @classmethod
    def _state_names(cls, v: dict[str, StateSpec]) -> dict[str, StateSpec]:
        import re
        for name in v:
            if not re.fullmatch(ID_PATTERN, name):
                raise ValueError(f"state name {name!r} must be snake_case")
        return v

    def actions_from(self, state: str) -> list[ActionSpec]:
        return [a for a in self.actions if state in a.sources(self.states)]


SlaSpec.model_rebuild()
TimerSpec.model_rebuild()
QuotaSpec.model_rebuild()
ProcedureSpec.model_rebuild()
