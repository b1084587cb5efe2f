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
StateKind = Literal["task", "wait", "automatic", "final"]


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
    steward_of: Optional[str] = Field(None, description="Data field holding the unit")
    assignee: bool = Field(False, description="Whoever the instance is assigned to")
    message: str = Field(description="Text (Chinese); {field} inserts instance data, {id} the instance id")
    channel: Optional[str] = Field(None, description="Preferred channel: sms, email, webhook")

    @model_validator(mode="after")
    def _someone(self) -> "NotifySpec":
        if not (self.role or self.staff or self.steward_of or self.assignee):
            raise ValueError("notify needs role, staff, steward_of or assignee")
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
    when: Optional[str] = Field(None, description="Apply only when this expression is true")

    @model_validator(mode="after")
    def _exactly_one(self) -> "EffectSpec":
        given = [k for k in ("set", "compute", "assign", "notify", "spawn", "complete")
                 if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("an effect has exactly one of set, compute, assign, notify, spawn, complete"
                             + (f" (got {', '.join(given)})" if given else ""))
        return self


class StateSpec(Strict):
    title: str = Field(description="State name shown to staff (Chinese)")
    kind: StateKind = Field("task", description="task: a person works; wait: waiting for the outside; "
                                                "automatic: the engine moves on; final: the end")
    owner: Optional[str] = Field(None, description="Role responsible for this state")
    assign: Optional[AssignSpec] = Field(None, description="Assignment on entering this state")
    on_enter: list[EffectSpec] = Field(default_factory=list, description="Effects on entering")
    rules: list[str] = Field(default_factory=list, description="Rule IDs encoded here")
    description: str = ""


class ActionSpec(Strict):
    name: str = Field(pattern=ID_PATTERN, description="Action name, used by `sop advance ID NAME`")
    title: str = Field(description="Action label (Chinese)")
    source: Union[Literal["*"], list[str]] = Field(alias="from", description='Source state(s), or "*" for any non-final state')
    to: Optional[str] = Field(None, description="Target state; omit to stay in the state")
    roles: list[str] = Field(min_length=1, description="Roles allowed to take the action")
    form: Optional[str] = Field(None, description="Form id for the data this action needs")
    when: Optional[str] = Field(None, description="Guard expression; the action is refused when false")
    refusal: Optional[str] = Field(None, description="Message shown when the guard is false")
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


class ProcedureSpec(Strict):
    id: str = Field(pattern=ID_PATTERN, description="Procedure id (file name without .yaml)")
    title: str = Field(description="Procedure title (Chinese)")
    description: str = ""
    rules: list[str] = Field(default_factory=list, description="Rule IDs this procedure encodes")
    fields: dict[str, FieldSpec] = Field(default_factory=dict,
                                         description="Instance fields set by effects, not by forms")
    start: StartSpec
    states: dict[str, StateSpec]
    actions: list[ActionSpec] = Field(default_factory=list)

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
