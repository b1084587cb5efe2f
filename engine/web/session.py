"""Who is using the web app: a signed session cookie naming one staff member, and CSRF.

Login takes a staff id and either a token of theirs (``sop staff token create``) or a
password set with ``sop staff password``; the session then holds only the staff id, what
they logged in with (the token's id, or a digest of the password's stored hash) and a random
CSRF token. Every request looks the person up in the org file again, so someone removed (or
``active: false``) is logged out at their next click, and every page acts with the roles the
org file gives them now; and it checks the credential is still good, so revoking the token
(``sop staff token revoke``) or setting a new password ends the sessions opened with the
old one at their next click too, as an administrator locking someone out expects. Every POST form carries the CSRF token
as a hidden field; a POST without the session's token is refused before anything else.
The cookie is signed (Starlette's SessionMiddleware, itsdangerous), HttpOnly and
SameSite=Lax.
"""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Optional

from starlette.requests import Request

from engine.api.auth import Caller
from engine.store import passwords, tokens

SESSION_COOKIE = "sop_session"
SESSION_SECONDS = 12 * 3600  # a working day and a half


class LoginRequired(Exception):
    """No (valid) session: the page answers with a redirect to the login page."""

    def __init__(self, next_url: str = "/") -> None:
        self.next_url = next_url
        super().__init__(next_url)


class CsrfRefused(Exception):
    """A POST without this session's CSRF token."""


@dataclass(frozen=True)
class Login:
    """Who logged in and with what: ``via`` "token" (``ref`` its id) or "password" (``ref``
    the digest of its stored hash, ``passwords.fingerprint``)."""

    staff_id: str
    via: str
    ref: Any


def viewer(request: Request) -> Caller:
    """The logged-in staff member, with their roles as the org file gives them now."""
    staff_id = request.session.get("staff")
    engine = request.app.state.engine
    person = engine.org.person(staff_id) if isinstance(staff_id, str) and engine.org.has(staff_id) else None
    if person is None or not person.active or not _credential_holds(engine, person.id, request.session):
        request.session.clear()
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path if request.method == "GET" else "/")
    return Caller.of(person, engine.org)


def _credential_holds(engine: Any, staff_id: str, session: Any) -> bool:
    """Whether what the session was opened with is still good: the token not revoked, the
    password not set anew or removed. A session that names none (opened before sessions
    named it) is not trusted."""
    via, ref = session.get("via"), session.get("ref")
    with engine.read() as conn:
        if via == "token" and type(ref) is int:
            return tokens.is_live(conn, ref, staff_id)
        if via == "password" and isinstance(ref, str):
            return passwords.fingerprint(conn, staff_id) == ref
    return False


def authenticate(engine: Any, staff_id: str, secret: str) -> Optional[Login]:
    """The login if ``secret`` is a live token of the staff member's or their password, else None."""
    staff_id = staff_id.strip()
    if not staff_id or not engine.org.has(staff_id) or not engine.org.person(staff_id).active:
        passwords.hash_password(secret or "-")  # the same cost as a real check
        return None
    with engine.read() as conn:
        if secret.startswith(tokens.PREFIX):
            live = tokens.live_token(conn, secret)
            return Login(staff_id, "token", live[0]) if live is not None and live[1] == staff_id else None
        if not passwords.check(conn, staff_id, secret):
            return None
        return Login(staff_id, "password", passwords.fingerprint(conn, staff_id))


def log_in(request: Request, login: Login) -> None:
    request.session.clear()  # a new session (and CSRF token) at every login
    request.session.update({"staff": login.staff_id, "via": login.via, "ref": login.ref,
                            "csrf": secrets.token_urlsafe(32)})


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf(request: Request, form: Any) -> None:
    expected = request.session.get("csrf")
    sent = form.get("csrf")
    if not isinstance(expected, str) or not isinstance(sent, str) or not hmac.compare_digest(expected, sent):
        raise CsrfRefused()


def safe_next(url: Optional[str]) -> str:
    """Only a local path may follow a login (no open redirect)."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    return url
