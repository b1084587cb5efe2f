"""The organisation file: who works here, in which roles, for which buildings.

Transitions name roles; the org file says who holds them. "The steward of the unit's
building" is resolved here, from each steward's ``buildings``. So are the two site-wide
powers the engine grants beyond a transition's roles: which roles *supervise* (act on any
task of any building, assign, read anyone's inbox) and which *audit* (verify, SLA report,
dashboard). They are data of the site, not constants of the engine, so an office that
calls its supervisor something else says so here.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo,
                      model_validator)

from engine.errors import ProcedureError, StaffNotFound
from engine.spec.yamlio import load_file
from engine.spec.validation import issues_from_validation

STANDARD_ROLES = {
    "front_desk": "前台接待",
    "steward": "管家",
    "cs_supervisor": "客服主管",
    "office_director": "管理处主任",
    "cs_department": "公司客服部",
    "deputy_manager": "副经理",
    "general_manager": "总经理",
    "engineering": "工程部",
    "engineering_manager": "工程部经理",
    "security": "保安部",
    "meeting_staff": "会务人员",
    "archive_keeper": "档案管理员",
    "finance": "财务",
}

# What `supervisors:` and `auditors:` mean when the file does not say: today's office
# (only the roles the file declares, so a file with its own `roles:` still loads).
DEFAULT_SUPERVISORS = ("cs_supervisor", "office_director", "cs_department", "deputy_manager", "general_manager")
DEFAULT_EXTRA_AUDITORS = ("archive_keeper",)


def _declared_role(name: str, info: ValidationInfo) -> str:
    """A role named in `supervisors:`/`auditors:` must be one of the file's roles; refused
    item by item, so the error points at the very entry (file:line:col)."""
    roles = info.data.get("roles")
    if roles is not None and name not in roles:
        close = difflib.get_close_matches(name, list(roles), n=1)
        raise ValueError(f"unknown role {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return name


RoleName = Annotated[str, AfterValidator(_declared_role)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Staff(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    roles: list[str] = Field(min_length=1)
    buildings: list[str] = Field(default_factory=list)
    phone: Optional[str] = None
    email: Optional[str] = None
    # The telephone seat (extension) this person answers at: call-detail records name the
    # seat, and an imported call is credited to its person (PHN-6, CMP-2).
    seat: Optional[str] = None
    active: bool = True


class Site(Strict):
    name: str
    greeting: str = ""
    zone: str = "Asia/Shanghai"


class OrgSpec(Strict):
    site: Site
    roles: dict[str, str] = Field(default_factory=lambda: dict(STANDARD_ROLES))
    buildings: list[str] = Field(default_factory=list)
    # Roles that supervise / audit; None: the defaults above (auditors: the supervisors
    # and the archive keeper). Declared after ``roles`` so their entries can be checked.
    supervisors: Optional[list[RoleName]] = None
    auditors: Optional[list[RoleName]] = None
    staff: list[Staff]

    @model_validator(mode="after")
    def _consistent(self) -> "OrgSpec":
        seen: set[str] = set()
        for s in self.staff:
            if s.id in seen:
                raise ValueError(f"staff id {s.id!r} appears twice")
            seen.add(s.id)
            unknown = [r for r in s.roles if r not in self.roles]
            if unknown:
                raise ValueError(f"staff {s.id}: unknown role(s) {', '.join(unknown)}")
            stray = [b for b in s.buildings if self.buildings and b not in self.buildings]
            if stray:
                raise ValueError(f"staff {s.id}: unknown building(s) {', '.join(stray)}")
        seats: dict[str, str] = {}
        for s in self.staff:
            if s.seat and s.active:
                if s.seat in seats:
                    raise ValueError(f"seat {s.seat!r} belongs to both {seats[s.seat]} and {s.id}")
                seats[s.seat] = s.id
        return self

    if TYPE_CHECKING:  # lookups worked out once, below (set on the frozen model; not fields)
        _by_id: dict[str, Staff]
        _stewards: dict[str, str]
        _seats: dict[str, str]
        _supervising: tuple[str, ...]
        _auditing: tuple[str, ...]
        _scopes: dict[str, Optional[tuple[str, ...]]]

    def model_post_init(self, _context: object) -> None:
        object.__setattr__(self, "_by_id", {s.id: s for s in self.staff})
        stewards: dict[str, str] = {}
        for s in self.staff:
            if "steward" in s.roles and s.active:
                for b in s.buildings:
                    stewards.setdefault(b, s.id)
        object.__setattr__(self, "_stewards", stewards)
        object.__setattr__(self, "_seats", {s.seat: s.id for s in self.staff if s.seat and s.active})
        supervising = tuple(self.supervisors if self.supervisors is not None
                            else (r for r in DEFAULT_SUPERVISORS if r in self.roles))
        auditing = tuple(self.auditors if self.auditors is not None
                         else (*supervising, *(r for r in DEFAULT_EXTRA_AUDITORS if r in self.roles)))
        object.__setattr__(self, "_supervising", supervising)
        object.__setattr__(self, "_auditing", auditing)
        # Every action asks for its actor's scope: worked out once per person.
        object.__setattr__(self, "_scopes", {
            s.id: tuple(s.buildings) if s.buildings and set(s.roles).isdisjoint(supervising) else None
            for s in self.staff})

    @property
    def supervising_roles(self) -> tuple[str, ...]:
        """Roles that may act on any task of any building, assign, and read others' inboxes."""
        return self._supervising

    @property
    def auditing_roles(self) -> tuple[str, ...]:
        """Roles that may read the site-wide audit views: verify, SLA report, dashboard."""
        return self._auditing

    def person(self, staff_id: str) -> Staff:
        try:
            return self._by_id[staff_id]
        except KeyError:
            raise StaffNotFound(staff_id) from None

    def has(self, staff_id: str) -> bool:
        return staff_id in self._by_id

    def building_scope(self, staff_id: str) -> Optional[tuple[str, ...]]:
        """The buildings a person's work is limited to, or None when it is not limited.

        Someone with ``buildings:`` (a steward, 按幢划分) works on their buildings' queue and
        on what is assigned to them; a supervising role lifts the limit; staff without
        buildings (front desk, engineering, finance, the engine itself) are not limited.
        """
        return self._scopes.get(staff_id)

    def steward_of_building(self, building: str | None) -> str | None:
        return self._stewards.get(building) if building else None

    def at_seat(self, seat: str | None) -> str | None:
        """Who answers at this telephone seat (None: nobody active has it)."""
        return self._seats.get(seat) if seat else None

    def holders(self, role: str) -> list[Staff]:
        return [s for s in self.staff if role in s.roles and s.active]


def load_org(path: str | Path) -> OrgSpec:
    data, pos = load_file(path)
    try:
        return OrgSpec.model_validate(data)
    except ValidationError as e:
        raise ProcedureError(issues_from_validation(e, pos)) from None
