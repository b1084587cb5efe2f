"""``sop outbox deliver|list|retry``: notifications waiting for, or done with, delivery."""
from __future__ import annotations

import sys
from typing import Optional
from zoneinfo import ZoneInfo

import click

from engine.cli.context import Context, pass_ctx
from engine.cli.errors import fail_cleanly
from engine.cli.output import emit, json_flag
from engine.cli.parsing import notify_option
from engine.errors import InputError
from engine.runtime.views import iso


@click.group()
def outbox() -> None:
    """Notifications waiting for, or done with, delivery."""


@outbox.command("deliver")
@json_flag
@notify_option
@pass_ctx
@fail_cleanly
def outbox_deliver(ctx: Context, notify_file: Optional[str]) -> None:
    """Deliver every notification that is due now (one pass), then stop."""
    from adapters.notify import config as notify_config
    from engine.runtime.outbox import Dispatcher, PassResult

    dispatcher = Dispatcher(ctx.engine, notify_config.load(notify_file))
    total = PassResult()
    while True:
        r = dispatcher.run_once()
        for k in vars(total):
            setattr(total, k, getattr(total, k) + getattr(r, k))
        if r.claimed < dispatcher.spec.batch:
            break
    emit(ctx, vars(total), lambda: click.echo(
        f"sent {total.sent}, retrying {total.retrying}, failed {total.failed}, held {total.held}"))


@outbox.command("list")
@json_flag
@click.option("--status", type=click.Choice(["pending", "sending", "sent", "failed", "held"]))
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@pass_ctx
@fail_cleanly
def outbox_list(ctx: Context, status: Optional[str], limit: int) -> None:
    """The newest notifications with their delivery state."""
    from engine.store import outbox as store

    eng = ctx.engine
    zone = ZoneInfo(eng.org.site.zone)
    with eng.read() as conn:
        rows = store.rows(conn, status, limit)
    payload = [{"id": r.id, "instance": r.instance_id, "recipient": r.recipient, "channel": r.channel,
                "status": r.status, "attempts": r.attempts, "next_attempt_at": iso(r.next_attempt_at, zone),
                "last_error": r.last_error, "message": r.message} for r in rows]
    emit(ctx, payload, lambda: click.echo("\n".join(
        f"{p['id']:>5}  #{p['instance']:<5} {p['recipient']:<12} {p['status']:<8} "
        f"{p['attempts']}  {p['last_error'] or p['message'][:40]}" for p in payload)))


@outbox.command("retry")
@json_flag
@click.argument("outbox_id", type=int)
@pass_ctx
@fail_cleanly
def outbox_retry(ctx: Context, outbox_id: int) -> None:
    """Queue a failed or held notification again."""
    from engine.store import outbox as store

    eng = ctx.engine
    with eng.transaction() as conn:
        if store.status_of(conn, outbox_id) is None:
            raise InputError("OUTBOX_ID", f"no notification {outbox_id} (`sop outbox list` shows them)")
        ok = store.requeue(conn, outbox_id)
    emit(ctx, {"id": outbox_id, "requeued": ok}, lambda: click.echo(
        f"notification {outbox_id} queued again" if ok else f"notification {outbox_id} is not failed or held"))
    if not ok:
        sys.exit(1)


COMMANDS = (outbox,)
