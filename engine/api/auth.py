"""Who is calling: a bearer token names one staff member; the org file gives their roles.

Writing commands are authorised by the engine itself (the roles of each action in the
procedure file, the building scope of stewards), so the API adds rules only where the
engine has none: reading another person's or another role's inbox, and the site-wide audit
reports. Which roles supervise and which audit is the org file's to say (``supervisors:``,
``auditors:``); a Caller carries both lists, read when the call comes in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engine.api.errors import ApiError
from engine.errors import NotAuthorized
from engine.spec.org import OrgSpec, Staff
from engine.store import tokens

bearer = HTTPBearer(auto_error=False, scheme_name="staffToken",
                    description="A staff token, created with `sop staff token create STAFF`.")

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="sop"'}


@dataclass(frozen=True)
class Caller:
    staff_id: str
    name: str
    roles: frozenset[str]
    buildings: tuple[str, ...]
    supervising_roles: tuple[str, ...] = ()   # the org file's, when the call came in
    auditing_roles: tuple[str, ...] = ()
    scope: Optional[tuple[str, ...]] = None   # the buildings their queues are limited to

    @classmethod
    def of(cls, person: Staff, org: OrgSpec) -> "Caller":
        return cls(person.id, person.name, frozenset(person.roles), tuple(person.buildings),
                   org.supervising_roles, org.auditing_roles, org.building_scope(person.id))

    @property
    def supervises(self) -> bool:
        return not self.roles.isdisjoint(self.supervising_roles)

    @property
    def audits(self) -> bool:
        return not self.roles.isdisjoint(self.auditing_roles)

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
    return Caller.of(person, engine.org)
