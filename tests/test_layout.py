"""The layout rules of ARCHITECTURE.md that a newcomer relies on, checked on the imports.

- every ``sop`` command lives in a topic module of ``engine/cli/``, registered by cli.py;
  none of them imports cli.py back;
- ``adapters/`` talks to the outside world, never to the command line (no click);
- the demo (``engine/demo/``) drives the engine through its public methods: no SQL of its own.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import click

import cli
from tests.conftest import ROOT


def imports_of(path: Path) -> set[str]:
    """Every module a file imports (``from a.b import c`` counts as ``a.b``), at any depth."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_no_command_module_imports_the_top_level_cli() -> None:
    offenders = [p.name for p in modules("engine/cli") if "cli" in imports_of(p)]
    assert offenders == []


def test_every_topic_module_of_engine_cli_is_registered_on_main() -> None:
    topics = {p.stem for p in modules("engine/cli") if "COMMANDS = (" in p.read_text(encoding="utf-8")}
    assert topics == {m.__name__.rsplit(".", 1)[1] for m in cli.TOPICS}
    registered = set(cli.main.commands.values())
    assert all(c in registered for m in cli.TOPICS for c in m.COMMANDS)
    assert all(isinstance(c, click.Command) for c in registered)


def test_adapters_do_not_use_click() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in modules("adapters") if "click" in imports_of(p)]
    assert offenders == []


def test_the_demo_runs_no_sql_of_its_own_and_leaves_the_terminal_to_the_cli() -> None:
    sql = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\s+\w", re.IGNORECASE)
    for p in modules("engine/demo"):
        imported = imports_of(p)
        assert not {m for m in imported if m.split(".")[0] in ("sqlalchemy", "sqlite3", "sqlmodel", "click")}, p
        # The one store call: who made a file, read-only, before any engine opens it (an engine
        # would create its schema in whatever file it is given).
        assert [m for m in imported if m.startswith("engine.store")] in ([], ["engine.store.overview"]), p
        assert not sql.search(p.read_text(encoding="utf-8")), p
