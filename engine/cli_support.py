"""What every ``sop`` command module shares: engine refusals as one line on stderr, exit 1.

Kept apart from ``cli.py`` so the command modules registered into it (``engine/cli_api.py``,
``engine/cli_db.py``, ``adapters/cli_commands.py``) use the same mapping without importing
the top-level command module.
"""
from __future__ import annotations

import functools
import sys
from typing import Any, Callable

import click

from engine.errors import EngineError, ProcedureError


def fail_cleanly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Map the engine's refusals to one clear line (one per located issue) and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ProcedureError as e:
            for issue in e.issues:
                click.echo(str(issue), err=True)
            sys.exit(1)
        except EngineError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)

    return wrapper
