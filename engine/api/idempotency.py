"""``Idempotency-Key``: a repeated write returns the first result and writes nothing new.

The key is recorded by an engine change hook, inside the very transaction that appends
the request's events, so the two commit together or not at all. A twin request racing
the first either fails on the key's primary key (its transaction rolls back: nothing
written) or is refused by the engine (stale revision, action no longer available); both
then answer with the stored first result. Keys are per staff member; reusing one for a
different request is a 422.
"""
from __future__ import annotations

import hashlib
import time
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Optional

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from engine.api.errors import ApiError
from engine.core.model import Instance
from engine.errors import EngineError
from engine.store import idempotency as store

REPLAYED = "Idempotent-Replayed"
BODY_WAIT_SECONDS = 2.0


@dataclass
class _Pending:
    staff: str
    key: str
    fingerprint: str
    status: int
    at: datetime
    recorded: bool = False


_pending: ContextVar[Optional[_Pending]] = ContextVar("sop_idempotency", default=None)


def record_hook(engine: Any, conn: Any, proc: Any, before: Optional[Instance], after: Instance,
                stored: list[Any]) -> None:
    """Engine change hook: remember the key with the instance the request changed.

    A command may commit several instances (spawned children first, the commanded
    instance last), so the row follows the last one.
    """
    p = _pending.get()
    if p is None or not stored:
        return
    if p.recorded:
        store.point_at(conn, p.staff, p.key, after.id, after.revision)
    else:
        store.insert(conn, p.staff, p.key, p.fingerprint, after.id, after.revision, p.status, p.at)
        p.recorded = True


def fingerprint(method: str, path: str, payload: BaseModel) -> str:
    text = f"{method} {path}\n{payload.model_dump_json()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fingerprint_json(method: str, path: str, payload: Any) -> str:
    """``fingerprint`` of a body that is plain JSON rather than a model (a batch's items)."""
    import json
    text = f"{method} {path}\n{json.dumps(payload, sort_keys=True, separators=(',', ':'), ensure_ascii=False)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def etag(revision: int) -> str:
    return f'"{revision}"'


def execute(engine: Any, staff: str, key: Optional[str], print_: str, status: int,
            command: Callable[[], Instance], render: Callable[[Instance, int], JSONResponse]) -> Response:
    """Run ``command`` once per key; render its instance, or replay the first answer."""
    if key is None:
        return render(command(), status)
    prior = _lookup(engine, staff, key)
    if prior is not None:
        return _replay(engine, staff, key, prior, print_, render)
    token = _pending.set(_Pending(staff, key, print_, status, engine.clock.now()))
    try:
        inst = command()
    except (EngineError, store.KeyTaken):
        prior = _lookup(engine, staff, key)  # a twin with the same key may have won the race
        if prior is None:
            raise
        return _replay(engine, staff, key, prior, print_, render)
    finally:
        _pending.reset(token)
    response = render(inst, status)
    with engine.transaction() as conn:
        store.save_body(conn, staff, key, bytes(response.body).decode("utf-8"))
    return response


def _lookup(engine: Any, staff: str, key: str) -> Optional[store.StoredRequest]:
    with engine.read() as conn:
        return store.lookup(conn, staff, key)


def _replay(engine: Any, staff: str, key: str, prior: store.StoredRequest, print_: str,
            render: Callable[[Instance, int], JSONResponse]) -> Response:
    if prior.fingerprint != print_:
        raise ApiError(422, "idempotency_key_reused",
                       "this Idempotency-Key was used for a different request; use a new key per request",
                       [{"path": "Idempotency-Key", "in": "header", "message": "already used for another request"}])
    body = prior.body
    deadline = time.monotonic() + BODY_WAIT_SECONDS
    while body is None and time.monotonic() < deadline:  # the first request is still rendering its answer
        time.sleep(0.02)
        prior = _lookup(engine, staff, key) or prior
        body = prior.body
    if body is None:  # the first request's process died after committing: describe the instance now
        response = render(engine.show(prior.instance_id), prior.status_code)
        response.headers[REPLAYED] = "reconstructed"
        return response
    headers = {"ETag": etag(prior.revision), REPLAYED: "true"}
    if prior.status_code == 201:
        headers["Location"] = f"/v1/instances/{prior.instance_id}"
    return Response(body, status_code=prior.status_code, media_type="application/json", headers=headers)

