"""Paged lists: ``GET /v1/instances`` (everything, newest first) and ``GET /v1/tasks``
(an inbox, oldest first: assigned to a person, or waiting in a role's queue).

Filters: procedure, state, status, assignee, building, overdue; one page of ``limit``
items from ``offset``, with the total and the next offset (null on the last page).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request

from engine.api.auth import Caller, caller
from engine.api.errors import ApiError, problem
from engine.api.models import ErrorPublic, InstanceSummary, Page
from engine.runtime.queries import next_deadline
from engine.core.model import Instance
from engine.runtime.views import iso
from engine.store import queries
from engine.store.queries import InstanceFilter, branch_tasks, list_instances, merged

router = APIRouter(prefix="/v1", tags=["lists"],
                   responses={403: {"model": ErrorPublic, "description": "another's inbox needs a supervisor"}})

_NAME = r"^[a-z][a-z0-9_]*$"


def _filters(procedure: Optional[str] = Query(None, max_length=64, pattern=_NAME),
             state: Optional[str] = Query(None, max_length=64, pattern=_NAME),
             status: Optional[str] = Query(None, max_length=20, pattern=_NAME,
                                           description="active, completed, …"),
             assignee: Optional[str] = Query(None, max_length=64, pattern=_NAME),
             building: Optional[str] = Query(None, max_length=16, pattern=r"^[0-9A-Za-z]+$"),
             overdue: Optional[bool] = Query(None, description="Only instances with an SLA past due (or not)"),
             ) -> InstanceFilter:
    return InstanceFilter(procedure=procedure, state=state, status=status, assignee=assignee,
                          building=building, overdue=overdue)


class Paging:
    def __init__(self, limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0, le=2**31)) -> None:
        self.limit, self.offset = limit, offset


def _summary(inst: Instance, zone: ZoneInfo) -> dict[str, Any]:
    unit = inst.data.get("unit")
    return {"id": inst.id, "procedure": inst.procedure, "version": inst.version, "state": inst.state,
            "status": inst.status, "assignee": inst.assignee, "assignee_role": inst.assignee_role,
            "unit": unit if isinstance(unit, str) else None, "revision": inst.revision,
            "started_at": iso(inst.started_at, zone), "last_occurred_at": iso(inst.last_occurred_at, zone),
            **next_deadline(inst, zone)}


Branches = tuple[Optional[str], tuple[str, ...], Optional[tuple[str, ...]]]  # (staff, roles, buildings)


def _page(request: Request, f: InstanceFilter, paging: Paging, inbox: bool,
          branches: Optional[Branches] = None) -> dict[str, Any]:
    """One page; an inbox with ``branches`` (staff, roles, buildings) also holds one task per
    open parallel branch waiting on them, merged in order (engine/store/queries.branch_tasks)."""
    engine = request.app.state.engine
    now = engine.clock.now()
    with engine.read() as conn:
        extra = branch_tasks(conn, *branches, narrow=f, now=now) if branches else []
        if extra:
            whole = list_instances(conn, f, now, paging.offset + paging.limit, 0, oldest_first=True)
            items = merged(whole.items, extra)[paging.offset:paging.offset + paging.limit]
            page = queries.Page(items, whole.total + len(extra))
        else:
            page = list_instances(conn, f, now, paging.limit, paging.offset, oldest_first=inbox)
    zone = ZoneInfo(engine.org.site.zone)
    end = paging.offset + len(page.items)
    return {"items": [_summary(i, zone) for i in page.items], "total": page.total, "limit": paging.limit,
            "offset": paging.offset, "next_offset": end if end < page.total else None}


@router.get("/instances", response_model=Page[InstanceSummary], summary="List instances (newest first)")
def instances(request: Request, who: Caller = Depends(caller), f: InstanceFilter = Depends(_filters),
              role: Optional[str] = Query(None, max_length=64, pattern=_NAME, description="Role queue"),
              paging: Paging = Depends()) -> dict[str, Any]:
    return _page(request, replace(f, role=role), paging, inbox=False)


@router.get("/tasks", response_model=Page[InstanceSummary],
            summary="An inbox: the caller's by default, or another person's or a role's queue")
def tasks(request: Request, who: Caller = Depends(caller), f: InstanceFilter = Depends(_filters),
          staff: Optional[str] = Query(None, max_length=64, pattern=_NAME,
                                       description="Whose inbox (supervisors may read anyone's)"),
          role: Optional[str] = Query(None, max_length=64, pattern=_NAME,
                                      description="A role's queue of unassigned tasks"),
          watching: bool = Query(False, description="The cases the person watches instead of their tasks"),
          paging: Paging = Depends()) -> dict[str, Any]:
    engine = request.app.state.engine
    if watching and role:
        raise ApiError(422, "validation_failed", "watching lists a person's watched cases, not a role's",
                       [problem("watching", "give staff (or nobody: yourself), not role", "query")])
    if staff and role:
        raise ApiError(422, "validation_failed", "give staff or role, not both",
                       [problem("staff", "give staff or role, not both", "query")])
    f = replace(f, status=f.status or "active")
    if role:
        if role not in engine.org.roles:
            raise ApiError(422, "bad_input", f"unknown role {role!r}", [problem("role", "unknown role", "query")])
        if role not in who.roles:
            who.require(who.supervising_roles, f"read the {role} queue")
        f = replace(f, role=role, unassigned=True, queue_buildings=who.scope)
        branches: Optional[Branches] = (None, (role,), who.scope)
    else:
        whose = staff or who.staff_id
        if whose != who.staff_id:
            who.require(who.supervising_roles, f"read the tasks of {whose}")
        if not engine.org.has(whose):
            raise ApiError(422, "unknown_staff", f"no staff member {whose!r}",
                           [problem("staff", "not in the organisation file", "query")])
        if watching:
            f, branches = replace(f, watcher=whose), None
        else:
            roles, scope = tuple(engine.org.person(whose).roles), engine.org.building_scope(whose)
            f = replace(f, work_of=(whose, roles), queue_buildings=scope)
            branches = (whose, roles, scope)
    return _page(request, f, paging, inbox=True, branches=branches)
