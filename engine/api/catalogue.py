"""What there is to work with: the caller, the procedures with their versions, their forms.

A procedure's versions are the one new instances start on plus every version stored
because an instance ran on it (``procedure_versions``); any of them can be shown, so a
client can render the form of an old instance exactly as it was.
"""
from __future__ import annotations

from typing import Any, Optional

from fastapi import APIRouter, Depends, Path, Query, Request

from engine.api.auth import Caller, caller
from engine.api.errors import ApiError
from engine.api.forms import form_schema
from engine.api.models import ErrorPublic, FormPublic, MePublic, ProcedurePublic, ProcedureSummary
from engine.errors import ReplayMismatch
from engine.runtime.views import iso
from engine.spec.library import CompiledProcedure
from engine.store import versions as version_store

router = APIRouter(prefix="/v1", tags=["catalogue"],
                   responses={404: {"model": ErrorPublic, "description": "no such procedure, version or form"}})

_NAME = r"^[a-z][a-z0-9_]*$"
_VERSION = Query(None, pattern=r"^[0-9a-f]{1,64}$", description="A stored version; default: the current one")


@router.get("/health", tags=["service"], summary="Liveness (no token needed)")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/me", response_model=MePublic, summary="Who the token belongs to")
def me(who: Caller = Depends(caller)) -> dict[str, Any]:
    return {"id": who.staff_id, "name": who.name, "roles": sorted(who.roles), "buildings": list(who.buildings)}


def _summaries(engine: Any) -> list[dict[str, Any]]:
    with engine.read() as conn:
        stored = version_store.list_versions(conn)
    out = []
    for pid, proc in sorted(engine.library.procedures.items()):
        used = {r.version: r.first_used_at for r in stored if r.procedure == pid}
        versions = [{"version": v, "current": v == proc.version, "first_used_at": iso(t)} for v, t in used.items()]
        if proc.version not in used:
            versions.append({"version": proc.version, "current": True, "first_used_at": None})
        out.append({"id": pid, "title": proc.spec.title, "description": proc.spec.description or "",
                    "version": proc.version, "versions": versions})
    return out


@router.get("/procedures", response_model=list[ProcedureSummary], summary="Procedures and their versions")
def procedures(request: Request, who: Caller = Depends(caller)) -> list[dict[str, Any]]:
    return _summaries(request.app.state.engine)


def _version(engine: Any, procedure: str, version: Optional[str]) -> CompiledProcedure:
    engine.library.require_enabled(procedure)  # 409 procedure_disabled, naming its problems
    if procedure not in engine.library.procedures:
        raise ApiError(404, "not_found", f"no procedure {procedure!r}")
    current = engine.library.procedures[procedure]
    if version is None or version == current.version:
        return current
    try:
        with engine.read() as conn:
            return engine.procedure_for(conn, procedure, version)
    except ReplayMismatch:
        raise ApiError(404, "not_found", f"{procedure} has no stored version {version}") from None


@router.get("/procedures/{procedure}", response_model=ProcedurePublic,
            summary="A procedure's definition and forms (current or a stored version)")
def procedure(request: Request, procedure: str = Path(max_length=64, pattern=_NAME),
              version: Optional[str] = _VERSION, who: Caller = Depends(caller)) -> dict[str, Any]:
    engine = request.app.state.engine
    proc = _version(engine, procedure, version)
    summary = next(s for s in _summaries(engine) if s["id"] == procedure)
    return {**summary, "definition": proc.spec, "forms": proc.forms, "shown_version": proc.version}


@router.get("/procedures/{procedure}/forms/{form}", response_model=FormPublic,
            summary="A form's JSON Schema, to render it (use form `start` for the start form)")
def form(request: Request, procedure: str = Path(max_length=64, pattern=_NAME),
         form: str = Path(max_length=64, pattern=_NAME), version: Optional[str] = _VERSION,
         who: Caller = Depends(caller)) -> dict[str, Any]:
    proc = _version(request.app.state.engine, procedure, version)
    form_id = proc.spec.start.form if form == "start" else form
    spec = proc.form(form_id)
    if spec is None and not (form == "start" and form_id is None):
        raise ApiError(404, "not_found", f"{procedure} (version {proc.version}) uses no form {form!r}")
    return {"id": form_id or "start", "title": spec.title if spec else "开始", "procedure": proc.id,
            "version": proc.version, "definition": spec, "json_schema": form_schema(spec)}
