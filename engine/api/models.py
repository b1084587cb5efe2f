"""Request and response bodies of the HTTP API (``…Create``/``…Public``, per the conventions).

Requests are strict (an unknown key is a 422 naming it). Form data stays a free JSON
object here: it is validated by the procedure's compiled form, exactly as from the CLI,
so a client learns the rules from ``GET …/form`` rather than from this file. Response
models mirror :mod:`engine.runtime.views`, the one place the outside view is shaped; the
procedure and form definitions are the engine's own spec models.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Optional, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.spec.forms import FormSpec
from engine.spec.models import ProcedureSpec

MAX_DEPTH = 16
EARLIEST, LATEST = 2000, 2099

COMPLAINT_EXAMPLE = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
                     "content": "楼上漏水", "anonymous": False}


def _check_json(value: Any, path: str, depth: int = 0) -> None:
    """Refuse what the log cannot keep: unpaired surrogates, NUL, absurd nesting."""
    if depth > MAX_DEPTH:
        raise ValueError(f"{path or 'body'}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{path}: contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{path}: contains an unpaired surrogate (not valid Unicode text)") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_json(k, path, depth + 1)
            _check_json(v, f"{path}.{k}" if path else str(k), depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_json(v, f"{path}.{i}", depth + 1)


class Body(BaseModel):
    """A request body: strict keys, text that the log can keep, times within reason."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        _check_json(value, "")
        return value

    @field_validator("at", check_fields=False)
    @classmethod
    def _sane_time(cls, v: Optional[datetime]) -> Optional[datetime]:
        if v is not None and not (EARLIEST <= v.year <= LATEST):
            raise ValueError(f"must be between {EARLIEST} and {LATEST}")
        return v


_AT = Field(None, description="When it happened (ISO 8601 with offset); default: now.",
            examples=["2025-09-30T17:55:00+08:00"])
_DATA: dict[str, Any] = Field(default_factory=dict, description="The form data of this step (see the form's JSON Schema).")


class InstanceCreate(Body):
    procedure: str = Field(max_length=64, pattern=r"^[a-z][a-z0-9_]*$", examples=["complaint"])
    data: dict[str, Any] = Field(default_factory=dict, examples=[COMPLAINT_EXAMPLE],
                                 description="The procedure's start form.")
    at: Optional[AwareDatetime] = _AT
    external_key: Optional[str] = Field(None, min_length=1, max_length=200,
                                        description="A key from another system (e.g. a call id): starting "
                                                    "twice with it returns the first instance.")


class BulkRow(Body):
    data: dict[str, Any] = Field(default_factory=dict, description="The procedure's start form for this row.")
    external_key: Optional[str] = Field(None, min_length=1, max_length=200,
                                        description="A key from another system: a row whose key is already "
                                                    "stored is not started again; its instance is returned.")


class BulkCreate(Body):
    procedure: str = Field(max_length=64, pattern=r"^[a-z][a-z0-9_]*$", examples=["fee_cycle"])
    rows: list[BulkRow] = Field(min_length=1, max_length=5000,
                                description="One instance per row, all started in one transaction, or none.")
    at: Optional[AwareDatetime] = _AT


class ActionCreate(Body):
    data: dict[str, Any] = _DATA
    at: Optional[AwareDatetime] = _AT


class DataCreate(Body):
    data: dict[str, Any] = Field(min_length=1, description="Fields of the procedure to record.",
                                 examples=[{"contact": "13912345678"}])
    at: Optional[AwareDatetime] = _AT


class ClaimCreate(Body):
    at: Optional[AwareDatetime] = _AT


class AssignCreate(Body):
    assignee: str = Field(min_length=1, max_length=64, examples=["chen_jing"])
    at: Optional[AwareDatetime] = _AT


# ------------------------------------------------------------------ responses

