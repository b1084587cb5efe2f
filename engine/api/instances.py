"""``/v1/instances/{id}``: start, act, record, claim, assign, show, history, replay.

Every write takes the caller as the acting staff member (the log records them), answers
with the instance as ``sop show --json`` prints it and its revision as the ETag, honours
``If-Match`` (a stale revision is a 409 and nothing is written) and ``Idempotency-Key``.
"""
from __future__ import annotations

from typing import Any, Callable, Optional
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from engine.api import idempotency as idem
from engine.api.auth import Caller, caller
from engine.api.errors import ApiError, problem
from engine.api.forms import form_schema
from engine.api.models import (ActionCreate, AssignCreate, BulkCreate, BulkStartedPublic, ClaimCreate, DataCreate,
                               ErrorPublic, EventPublic, FormPublic, InstanceCreate, InstancePublic, Page,
                               ReplayPublic)
from engine.core.model import Instance
from engine.runtime import bulk
from engine.runtime.views import event_view, instance_view

router = APIRouter(prefix="/v1/instances", tags=["instances"],
                   responses={404: {"model": ErrorPublic, "description": "no such instance"}})

InstanceId = Path(ge=1, le=2**62, description="Instance number (as in `sop show 12`)")
IdempotencyKey = Header(None, alias="Idempotency-Key", min_length=1, max_length=200,
                        pattern=r"^[\x21-\x7e]+$",
                        description="Any unique string per intended write; a repeat returns the first result.")
IfMatch = Header(None, alias="If-Match", max_length=40,
                 description='The revision the change was decided on (the ETag, e.g. "7"); stale gives 409.')

WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorPublic, "description": "role not allowed; nothing written"},
    409: {"model": ErrorPublic, "description": "stale If-Match, or not possible in the current state"},
    413: {"model": ErrorPublic, "description": "request body too large"},
}


def engine_of(request: Request) -> Any:
    return request.app.state.engine


def expected_revision(if_match: Optional[str]) -> Optional[int]:
    """``"7"``, ``W/"7"`` or ``7`` → 7; absent or ``*`` → no check."""
    if if_match is None or if_match.strip() == "*":
        return None
    value = if_match.strip()
    value = value[2:] if value.startswith("W/") else value
    value = value.strip('"')
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise ApiError(422, "validation_failed", f"If-Match must be an ETag of this API, e.g. \"7\"; got {if_match!r}",
                       [problem("If-Match", "not a revision ETag", "header")])
    return int(value)


def render(engine: Any) -> Callable[[Instance, int], JSONResponse]:
    def to_response(inst: Instance, status: int) -> JSONResponse:
        headers = {"ETag": idem.etag(inst.revision)}
        if status == 201:
            headers["Location"] = f"/v1/instances/{inst.id}"
        return JSONResponse(instance_view(engine, inst), status_code=status, headers=headers)

    return to_response


def _write(request: Request, who: Caller, key: Optional[str], payload: Any, status: int,
           command: Callable[[], Instance]) -> Response:
    engine = engine_of(request)
    print_ = idem.fingerprint(request.method, request.url.path, payload)
    return idem.execute(engine, who.staff_id, key, print_, status, command, render(engine))


@router.post("", status_code=201, response_model=InstancePublic, responses=WRITE_RESPONSES,
             summary="Start an instance of a procedure")
def start(request: Request, body: InstanceCreate, who: Caller = Depends(caller),
          key: Optional[str] = IdempotencyKey) -> Response:
    engine = engine_of(request)
    engine.library.require_enabled(body.procedure)  # 409 procedure_disabled, with its problems
    if body.procedure not in engine.library.procedures:
        raise ApiError(404, "not_found", f"no procedure {body.procedure!r}",
                       [problem("procedure", "unknown procedure")])
    return _write(request, who, key, body, 201,
                  lambda: engine.start(body.procedure, who.staff_id, body.data, body.at, body.external_key))


