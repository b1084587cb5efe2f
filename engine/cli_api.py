"""``sop serve``, ``sop staff token …`` and ``sop outbox …``: the API and delivery commands.

Registered on the ``sop`` group by ``register(main)`` at the end of ``cli.py``. The
commands read the group's context object (database, procedures, org, ``--json``) like
every other ``sop`` command, and never print a secret except the one new token, once.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Optional
from zoneinfo import ZoneInfo

import click

from engine.cli_support import Seconds, fail_cleanly, json_flag

from engine.errors import InputError
from engine.runtime.views import iso


def _obj() -> Any:
    return click.get_current_context().obj


def _say(payload: Any, human: str) -> None:
    if _obj().json:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(human)


_NOTIFY = click.option("--notify", "notify_file", envvar="SOP_NOTIFY", type=click.Path(dir_okay=False),
                       help="Delivery configuration YAML (env SOP_NOTIFY); default: print on the console.")


# ------------------------------------------------------------------ serve

@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@_NOTIFY
@click.option("--no-scheduler", is_flag=True, help="Do not run the timer sweep in this process.")
@click.option("--no-outbox", is_flag=True, help="Do not deliver notifications from this process.")
@click.option("--sweep-interval", type=Seconds(), default=1.0, show_default=True, help="Seconds between sweeps.")
@click.option("--max-body", type=click.IntRange(1024), default=256 * 1024, show_default=True,
              help="Largest API request body accepted, in bytes.")
@click.option("--files", "files_dir", envvar="SOP_FILES", type=click.Path(file_okay=False),
              help="Where the web app keeps uploaded evidence (env SOP_FILES; default: beside the SQLite "
                   "file, e.g. sop-files/).")
@click.option("--secure-cookies", is_flag=True, help="Send the web session cookie only over HTTPS "
                                                      "(behind a TLS-terminating proxy).")
@fail_cleanly
def serve(host: str, port: int, notify_file: Optional[str], no_scheduler: bool, no_outbox: bool,
          sweep_interval: float, max_body: int, files_dir: Optional[str], secure_cookies: bool) -> None:
    """Serve the staff web app (/) and the HTTP API (OpenAPI at /docs); also sweeps timers and
    delivers notifications."""
    from adapters.notify import config as notify_config
    from engine.api import create_app
    from engine.api import server
    from engine.runtime.outbox import Dispatcher, OutboxWorker
    from engine.runtime.worker import start_background

    engine = _obj().engine
    delivery = notify_config.load(notify_file)
    from pathlib import Path
    app = create_app(engine, max_body, web_options={"files_dir": Path(files_dir) if files_dir else None,
                                                    "https_only": secure_cookies})
    try:
        sock = server.bind(host, port)
    except OSError as e:
        raise InputError("--port", f"cannot listen on {host}:{port}: {e.strerror}") from None
    scheduler = None if no_scheduler else start_background(engine, sweep_interval)
    outbox = None if no_outbox else OutboxWorker(Dispatcher(engine, delivery)).start()
    url = server.url_of(sock)
    for line in engine.library.disabled_lines():
        click.echo(f"sop serve: {line}", err=True)
    click.echo(f"sop serve: {url}/docs  (staff pages: {url}/; timer sweep {'off' if no_scheduler else 'on'}; "
               f"notifications {'off' if no_outbox else 'via ' + ', '.join(delivery.spec.default)})", err=True)
    try:
        server.run(app, sock)
    finally:
        if outbox is not None:
            outbox.stop()
        if scheduler is not None:
            scheduler.shutdown(wait=True)


# ------------------------------------------------------------------ staff tokens

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
@fail_cleanly
def token_create(staff_id: str, label: str) -> None:
    """Create a token for STAFF and print it (the only time it is shown)."""
    from engine.store import tokens

    eng = _obj().engine
    person = eng.org.person(staff_id)
    with eng.transaction() as conn:
        token_id, secret = tokens.create(conn, person.id, eng.clock.now(), label)
    if _obj().json:
        _say({"id": token_id, "staff": person.id, "label": label, "token": secret}, "")
    else:
        click.echo(secret)
        click.echo(f"token {token_id} for {person.id} ({person.name}); it is shown only this once", err=True)


@token.command("revoke")
@json_flag
@click.argument("staff_id", metavar="STAFF")
@click.option("--id", "token_id", type=int, help="Only this token (default: every token of STAFF).")
@fail_cleanly
def token_revoke(staff_id: str, token_id: Optional[int]) -> None:
    """Revoke STAFF's tokens; calls with them get 401 from then on."""
    from engine.store import tokens

    eng = _obj().engine
    with eng.transaction() as conn:
        if not eng.org.has(staff_id) and not tokens.listing(conn, staff_id):
            eng.org.person(staff_id)  # StaffNotFound: no such person, and no token of theirs either
        n = tokens.revoke(conn, staff_id, eng.clock.now(), token_id)
        if n == 0 and token_id is not None and not any(t.id == token_id for t in tokens.listing(conn, staff_id)):
            raise InputError("--id", f"{staff_id} has no token {token_id} (`sop staff token list {staff_id}`)")
    _say({"staff": staff_id, "revoked": n}, f"revoked {n} token(s) of {staff_id}")
    if n == 0:
        sys.exit(1)


