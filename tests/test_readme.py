"""Every command of README.md runs, in the README's order, in a fresh directory, as pasted.

A fresh directory is what a newcomer has after cloning: the repository's ``demo/`` and
``procedures/`` files (which the examples name by relative path) and no database. Each ``sop`` line of the
```sh blocks is run as written (CliRunner, in process) and must exit 0; a ``# …`` line right
after a command is output it must print. The commands that run until stopped (``sop serve``,
``sop worker``) run as real processes until they are up, answer (serve: ``/docs``), and are
stopped with SIGTERM, which must end them with exit 0. The install lines are what this suite
already ran under, and ``python -m pytest`` is this suite: both are skipped. The PostgreSQL
block runs against the suite's own server (tests/pg.py) instead of ``user@host``.
"""
from __future__ import annotations

import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import httpx
import pytest
from click.testing import CliRunner

from cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```\n", re.S | re.M)
PG_PLACEHOLDER = "postgresql+psycopg://user@host/sop"
NOT_RUN_HERE = ("pip install", "python -m pytest")  # the environment this suite runs in; this suite
RUNS_UNTIL_STOPPED = {"serve": re.compile(r"sop serve: (http://\S+)/docs"), "worker": re.compile(r"worker: sweeping")}


@dataclass
class Command:
    line: int            # in README.md
    args: list[str]      # after `sop`
    expected: list[str]  # `# …` lines right after it: text it prints

    def __str__(self) -> str:
        return f"README.md:{self.line}: sop {shlex.join(self.args)}"


def readme_commands() -> list[Command]:
    text = README.read_text(encoding="utf-8")
    out: list[Command] = []
    for block in SH_BLOCK.finditer(text):
        first = text[:block.start(1)].count("\n") + 1
        last: Optional[Command] = None  # the command a `# …` line right after it belongs to
        for n, raw in enumerate(block.group(1).splitlines()):
            line = raw.strip()
            if line.startswith("#"):
                if last is not None:
                    last.expected.append(line.lstrip("#").strip())
                continue
            last = None
            for part in line.split("&&"):
                part = part.strip()
                if not part or part.startswith(NOT_RUN_HERE):
                    continue
                words = shlex.split(part, comments=True)
                assert words[0] == "sop", f"README.md:{first + n}: not a sop command: {part}"
                last = Command(first + n, words[1:], [])
                out.append(last)
    return out


def subcommand(args: list[str]) -> str:
    """The command after the global options: `show` of `sop --db URL --json show 1`."""
    i = 0
    while i < len(args) and args[i].startswith("--"):
        i += 2 if args[i] in ("--db", "--procedures", "--org") else 1
    return args[i] if i < len(args) else ""


def lines_of(stream: Any) -> "queue.Queue[str]":
    q: "queue.Queue[str]" = queue.Queue()
    threading.Thread(target=lambda: [q.put(line) for line in iter(stream.readline, "")], daemon=True).start()
    return q


def run_until_up_then_stop(args: list[str], cwd: Path) -> str:
    """Start ``sop ARGS``; once it says it is up (serve: and /docs answers), SIGTERM; its output."""
    kind = subcommand(args)
    args = ["0" if a == "8000" and prev == "--port" else a for prev, a in zip([""] + args, args)]
    env = {k: v for k, v in os.environ.items() if k not in ("SOP_DB", "SOP_PROCEDURES", "SOP_ORG")}
    proc = subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen: list[str] = []
    try:
        out = lines_of(proc.stdout)
        up: Optional[re.Match[str]] = None
        while up is None:  # bounded: each line within 60 s
            seen.append(out.get(timeout=60))
            up = RUNS_UNTIL_STOPPED[kind].search(seen[-1])
        if kind == "serve":
            r = httpx.get(f"{up.group(1)}/docs", timeout=30)
            assert r.status_code == 200 and "swagger" in r.text.lower(), r.text[:200]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    rest = proc.stdout.read() if proc.stdout else ""
    assert code == 0, "".join(seen) + rest
    return "".join(seen) + rest


@pytest.fixture
def fresh_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What a newcomer has after cloning: the demo files, no database, no SOP_* settings."""
    work = tmp_path / "clone"
    work.mkdir()
    shutil.copytree(ROOT / "demo", work / "demo")
    shutil.copytree(ROOT / "procedures", work / "procedures")  # a clone has them too (sop replay --with …)
    for var in ("SOP_DB", "SOP_PROCEDURES", "SOP_ORG", "SOP_NOTIFY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(work)
    return work


def run_all(commands: list[Command], cwd: Path) -> None:
    runner = CliRunner()
    for cmd in commands:
        if subcommand(cmd.args) in RUNS_UNTIL_STOPPED:
            output = run_until_up_then_stop(cmd.args, cwd)
        else:
            # `sop staff password` asks twice, as a person types it at the prompt
            typed = "demo-password-1\ndemo-password-1\n" if cmd.args[:2] == ["staff", "password"] else None
            r = runner.invoke(main, cmd.args, input=typed, catch_exceptions=False)
            assert r.exit_code == 0, f"{cmd} exited {r.exit_code}:\n{r.output}"
            output = r.stdout
        for text in cmd.expected:
            assert text in output, f"{cmd} did not print {text!r}:\n{output}"


def test_readme_lists_commands_of_every_section() -> None:
    commands = readme_commands()
    said = {subcommand(c.args) for c in commands}
    assert {"demo", "lint", "start", "advance", "show", "tick", "worker", "serve", "import", "notice",
            "db"} <= said
    assert any(c.expected for c in commands)  # the fee cycle's printed summary is checked


def test_every_readme_command_runs_in_order_in_a_fresh_directory(fresh_dir: Path) -> None:
    commands = [c for c in readme_commands() if PG_PLACEHOLDER not in c.args]
    run_all(commands, fresh_dir)
    assert (fresh_dir / "sop.db").exists() and (fresh_dir / "sop-demo.db").exists()
    assert list((fresh_dir / "notices").glob("fee_cycle-12-fee_notice-*.txt"))


def test_the_readme_postgresql_commands_run_against_a_server(fresh_dir: Path, pg_blank_url: str) -> None:
    commands = [Command(c.line, [pg_blank_url if a == PG_PLACEHOLDER else a for a in c.args], c.expected)
                for c in readme_commands() if PG_PLACEHOLDER in c.args]
    assert [subcommand(c.args) for c in commands] == ["db", "worker", "serve"]
    run_all(commands, fresh_dir)
