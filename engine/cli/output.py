"""The one JSON-or-text emitter of ``sop``, the ``--json`` flag and plain tables.

``--json`` may come before or after the subcommand (``sop --json show 1`` and
``sop show 1 --json``); either way it lands on the context, and ``emit`` prints the
payload as JSON on stdout or calls the human form.
"""
from __future__ import annotations

import json
import unicodedata
from typing import Any, Callable

import click

from engine.cli.context import Context


def json_mode() -> bool:
    """Whether ``--json`` was given, at the top or after the subcommand."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and getattr(ctx.find_root().obj, "json", False))


def json_flag(f: Callable[..., Any]) -> Callable[..., Any]:
    """Accept ``--json`` after the subcommand too (``sop show 1 --json`` as ``sop --json show 1``)."""

    def turn_on(click_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        obj = click_ctx.find_root().obj
        if value and obj is not None:
            obj.json = True

    return click.option("--json", "json_here", is_flag=True, expose_value=False, callback=turn_on,
                        is_eager=True, help="Print JSON on stdout.")(f)


def emit(ctx: Context, payload: Any, human: Callable[[], None], compact: bool = False) -> None:
    """``payload`` as JSON on stdout in ``--json`` mode (indented; one ASCII line if ``compact``), else ``human()``."""
    if not ctx.json:
        human()
    elif compact:
        click.echo(json.dumps(payload))
    else:
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str))


def table(rows: list[list[Any]], headers: list[str]) -> None:
    """A plain table that lines up Chinese (double-width) text too."""

    def width(s: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)

    cells = [[("" if c is None else str(c)) for c in r] for r in rows]
    widths = [max([width(h)] + [width(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "  ".join(v + " " * (w - width(v)) for v, w in zip(values, widths)).rstrip()

    click.echo(line(headers))
    click.echo(line(["-" * w for w in widths]))
    for r in cells:
        click.echo(line(r))
