"""``sop act --batch FILE``: many actions in one transaction, all or nothing.

Presentation only: read the items (a JSON list, or JSON lines; ``-`` reads stdin), call
``Engine.act_many`` and print one line per instance it left (or JSON). Every refusal
names the file and the line of the item, then its field: a malformed line before
anything runs, each item the engine refused after (nothing written). Items are
described in ``docs/batch.md``.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Optional

import click

from engine.cli.context import Context, pass_ctx
from engine.cli.errors import fail_cleanly
from engine.cli.output import emit, json_flag, table
from engine.cli.parsing import parse_time
from engine.errors import InputError, ItemsInvalid
from engine.runtime.batch import items_from_json

SHOWN = 20  # refused items printed one per line; the count of the rest follows


def read_items(name: str, text: str) -> tuple[list[Any], list[int]]:
    """The file's items and the line each starts on: a JSON list, or one object a line."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError("--batch", f"{name}:{e.lineno}: not JSON: {e.msg}") from None
        return values, [1] * len(values)
    values, lines = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            values.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise InputError("--batch", f"{name}:{n}: not a JSON object: {e.msg}") from None
        lines.append(n)
    return values, lines


def _text(path: str) -> str:
    try:
        raw = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
    except OSError as e:
        raise InputError("--batch", f"cannot read {path}: {e.strerror}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError("--batch", f"{path}: not UTF-8 text (byte {e.start})") from None


@click.command()
@json_flag
@click.option("--batch", "path", required=True, metavar="FILE",
              help="Items as a JSON list or JSON lines ('-': stdin), e.g. {\"instance\": 12, \"action\": \"check_effect\"}.")
@click.option("--as", "staff", help="Who acts, for items without their own \"as\".")
@click.option("--at", help="When it happened (ISO 8601), for items without their own \"at\"; default now.")
@pass_ctx
@fail_cleanly
def act(ctx: Context, path: str, staff: Optional[str], at: Optional[str]) -> None:
    """Run many actions (action, record, claim, assign) in one transaction, all or nothing."""
    engine = ctx.engine
    zone = engine.org.site.zone
    name = "<stdin>" if path == "-" else path
    values, lines = read_items(name, _text(path))
    if not isinstance(values, list) or not values:
        raise InputError("--batch", f"{name}: no items (a JSON list of items, or one item a line)")
    try:
        items = items_from_json(values, lambda text, field: parse_time(text, zone, field))
        done = engine.act_many(items, staff, parse_time(at, zone))
    except ItemsInvalid as e:
        _refused(name, lines, e)
        sys.exit(1)
    rows = [{"item": n, "instance": i.id, "procedure": i.procedure, "state": i.state, "status": i.status,
             "revision": i.revision} for n, i in enumerate(done, 1)]

    def human() -> None:
        click.echo(f"{len(done):,} 项操作已在一个事务中完成（{len({i.id for i in done}):,} 个实例）")
        table([[r["item"], f"#{r['instance']}", r["procedure"], r["state"], r["status"], r["revision"]] for r in rows],
              ["item", "instance", "procedure", "state", "status", "revision"])

    emit(ctx, {"items": rows}, human)


def _refused(name: str, lines: list[int], e: ItemsInvalid) -> None:
    """One line per refused item, ``file:line: item N: why``, after the count (nothing written)."""
    click.echo(f"error: {name}: {len(e.rows):,} of {e.total:,} items refused, nothing written", err=True)
    reasons = e.reasons()
    for n, why in reasons[:SHOWN]:
        click.echo(f"{name}:{lines[n - 1]}: item {n}: {why}", err=True)
    if len(reasons) > SHOWN:
        click.echo(f"… and {len(reasons) - SHOWN:,} more refused items", err=True)


COMMANDS = (act,)
