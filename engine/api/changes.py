"""``POST /v1/procedures/{name}/migrate``: ``sop migrate`` over HTTP, for the supervising roles.

Moving running instances onto another version of their procedure is a process owner's
decision, so only the org file's supervising roles may ask for it; ``dry_run`` does the
same work and rolls it back, like ``sop migrate --dry-run``. The work is
engine/runtime/migration.py; refusals (an unmappable state, an unknown version) are the
engine's, mapped to status codes by engine/api/errors.py.
"""
from __future__ import annotations

from typing import Any, Optional

from fastapi import APIRouter, Depends, Path, Request
from pydantic import AwareDatetime, BaseModel, Field

from engine.api.auth import Caller, caller
from engine.api.errors import ApiError
from engine.api.models import Body, ErrorPublic
from engine.errors import InputError

router = APIRouter(prefix="/v1", tags=["catalogue"])

_VERSION = r"^(current|any|[0-9a-f]{1,64})$"


class MigrateCreate(Body):
    version_from: str = Field(alias="from", pattern=_VERSION,
                              description="Move the running instances on this version; `any`: on any version but `to`")
    version_to: str = Field("current", alias="to", pattern=r"^(current|[0-9a-f]{1,64})$",
                            description="Onto this version: `current` (the library's) or a stored version")
    map: dict[str, str] = Field(default_factory=dict, description="Old state -> state of the new version")
    dry_run: bool = Field(False, description="Say what would happen; write nothing")
    at: Optional[AwareDatetime] = Field(None, description="When the migration happens; default now")


class MigratedPublic(BaseModel):
    instance: int
    from_: str = Field(alias="from")
    to: str
    state_from: str
    state_to: str
    mapped: bool
    cancelled_clocks: list[str]
    fired_first: int


class MigrationPublic(BaseModel):
    procedure: str
    dry_run: bool
    instances: list[MigratedPublic]


@router.post("/procedures/{procedure}/migrate", response_model=MigrationPublic, response_model_by_alias=True,
             summary="Move running instances onto another version (supervisors; dry_run to preview)",
             responses={status: {"model": ErrorPublic} for status in (403, 404, 409, 422)})
def migrate(request: Request, body: MigrateCreate,
            procedure: str = Path(max_length=64, pattern=r"^[a-z][a-z0-9_]*$"),
            who: Caller = Depends(caller)) -> dict[str, Any]:
    from engine.runtime import migration as mg

    who.require(who.supervising_roles, f"migrate {procedure}")
    engine = request.app.state.engine
    if procedure not in engine.library.procedures and procedure not in engine.library.disabled:
        raise ApiError(404, "not_found", f"no procedure {procedure!r}")
    for old, new in body.map.items():
        if not old.strip() or not new.strip():
            raise InputError("map", f"expected old_state: new_state, got {old!r}: {new!r}")
    done = mg.migrate(engine, procedure, body.version_from, body.version_to, dict(body.map), body.dry_run, body.at,
                      by=who.staff_id)
    return {"procedure": procedure, "dry_run": body.dry_run, "instances": [d.view() for d in done]}