class Public(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActionPublic(Public):
    name: str
    title: str
    roles: list[str]
    form: Optional[str]
    branch: Optional[str] = Field(None, description="The parallel branch the action belongs to, if any")


class DeadlinePublic(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    kind: Optional[str] = None
    due: Optional[datetime] = None
    status: str
    provisional: bool = False  # computed on a provisional calendar year (engine/statutory.py)
    provisional_years: list[int] = []


class InstancePublic(Public):
    """Exactly what ``sop show --json`` prints."""

    id: int
    procedure: str
    version: str
    state: str
    status: str
    assignee: Optional[str]
    assignee_role: Optional[str]
    revision: int
    data: dict[str, Any]
    actions: list[ActionPublic]
    deadlines: list[DeadlinePublic]
    parent: Optional[int]
    children: list[int]
    watchers: list[str] = Field([], description="Who watches the case (staff ids)")
    branches: dict[str, Any] = Field({}, description="Open parallel branches: name -> {state, status, assignee, "
                                                     "role}")
    started_at: Optional[datetime]
    last_occurred_at: Optional[datetime]


class InstanceSummary(Public):
    id: int
    procedure: str
    version: str
    state: str
    status: str
    assignee: Optional[str]
    assignee_role: Optional[str]
    unit: Optional[str]
    revision: int
    started_at: Optional[datetime]
    last_occurred_at: Optional[datetime]
    due: Optional[datetime] = None  # the most urgent running SLA's due time
    sla_status: Optional[str] = None  # open | warned | breached
    provisional: bool = False  # that due time was computed on a provisional calendar year


class EventPublic(Public):
    seq: int
    type: str
    actor: str
    role: Optional[str]
    occurred_at: datetime
    recorded_at: datetime
    data: dict[str, Any]
    prev_hash: str
    hash: str


T = TypeVar("T")


class Page(Public, Generic[T]):
    items: list[T]
    total: int = Field(description="How many match in all")
    limit: int
    offset: int
    next_offset: Optional[int] = Field(description="Offset of the next page; null on the last page")


class BulkInstancePublic(Public):
    id: int
    state: str
    revision: int
    existing: bool = Field(description="Its external key was stored already: returned, not started.")


class BulkStartedPublic(Public):
    """A bulk start: every row's instance, in row order."""

    procedure: str
    started: int
    existing: int
    instances: list[BulkInstancePublic]


class ReplayPublic(Public):
    instance: int
    ok: bool
    events: int
    seq: Optional[int]
    difference: Optional[str]


class BrokenLinkPublic(Public):
    instance: int
    seq: int
    reason: str


class FindingPublic(Public):
    """One piece of tampering `sop audit verify` names (see docs/audit.md)."""

    kind: str  # edited | rewritten | inserted | deleted | instance_deleted | reordered | ledger
    detail: str
    instance: Optional[int] = None
    seq: Optional[int] = None
    ledger_seq: Optional[int] = None


class VerifyPublic(Public):
    ok: bool
    instances: int
    events: int
    broken: Optional[BrokenLinkPublic]
    ledger_rows: int = 0  # rows of the store-wide ledger checked against every chain
    findings: list[FindingPublic] = []  # every piece of tampering found, chains and ledger


class VersionPublic(Public):
    version: str
    current: bool
    first_used_at: Optional[datetime] = Field(description="When an instance first ran on it; null if none yet")


class ProcedureSummary(Public):
    id: str
    title: str
    description: str
    version: str = Field(description="The version new instances start on")
    versions: list[VersionPublic]


class ProcedurePublic(ProcedureSummary):
    definition: ProcedureSpec = Field(description="The procedure as the engine reads it (this version)")
    forms: dict[str, FormSpec] = Field(description="The forms this version uses")
    shown_version: str = Field(description="The version whose definition is shown")


class FormPublic(Public):
    id: str
    title: str
    procedure: str
    version: str
    definition: Optional[FormSpec] = Field(description="The form file; null when the step takes no data")
    json_schema: dict[str, Any] = Field(description="JSON Schema of the data to send, with labels (zh)")


class MePublic(Public):
    id: str
    name: str
    roles: list[str]
    buildings: list[str]


class ErrorField(Public):
    path: str = Field(description="Dotted path of the failing field, e.g. data.unit")
    in_: str = Field(alias="in", description="body, query, path or header")
    message: str


class ErrorPublic(BaseModel):
    code: str = Field(description="Stable, for programs: forbidden, conflict, form_invalid, …")
    message: str = Field(description="For people")
    errors: Optional[list[ErrorField]] = None
    allowed_roles: Optional[list[str]] = None
