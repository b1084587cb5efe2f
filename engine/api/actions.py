"""``POST /v1/actions``: many actions in one transaction, all or nothing (``sop act --batch``).

The body is a list of items as ``docs/batch.md`` describes them (``{"instance": 12,
"action": "check_effect", "data": {…}}``, ``record``, ``claim``, ``assign``; optional
``at`` and ``revision``, the If-Match of that item). Every item acts as the caller, under
the same role, scope and form rules as the single-item endpoints; a refused item refuses
the batch: 422 with each problem under the item's index (``2.data.payment_amount``), and
nothing is written. The answer lists, per item, the instance as that item left it. An
``Idempotency-Key`` makes a resent batch answer the first answer and write nothing, as
for one action (the key is recorded in the batch's own transaction).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse, Response

from engine.api import idempotency as idem

from engine.api.auth import Caller, caller
from engine.api.errors import ApiError
from engine.api.instances import IdempotencyKey
from engine.api.models import ErrorPublic
from engine.errors import InputError
from engine.instants import out_of_range
from engine.runtime.batch import items_from_json

router = APIRouter(prefix="/v1", tags=["instances"])
MAX_ITEMS = 1_000


def _time(text: str, field: str) -> Optional[datetime]:
    """An item's ``at``: ISO 8601 with a UTC offset, as every time of this API."""
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(field, f"not an ISO 8601 time: {text!r}") from None
    if t.tzinfo is None:
        raise InputError(field, "time needs a UTC offset, e.g. 2025-09-30T17:55:00+08:00")
    if (why := out_of_range(t)) is not None:
        raise InputError(field, f"{text!r} is {why}")
    return t


@router.post("/actions", summary="Many actions in one transaction, all or nothing (`sop act --batch`)",
             responses={403: {"model": ErrorPublic, "description": "role or scope refused; nothing written"},
                        422: {"model": ErrorPublic, "description": "items refused (each under its index); "
                                                                   "nothing written"}})
def act_many(request: Request, body: list[dict[str, Any]] = Body(..., max_length=MAX_ITEMS),
             who: Caller = Depends(caller), key: Optional[str] = IdempotencyKey) -> Response:
    if not body:
        raise ApiError(422, "bad_input", "no items: send a list of actions", [])
    for n, obj in enumerate(body):
        if isinstance(obj, dict) and obj.get("as", who.staff_id) != who.staff_id:
            raise ApiError(403, "forbidden", f"item {n}: the API acts as the token's staff member, "
                                             f"not {obj['as']!r}", [{"path": f"{n}.as", "in": "body",
                                                                    "message": "not the caller"}])
    engine = request.app.state.engine
    items = items_from_json(body, _time)
    print_ = idem.fingerprint_json(request.method, request.url.path, body)
    return idem.execute(engine, who.staff_id, key, print_, 200, lambda: engine.act_many(items, who.staff_id), _render)


def _render(done: Any, status: int) -> JSONResponse:
    """The items' instances; a lone instance when a first request's answer was lost (its
    process died after the commit) and the last instance it changed is all that is known."""
    done = done if isinstance(done, list) else [done]
    return JSONResponse({"items": [{"instance": i.id, "procedure": i.procedure, "state": i.state,
                                    "status": i.status, "revision": i.revision} for i in done]},
                        status_code=status)
