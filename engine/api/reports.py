"""Site-wide audit reports: hash-chain verification and SLA compliance (audit roles only)."""
from __future__ import annotations

from typing import Any, Optional

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict

from engine.api.auth import Caller, caller
from engine.api.errors import ApiError
from engine.api.models import ErrorPublic, VerifyPublic
from engine.runtime.sla_report import report

router = APIRouter(prefix="/v1", tags=["audit"],
                   responses={403: {"model": ErrorPublic, "description": "needs a supervisor or archive role"}})


class SlaRowPublic(BaseModel):
    model_config = ConfigDict(extra="forbid")
    procedure: str
    sla: str
    assignee: Optional[str]  # null: all assignees together
    met: int
    breached: int
    open: int
    provisional: int  # clocks whose due time was computed on a provisional calendar year
    compliance: Optional[float]  # percent of judged clocks met; null when none is judged yet


@router.get("/audit/verify", response_model=VerifyPublic, summary="Check every hash chain")
def verify(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    who.require(who.auditing_roles, "verify the audit log")
    from engine.runtime.auditing import run  # the same check as `sop audit verify`: chains and ledger

    rep = run(request.app.state.engine)
    broken = rep.broken
    return {"ok": rep.ok, "instances": rep.instances, "events": rep.events,
            "broken": None if broken is None else {"instance": broken.instance_id, "seq": broken.seq,
                                                   "reason": broken.reason},
            "ledger_rows": rep.ledger_rows,
            "findings": [{"kind": f.kind, "detail": f.detail, "instance": f.instance_id, "seq": f.seq,
                          "ledger_seq": f.ledger_seq} for f in rep.findings]}


@router.get("/reports/sla", response_model=list[SlaRowPublic],
            summary="SLA compliance per procedure and SLA, and per assignee")
def sla_report(request: Request, who: Caller = Depends(caller),
               start: Optional[AwareDatetime] = Query(None, alias="from",
                                                      description="Clocks started at or after (ISO 8601)"),
               end: Optional[AwareDatetime] = Query(None, alias="to", description="…and before"),
               procedure: Optional[str] = Query(None, max_length=64, pattern=r"^[a-z][a-z0-9_]*$"),
               ) -> list[dict[str, Any]]:
    who.require(who.auditing_roles, "read the SLA report")
    for t in (start, end):
        if t is not None and not 2000 <= t.year <= 2099:
            raise ApiError(422, "validation_failed", "from/to must lie between 2000 and 2099")
    return report(request.app.state.engine, start, end, procedure)
