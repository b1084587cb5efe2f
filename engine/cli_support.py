"""What every ``sop`` command module shares: refusals as one line, exit 1; ``--json``; seconds.

Kept apart from ``cli.py`` so the command modules registered into it (``engine/cli_api.py``,
``engine/cli_db.py``, ``adapters/cli_commands.py``) use the same mapping without importing
the top-level command module.

In ``--json`` mode (before or after the subcommand) a refusal is one JSON object on stderr,
``{"error": message, "code": stable code}`` (a definition problem adds its ``issues``), so a
script reading JSON never has to parse prose.
"""
from __future__ import annotations

import functools
import json
import math
import sys
from typing import Any, Callable, Optional

import click

from engine.errors import EngineError, ProcedureError


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


def report_error(message: str, code: str, **extra: Any) -> None:
    """One refusal on stderr: ``error: message``, or a JSON object in ``--json`` mode."""
    if json_mode():
        click.echo(json.dumps({"error": message, "code": code, **extra}, ensure_ascii=False), err=True)
    else:
        click.echo(f"error: {message}", err=True)


def fail_cleanly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Map the engine's refusals to one clear line (one per located issue) and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ProcedureError as e:
            if json_mode():
                report_error(str(e), e.code, issues=[str(i) for i in e.issues])
            else:
                for issue in e.issues:
                    click.echo(str(issue), err=True)
            sys.exit(1)
        except EngineError as e:
            report_error(str(e), e.code)
            sys.exit(1)

    return wrapper


class Seconds(click.ParamType):
    """A number of seconds from ``least`` (10 ms unless told) to ``most`` (an hour unless told).

    ``click.FloatRange`` lets NaN through (every comparison with it is false); a negative,
    zero, tiny, NaN, infinite or absurd interval would spin a sweep loop or never wake it.
    """

    name = "seconds"

    def __init__(self, least: float = 0.01, most: float = 3600.0) -> None:
        self.least, self.most = least, most

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        else:
            try:
                seconds = float(str(value).strip())
            except ValueError:
                self.fail(f"not a number of seconds: {value!r}", param, ctx)
        if not (math.isfinite(seconds) and self.least <= seconds <= self.most):
            self.fail(f"must be from {self.least:g} to {self.most:g} seconds, not {value!r}", param, ctx)
        return seconds