@router.post("/bulk", status_code=201, response_model=BulkStartedPublic,
             responses={**WRITE_RESPONSES, 422: {"model": ErrorPublic,
                                                 "description": "rows refused (each under rows.N); nothing started"}},
             summary="Start many instances of one procedure at once, all or nothing (`sop start --each`)")
def start_many(request: Request, body: BulkCreate, who: Caller = Depends(caller)) -> JSONResponse:
    """Idempotent through the rows' external keys rather than an Idempotency-Key: sending the
    same rows again starts only those not stored yet."""
    engine = engine_of(request)
    engine.library.require_enabled(body.procedure)  # 409 procedure_disabled, with its problems
    if body.procedure not in engine.library.procedures:
        raise ApiError(404, "not_found", f"no procedure {body.procedure!r}",
                       [problem("procedure", "unknown procedure")])
    done = bulk.start_many(engine, body.procedure, who.staff_id, [r.data for r in body.rows], body.at,
                           [r.external_key for r in body.rows])
    existing = set(done.existing)
    return JSONResponse({"procedure": body.procedure, "started": len(done.instances) - len(existing),
                         "existing": len(existing),
                         "instances": [{"id": inst.id, "state": inst.state, "revision": inst.revision,
                                        "existing": i in existing} for i, inst in enumerate(done.instances)]},
                        status_code=201)


@router.get("/{instance_id}", response_model=InstancePublic, summary="Show an instance (as `sop show --json`)",
            responses={304: {"description": "If-None-Match matches the current revision"}})
def show(request: Request, instance_id: int = InstanceId, who: Caller = Depends(caller),
         if_none_match: Optional[str] = Header(None, alias="If-None-Match", max_length=40)) -> Response:
    engine = engine_of(request)
    inst = engine.show(instance_id)
    if if_none_match is not None and idem.etag(inst.revision) in {t.strip().removeprefix("W/")
                                                                  for t in if_none_match.split(",")}:
        return Response(status_code=304, headers={"ETag": idem.etag(inst.revision)})
    return render(engine)(inst, 200)


@router.post("/{instance_id}/actions/{action}", response_model=InstancePublic, responses=WRITE_RESPONSES,
             summary="Take an action")
def take_action(request: Request, body: Optional[ActionCreate] = None, instance_id: int = InstanceId,
                action: str = Path(max_length=64, pattern=r"^[a-z][a-z0-9_]*$"),
                who: Caller = Depends(caller), if_match: Optional[str] = IfMatch,
                key: Optional[str] = IdempotencyKey) -> Response:
    engine, expected, body = engine_of(request), expected_revision(if_match), body or ActionCreate()
    return _write(request, who, key, body, 200,
                  lambda: engine.advance(instance_id, action, who.staff_id, body.data, body.at, expected))


@router.post("/{instance_id}/data", response_model=InstancePublic, responses=WRITE_RESPONSES,
             summary="Record data without moving the instance")
def record(request: Request, body: DataCreate, instance_id: int = InstanceId, who: Caller = Depends(caller),
           if_match: Optional[str] = IfMatch, key: Optional[str] = IdempotencyKey) -> Response:
    engine, expected = engine_of(request), expected_revision(if_match)
    return _write(request, who, key, body, 200,
                  lambda: engine.record(instance_id, who.staff_id, body.data, body.at, expected))


@router.post("/{instance_id}/claim", response_model=InstancePublic, responses=WRITE_RESPONSES,
             summary="Take an unassigned task from your role's queue")
def claim(request: Request, body: Optional[ClaimCreate] = None, instance_id: int = InstanceId,
          who: Caller = Depends(caller), if_match: Optional[str] = IfMatch,
          key: Optional[str] = IdempotencyKey) -> Response:
    engine, expected, body = engine_of(request), expected_revision(if_match), body or ClaimCreate()
    return _write(request, who, key, body, 200, lambda: engine.claim(instance_id, who.staff_id, body.at, expected))