@token.command("list")
@json_flag
@click.argument("staff_id", metavar="STAFF", required=False)
@fail_cleanly
def token_list(staff_id: Optional[str]) -> None:
    """Tokens (never their values): id, staff, label, created, revoked."""
    from engine.store import tokens

    eng = _obj().engine
    zone = ZoneInfo(eng.org.site.zone)
    with eng.read() as conn:
        rows = tokens.listing(conn, staff_id)
    payload = [{"id": t.id, "staff": t.staff_id, "label": t.label, "created_at": iso(t.created_at, zone),
                "revoked_at": iso(t.revoked_at, zone)} for t in rows]
    _say(payload, "\n".join(f"{p['id']:>4}  {p['staff']:<12} {p['label'] or '-':<12} {p['created_at']}"
                            f"{'  revoked ' + p['revoked_at'] if p['revoked_at'] else ''}" for p in payload))


@staff.command("password")
@click.argument("staff_id", metavar="STAFF")
@click.option("--remove", is_flag=True, help="Remove STAFF's password (token login still works).")
@fail_cleanly
def staff_password(staff_id: str, remove: bool) -> None:
    """Set STAFF's password for the web app (asked twice on a terminal; one line on stdin otherwise).

    Only a scrypt hash is stored. The web login accepts it or a token of STAFF."""
    from engine.store import passwords

    eng = _obj().engine
    person = eng.org.person(staff_id)
    if remove:
        with eng.transaction() as conn:
            done = passwords.remove(conn, person.id)
        _say({"staff": person.id, "removed": done}, f"password of {person.id} {'removed' if done else 'was not set'}")
        return
    if sys.stdin.isatty():
        secret = click.prompt(f"password for {person.id} ({person.name})", hide_input=True,
                              confirmation_prompt=True)
    else:
        secret = sys.stdin.readline().rstrip("\r\n")
    with eng.transaction() as conn:
        passwords.set_password(conn, person.id, secret, eng.clock.now())
    _say({"staff": person.id, "password": "set"}, f"password set for {person.id} ({person.name})")


# ------------------------------------------------------------------ outbox

@click.group()
def outbox() -> None:
    """Notifications waiting for, or done with, delivery."""


@outbox.command("deliver")
@json_flag
@_NOTIFY
@fail_cleanly
def outbox_deliver(notify_file: Optional[str]) -> None:
    """Deliver every notification that is due now (one pass), then stop."""
    from adapters.notify import config as notify_config
    from engine.runtime.outbox import Dispatcher, PassResult

    dispatcher = Dispatcher(_obj().engine, notify_config.load(notify_file))
    total = PassResult()
    while True:
        r = dispatcher.run_once()
        for k in vars(total):
            setattr(total, k, getattr(total, k) + getattr(r, k))
        if r.claimed < dispatcher.spec.batch:
            break
    _say(vars(total), f"sent {total.sent}, retrying {total.retrying}, failed {total.failed}, held {total.held}")


@outbox.command("list")
@json_flag
@click.option("--status", type=click.Choice(["pending", "sending", "sent", "failed", "held"]))
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@fail_cleanly
def outbox_list(status: Optional[str], limit: int) -> None:
    """The newest notifications with their delivery state."""
    from engine.store import outbox as store

    eng = _obj().engine
    zone = ZoneInfo(eng.org.site.zone)
    with eng.read() as conn:
        rows = store.rows(conn, status, limit)
    payload = [{"id": r.id, "instance": r.instance_id, "recipient": r.recipient, "channel": r.channel,
                "status": r.status, "attempts": r.attempts, "next_attempt_at": iso(r.next_attempt_at, zone),
                "last_error": r.last_error, "message": r.message} for r in rows]
    _say(payload, "\n".join(f"{p['id']:>5}  #{p['instance']:<5} {p['recipient']:<12} {p['status']:<8} "
                            f"{p['attempts']}  {p['last_error'] or p['message'][:40]}" for p in payload))


@outbox.command("retry")
@json_flag
@click.argument("outbox_id", type=int)
@fail_cleanly
def outbox_retry(outbox_id: int) -> None:
    """Queue a failed or held notification again."""
    from engine.store import outbox as store

    eng = _obj().engine
    with eng.transaction() as conn:
        if store.status_of(conn, outbox_id) is None:
            raise InputError("OUTBOX_ID", f"no notification {outbox_id} (`sop outbox list` shows them)")
        ok = store.requeue(conn, outbox_id)
    _say({"id": outbox_id, "requeued": ok},
         f"notification {outbox_id} queued again" if ok else f"notification {outbox_id} is not failed or held")
    if not ok:
        sys.exit(1)


def register(main: click.Group) -> None:
    for command in (serve, staff, outbox):
        main.add_command(command)
