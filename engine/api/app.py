"""The HTTP API: one FastAPI application over one engine.

Everything the CLI does is here, under ``/v1``, described at ``/openapi.json`` (browse it
at ``/docs``). Each call is one staff member (bearer token) and is authorised by their
roles; every failure is JSON with a stable ``code`` (see :mod:`engine.api.errors`).
Handlers are plain functions run in a thread pool: the engine is synchronous and each
command is one short database transaction.
"""
from __future__ import annotations

import json
from typing import Any, Optional

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.api import actions, catalogue, changes, errors, idempotency, instances, lists, reports
from engine.api.errors import body as error_body
from engine.api.models import ErrorPublic

MAX_BODY_BYTES = 256 * 1024
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # a web form with photos

DESCRIPTION = """\
物业客服 workflow engine. Authenticate with `Authorization: Bearer <token>` (a staff token from
`sop staff token create STAFF`). Writes return the instance with its revision as `ETag`;
send it back in `If-Match` to refuse a change decided on stale data (409), and send an
`Idempotency-Key` to make a retried write safe. Errors are `{"code", "message", "errors"?}`.
Times are ISO 8601 with a UTC offset; times without one are refused.
"""


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before any handler reads them.

    The web pages' forms (anything outside ``/v1/``) may carry uploaded evidence, and get
    ``page_limit`` instead."""

    def __init__(self, app: ASGIApp, limit: int, page_limit: Optional[int] = None) -> None:
        self.app, self.api_limit, self.page_limit = app, limit, page_limit or limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.api_limit if scope.get("path", "").startswith("/v1/") else self.page_limit
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(send, limit)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _receive_from([message]), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(send, limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        await self.app(scope, _receive_from([{"type": "http.request", "body": b"".join(chunks), "more_body": False}],
                                      receive), send)

    async def _refuse(self, send: Send, limit: int) -> None:
        payload = json.dumps(error_body("payload_too_large", f"the request body is over {limit} bytes"),
                             ensure_ascii=False).encode("utf-8")
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload)),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})


def _receive_from(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


def create_app(engine: Any, max_body_bytes: int = MAX_BODY_BYTES, web: bool = True,
               max_upload_bytes: int = MAX_UPLOAD_BYTES, web_options: Optional[dict[str, Any]] = None) -> FastAPI:
    """The API over ``engine`` (built by ``engine.runtime.config.build_engine``), and the
    staff web pages (``engine.web``) unless ``web`` is false."""
    app = FastAPI(title="sop — 物业客服 workflow API", version="1", description=DESCRIPTION,
                  responses={401: {"model": ErrorPublic, "description": "no or bad token"},
                             422: {"model": ErrorPublic, "description": "invalid request"}})
    app.state.engine = engine
    if idempotency.record_hook not in engine.hooks:
        engine.hooks.append(idempotency.record_hook)
    errors.install(app)
    for module in (instances, actions, lists, catalogue, changes, reports):
        app.include_router(module.router)
    if web:
        from engine import web as pages
        pages.install(app, engine, **(web_options or {}))
    app.add_middleware(BodyLimit, limit=max_body_bytes, page_limit=max(max_body_bytes, max_upload_bytes))
    return app