@router.post("/{instance_id}/assign", response_model=InstancePublic, responses=WRITE_RESPONSES,
             summary="Assign to a staff member (supervisors)")
def assign(request: Request, body: AssignCreate, instance_id: int = InstanceId, who: Caller = Depends(caller),
           if_match: Optional[str] = IfMatch, key: Optional[str] = IdempotencyKey) -> Response:
    engine, expected = engine_of(request), expected_revision(if_match)
    return _write(request, who, key, body, 200,
                  lambda: engine.assign(instance_id, body.assignee, who.staff_id, body.at, expected))


@router.post("/{instance_id}/watch", response_model=InstancePublic, responses=WRITE_RESPONSES,
             summary="Watch the case: it joins your watched list and you get its watchers' notifications")
def watch(request: Request, body: Optional[ClaimCreate] = None, instance_id: int = InstanceId,
          who: Caller = Depends(caller), if_match: Optional[str] = IfMatch,
          key: Optional[str] = IdempotencyKey) -> Response:
    from engine.runtime import watching

    engine, expected, body = engine_of(request), expected_revision(if_match), body or ClaimCreate()
    return _write(request, who, key, body, 200,
                  lambda: watching.watch(engine, instance_id, who.staff_id, body.at, expected))


@router.post("/{instance_id}/unwatch", response_model=InstancePublic, responses=WRITE_RESPONSES,
             summary="Stop watching the case")
def unwatch(request: Request, body: Optional[ClaimCreate] = None, instance_id: int = InstanceId,
            who: Caller = Depends(caller), if_match: Optional[str] = IfMatch,
            key: Optional[str] = IdempotencyKey) -> Response:
    from engine.runtime import watching

    engine, expected, body = engine_of(request), expected_revision(if_match), body or ClaimCreate()
    return _write(request, who, key, body, 200,
                  lambda: watching.unwatch(engine, instance_id, who.staff_id, body.at, expected))


@router.get("/{instance_id}/history", response_model=Page[EventPublic], summary="The events, oldest first")
def history(request: Request, instance_id: int = InstanceId, who: Caller = Depends(caller),
            limit: int = Query(100, ge=1, le=500), offset: int = Query(0, ge=0, le=2**31)) -> dict[str, Any]:
    engine = engine_of(request)
    zone = ZoneInfo(engine.org.site.zone)
    events = engine.history(instance_id)
    items = [event_view(e, zone) for e in events[offset:offset + limit]]
    nxt = offset + limit if offset + limit < len(events) else None
    return {"items": items, "total": len(events), "limit": limit, "offset": offset, "next_offset": nxt}


@router.get("/{instance_id}/replay", response_model=ReplayPublic,
            summary="Re-derive the state from the log and compare it with the stored state")
def replay(request: Request, instance_id: int = InstanceId, who: Caller = Depends(caller)) -> dict[str, Any]:
    r = engine_of(request).replay(instance_id)
    return {"instance": r.instance_id, "ok": r.ok, "events": r.events, "seq": r.seq, "difference": r.difference}


@router.get("/{instance_id}/actions/{action}/form", response_model=FormPublic,
            summary="The JSON Schema of an action's form, in the instance's own procedure version")
def action_form(request: Request, instance_id: int = InstanceId,
                action: str = Path(max_length=64, pattern=r"^[a-z][a-z0-9_]*$"),
                who: Caller = Depends(caller)) -> dict[str, Any]:
    engine = engine_of(request)
    inst = engine.show(instance_id)
    with engine.read() as conn:
        proc = engine.procedure_for(conn, inst.procedure, inst.version)
    spec = next((a for a in proc.spec.actions if a.name == action), None)
    if spec is None:
        raise ApiError(404, "not_found", f"{inst.procedure} has no action {action!r}")
    form = proc.form(spec.form)
    return {"id": form.id if form else action, "title": form.title if form else spec.title,
            "procedure": proc.id, "version": proc.version, "definition": form, "json_schema": form_schema(form)}
