"""The one mapping of refusals for every ``sop`` command: one line on stderr, exit 1.

An ``EngineError`` is a refusal on purpose, never a bug: ``fail_cleanly`` prints its
message (a definition problem: one line per located issue) and exits 1; anything else
keeps its traceback. A malformed command line is shown the same way (``SopGroup``).
In ``--json`` mode (before or after the subcommand) a refusal is one JSON object on
stderr, ``{"error": message, "code": stable code}`` (a definition problem adds its
``issues``), so a script reading JSON never has to parse prose.
"""
from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable

import click

from engine.cli.output import json_mode
from engine.errors import EngineError, ProcedureError


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


class CommandLineError(click.ClickException):
    """A malformed command line, shown like every other user error: one line, exit 1."""

    exit_code = 1

    def __init__(self, error: click.UsageError) -> None:
        super().__init__(error.format_message())
        self.command_path = error.ctx.command_path if error.ctx else "sop"
        self.as_json = bool(error.ctx and error.ctx.meta.get("sop.json")) or json_mode()

    def show(self, file: Any = None) -> None:
        if self.as_json:
            click.echo(json.dumps({"error": self.format_message(), "code": "usage"}, ensure_ascii=False), err=True)
        else:
            click.echo(f"error: {self.format_message()} (see '{self.command_path} --help')", err=True)


class SopGroup(click.Group):
    """The top-level group: turns click's usage errors into one-line user errors."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["sop.json"] = "--json" in args  # so a malformed command line is reported as JSON too
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:
            raise _one_line(e) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            raise _one_line(e) from None


def _one_line(e: click.UsageError) -> click.ClickException:
    no_args_help = getattr(click.exceptions, "NoArgsIsHelpError", ())
    if no_args_help and isinstance(e, no_args_help) and e.ctx is not None:
        click.echo(e.ctx.get_help())  # `sop`, `sop audit`, …: the help, on stdout
        sys.exit(0)
    return CommandLineError(e)
