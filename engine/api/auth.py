"""Who is calling: a bearer token names one staff member; the org file gives their roles.

Writing commands are authorised by the engine itself (the roles of each action in the
procedure file), so the API adds rules only where the engine has none: reading another
person's or another role's inbox, and the site-wide audit reports.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engine.api.errors import ApiError
from engine.core.decide import SUPERVISOR_ROLES
from engine.errors import NotAuthorized
from engine.store import tokens

# Site-wide reading (hash-chain verification, SLA compliance): supervisors and the archive.
AUDIT_ROLES = (*SUPERVISOR_ROLES, "archive_keeper")

bearer = HTTPBearer(auto_error=False, scheme_name="staffToken",
                    description="A staff token, created with `sop staff token create STAFF`.")

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="sop"'}


@dataclass(frozen=True)
class Caller:
    staff_id: str
    name: str
    roles: frozenset[str]
    buildings: tuple[str, ...]

    @property
    def supervises(self) -> bool:
        return bool(self.roles & set(SUPERVISOR_ROLES))

    def require(self, roles: Iterable[str], what: str) -> None:
        allowed = list(roles)
        if not self.roles & set(allowed):
            raise NotAuthorized(self.staff_id, what, allowed)


def caller(request: Request, credentials: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> Caller:
    if credentials is None:
        raise ApiError(401, "unauthenticated", "send a staff token: Authorization: Bearer <token>",
                       headers=_CHALLENGE)
    engine = request.app.state.engine
    with engine.read() as conn:
        staff_id = tokens.staff_for(conn, credentials.credentials)
    person = engine.org.person(staff_id) if staff_id and engine.org.has(staff_id) else None
    if person is None or not person.active:
        raise ApiError(401, "invalid_token", "the token is unknown, revoked, or its staff member left",
                       headers=_CHALLENGE)
    return Caller(person.id, person.name, frozenset(person.roles), tuple(person.buildings))
