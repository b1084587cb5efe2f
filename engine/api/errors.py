"""The API's one error translation: every failure is JSON ``{code, message, errors?}``.

The engine's exception tree is mapped to HTTP status once, here, by its stable ``code``:

    401 unauthenticated / invalid_token   no token, or one that is unknown or revoked
    403 forbidden                         the caller's roles do not allow it (nothing written)
    404 not_found                         no such instance, procedure, form or route
    409 conflict                          stale If-Match, or someone else changed it first
    409 action_not_allowed                not possible in the instance's current state
    409 idempotency_key_reused            the key was used for a different request
    413 payload_too_large                 the request body is over the limit
    422 validation_failed / form_invalid  with ``errors``: the failing field paths
        bad_input / unknown_staff / time_order / calendar
    500 internal                          a bug: the traceback goes to the log, not the client
    501 not_implemented                   a part of the engine this server does not have yet

A field path is dotted and relative to where it was sent: ``data.unit`` in the body,
``limit`` in the query (``in`` says which).
"""
from __future__ import annotations

import logging
from typing import Any, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.errors import (EngineError, FormInvalid, InputError, ItemsInvalid, NotAuthorized, RowsInvalid,
                           StaffNotFound, TimeOrderError)

log = logging.getLogger("sop.api")

STATUS_BY_CODE = {
    "not_found": 404,
    "forbidden": 403,
    "conflict": 409,
    "action_not_allowed": 409,
    "replay_mismatch": 409,
    "form_invalid": 422,
    "bad_input": 422,
    "unknown_staff": 422,
    "time_order": 422,
    "calendar": 422,
    "adapter": 502,
    "busy": 503,
    "procedure_invalid": 500,
    "procedure_disabled": 409,
    "migration_refused": 409,
}

HTTP_CODES = {401: "unauthenticated", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "payload_too_large",
              415: "unsupported_media_type", 422: "validation_failed", 501: "not_implemented"}


class ApiError(Exception):
    """A refusal made by the API layer itself (authentication, headers, paging, …)."""

    def __init__(self, status: int, code: str, message: str, errors: Optional[list[dict[str, Any]]] = None,
                 headers: Optional[dict[str, str]] = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.errors, self.headers = errors, headers


def body(code: str, message: str, errors: Optional[list[dict[str, Any]]] = None) -> dict[str, Any]:
    out: dict[str, Any] = {"code": code, "message": message}
    if errors is not None:
        out["errors"] = errors
    return out


def problem(path: str, message: str, where: str = "body") -> dict[str, str]:
    return {"path": path, "in": where, "message": message}


def engine_error_response(e: EngineError) -> JSONResponse:
    status = STATUS_BY_CODE.get(e.code, 400)
    errors: Optional[list[dict[str, Any]]] = None
    if isinstance(e, RowsInvalid):
        errors = _row_problems(e)
    elif isinstance(e, FormInvalid):
        errors = [problem(f"data.{fe.field}" if fe.field != "(data)" else "data", fe.reason) for fe in e.errors]
    elif isinstance(e, InputError):
        name = e.argument.lstrip("-").lower()
        errors = [problem("procedure" if name == "procedure" else name, e.reason)]
    elif isinstance(e, StaffNotFound):
        errors = [problem("assignee", str(e))]
    elif isinstance(e, TimeOrderError):
        errors = [problem("at", str(e))]
    payload = body(e.code, str(e), errors)
    if isinstance(e, NotAuthorized):
        payload["allowed_roles"] = e.allowed_roles
    if status >= 500:
        log.error("engine error %s: %s", e.code, e)
    return JSONResponse(payload, status_code=status)


def _row_problems(e: RowsInvalid) -> list[dict[str, Any]]:
    """A bulk start's refused rows, each under ``rows.N``, or a batch's refused items under
    ``N`` (N counting from 0, as in the body)."""
    out = []
    for n, err in e.rows:
        row = f"{n - 1}" if isinstance(e, ItemsInvalid) else f"rows.{n - 1}"
        if isinstance(e, ItemsInvalid) and isinstance(err, InputError):
            out.append(problem(f"{row}.{err.argument.lstrip('-')}", err.reason))
            continue
        if isinstance(err, FormInvalid):
            out += [problem(f"{row}.data.{fe.field}" if fe.field != "(data)" else f"{row}.data", fe.reason)
                    for fe in err.errors]
        elif isinstance(err, InputError) and err.argument == "external key":
            out.append(problem(f"{row}.external_key", err.reason))
        else:
            out.append(problem(row, str(err)))
    return out


def _path(loc: tuple[Any, ...]) -> tuple[str, str]:
    where = str(loc[0]) if loc else "body"
    rest = [str(p) for p in loc[1:]]
    return (".".join(rest) or where), where


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the JSON error body."""

    @app.exception_handler(EngineError)
    async def _engine(_request: Request, e: EngineError) -> JSONResponse:
        return engine_error_response(e)

    @app.exception_handler(ApiError)
    async def _api(_request: Request, e: ApiError) -> JSONResponse:
        return JSONResponse(body(e.code, e.message, e.errors), status_code=e.status, headers=e.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, e: RequestValidationError) -> JSONResponse:
        errors = []
        for err in e.errors():
            path, where = _path(tuple(err.get("loc", ())))
            errors.append(problem(path, str(err.get("msg", "invalid")), where))
        fields = ", ".join(sorted({p["path"] for p in errors}))
        return JSONResponse(body("validation_failed", f"the request is not valid: {fields}", errors),
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, e: StarletteHTTPException) -> JSONResponse:
        if e.status_code == 400:  # a body that is not JSON (or not UTF-8): a field-less 422
            return JSONResponse(body("validation_failed", "the body is not valid JSON in UTF-8",
                                     [problem("body", "not valid JSON in UTF-8")]), status_code=422)
        code = HTTP_CODES.get(e.status_code, "http_error")
        message = e.detail if isinstance(e.detail, str) else code.replace("_", " ")
        return JSONResponse(body(code, message), status_code=e.status_code, headers=getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, e: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(body("internal", "internal error; the server log has the details"), status_code=500)
