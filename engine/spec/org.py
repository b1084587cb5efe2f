"""The organisation file: who works here, in which roles, for which buildings.

Transitions name roles; the org file says who holds them. "The steward of the unit's
building" is resolved here, from each steward's ``buildings``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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

    def model_post_init(self, _context: object) -> None:
        object.__setattr__(self, "_by_id", {s.id: s for s in self.staff})
        stewards: dict[str, str] = {}
        for s in self.staff:
            if "steward" in s.roles and s.active:
                for b in s.buildings:
                    stewards.setdefault(b, s.id)
        object.__setattr__(self, "_stewards", stewards)
        object.__setattr__(self, "_seats", {s.seat: s.id for s in self.staff if s.seat and s.active})

    def person(self, staff_id: str) -> Staff:
        try:
            return self._by_id[staff_id]  # type: ignore[attr-defined]
        except KeyError:
            raise StaffNotFound(staff_id) from None

    def has(self, staff_id: str) -> bool:
        return staff_id in self._by_id  # type: ignore[attr-defined]

    def steward_of_building(self, building: str | None) -> str | None:
        return self._stewards.get(building) if building else None  # type: ignore[attr-defined]

    def at_seat(self, seat: str | None) -> str | None:
        """Who answers at this telephone seat (None: nobody active has it)."""
        return self._seats.get(seat) if seat else None  # type: ignore[attr-defined]

    def holders(self, role: str) -> list[Staff]:
        return [s for s in self.staff if role in s.roles and s.active]


def load_org(path: str | Path) -> OrgSpec:
    data, pos = load_file(path)
    try:
        return OrgSpec.model_validate(data)
    except ValidationError as e:
        raise ProcedureError(issues_from_validation(e, pos)) from None
