"""``sop staff token …`` and ``sop staff password``: staff members' API and web access.

Never prints a secret except the one new token, once; only hashes are stored.
"""
from __future__ import annotations

import sys
from typing import Optional
from zoneinfo import ZoneInfo

import click

from engine.cli.context import Context, pass_ctx
from engine.cli.errors import fail_cleanly
from engine.cli.output import emit, json_flag
from engine.errors import InputError
from engine.runtime.views import iso


@click.group()
def staff() -> None:
    """Staff members' API access."""


@staff.group()
def token() -> None:
    """API tokens: one staff member each; only a hash is stored."""


@token.command("create")
@json_flag
@click.argument("staff_id", metavar="STAFF")
@click.option("--label", default="", help="What the token is for (e.g. 'phone').")
@pass_ctx
@fail_cleanly
def token_create(ctx: Context, staff_id: str, label: str) -> None:
    """Create a token for STAFF and print it (the only time it is shown)."""
    from engine.store import tokens

    eng = ctx.engine
    person = eng.org.person(staff_id)
    with eng.transaction() as conn:
        token_id, secret = tokens.create(conn, person.id, eng.clock.now(), label)

    def human() -> None:
        click.echo(secret)
        click.echo(f"token {token_id} for {person.id} ({person.name}); it is shown only this once", err=True)

    emit(ctx, {"id": token_id, "staff": person.id, "label": label, "token": secret}, human)


@token.command("revoke")
@json_flag
@click.argument("staff_id", metavar="STAFF")
@click.option("--id", "token_id", type=int, help="Only this token (default: every token of STAFF).")
@pass_ctx
@fail_cleanly
def token_revoke(ctx: Context, staff_id: str, token_id: Optional[int]) -> None:
    """Revoke STAFF's tokens; calls with them get 401 from then on."""
    from engine.store import tokens

    eng = ctx.engine
    with eng.transaction() as conn:
        if not eng.org.has(staff_id) and not tokens.listing(conn, staff_id):
            eng.org.person(staff_id)  # StaffNotFound: no such person, and no token of theirs either
        n = tokens.revoke(conn, staff_id, eng.clock.now(), token_id)
        if n == 0 and token_id is not None and not any(t.id == token_id for t in tokens.listing(conn, staff_id)):
            raise InputError("--id", f"{staff_id} has no token {token_id} (`sop staff token list {staff_id}`)")
    emit(ctx, {"staff": staff_id, "revoked": n}, lambda: click.echo(f"revoked {n} token(s) of {staff_id}"))
    if n == 0:
        sys.exit(1)


@token.command("list")
@json_flag
@click.argument("staff_id", metavar="STAFF", required=False)
@pass_ctx
@fail_cleanly
def token_list(ctx: Context, staff_id: Optional[str]) -> None:
    """Tokens (never their values): id, staff, label, created, revoked."""
    from engine.store import tokens

    eng = ctx.engine
    zone = ZoneInfo(eng.org.site.zone)
    with eng.read() as conn:
        rows = tokens.listing(conn, staff_id)
    payload = [{"id": t.id, "staff": t.staff_id, "label": t.label, "created_at": iso(t.created_at, zone),
                "revoked_at": iso(t.revoked_at, zone)} for t in rows]
    emit(ctx, payload, lambda: click.echo("\n".join(
        f"{p['id']:>4}  {p['staff']:<12} {p['label'] or '-':<12} {p['created_at']}"
        f"{'  revoked ' + str(p['revoked_at']) if p['revoked_at'] else ''}" for p in payload)))


@staff.command("password")
@click.argument("staff_id", metavar="STAFF")
@click.option("--remove", is_flag=True, help="Remove STAFF's password (token login still works).")
@pass_ctx
@fail_cleanly
def staff_password(ctx: Context, staff_id: str, remove: bool) -> None:
    """Set STAFF's password for the web app (asked twice on a terminal; one line on stdin otherwise).

    Only a scrypt hash is stored. The web login accepts it or a token of STAFF."""
    from engine.store import passwords

    eng = ctx.engine
    person = eng.org.person(staff_id)
    if remove:
        with eng.transaction() as conn:
            done = passwords.remove(conn, person.id)
        emit(ctx, {"staff": person.id, "removed": done},
             lambda: click.echo(f"password of {person.id} {'removed' if done else 'was not set'}"))
        return
    if sys.stdin.isatty():
        secret = click.prompt(f"password for {person.id} ({person.name})", hide_input=True,
                              confirmation_prompt=True)
    else:
        secret = sys.stdin.readline().rstrip("\r\n")
    with eng.transaction() as conn:
        passwords.set_password(conn, person.id, secret, eng.clock.now())
    emit(ctx, {"staff": person.id, "password": "set"},
         lambda: click.echo(f"password set for {person.id} ({person.name})"))


COMMANDS = (staff,)
