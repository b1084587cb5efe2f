"""Bad numbers, paths and names on any ``sop`` command: one line (JSON with ``--json``), exit 1.

- intervals are 0.01 to 3600 seconds: no negative, zero, tiny, NaN, infinite or absurd value;
- a ``--db`` SQLite file that does not exist is refused, and not created, except by the
  commands that set a database up (``db upgrade``, ``start``, ``import calls``, ``demo``);
- unknown ids, people and procedures are named;
- every command that prints takes ``--json`` before and after the subcommand, and the same
  JSON comes out either way;
- ``sop`` alone prints its help on stdout;
- SIGTERM stops ``sop worker`` at once, cleanly.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main

COMPLAINT = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
             "content": "楼上漏水", "anonymous": False}
AT = "2025-09-30T09:10:00+08:00"


@pytest.fixture
def sop(runner: CliRunner):  # type: ignore[no-untyped-def]
    def run(*args: str) -> Any:
        r = runner.invoke(main, list(args))
        assert "Traceback" not in r.output, r.output
        return r
    return run


@pytest.fixture
def db_path(db_url: str) -> Path:
    return Path(db_url.removeprefix("sqlite:///"))


@pytest.fixture
def one(sop, db_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """The database holds complaint #1."""
    r = sop("start", "complaint", "--as", "liu_fang", "--data", json.dumps(COMPLAINT), "--at", AT)
    assert r.exit_code == 0, r.output
    return db_path


def refused(r: Any, *words: str) -> str:
    """Exit 1, nothing on stdout, one line on stderr naming ``words``; that line."""
    assert (r.exit_code, r.stdout) == (1, ""), r.output
    assert r.stderr.count("\n") == 1 and r.stderr.endswith("\n"), r.stderr
    for w in words:
        assert w in r.stderr, r.stderr
    return r.stderr


# ------------------------------------------------------------------ intervals

BAD_SECONDS = ["-1", "0", "-0.0", "1e-9", "nan", "inf", "-inf", "1e308", "3601", "abc", ""]


@pytest.mark.parametrize("value", BAD_SECONDS)
@pytest.mark.parametrize("argv, option", [(["worker", "--interval"], "--interval"),
                                          (["serve", "--port", "0", "--sweep-interval"], "--sweep-interval")])
def test_a_non_positive_non_finite_or_absurd_interval_is_refused_naming_the_option(
        sop, one, argv: list[str], option: str, value: str) -> None:  # type: ignore[no-untyped-def]
    line = refused(sop(*argv, value), option)
    assert line.startswith("error: ")


def test_an_interval_error_in_json_mode_is_json(sop, one) -> None:  # type: ignore[no-untyped-def]
    error = json.loads(refused(sop("--json", "worker", "--interval", "nan"), "--interval"))
    assert error["code"] == "usage" and "--interval" in error["error"]


# ------------------------------------------------------------------ a --db file that does not exist

READERS_AND_CHANGERS = [
    ["show", "1"], ["history", "1"], ["replay", "1"], ["tasks", "--as", "chen_jing"], ["audit", "verify"],
    ["sla", "report"], ["tick", "--until", "2025-10-09T18:00:00+08:00"], ["db", "current"],
    ["advance", "1", "investigate", "--as", "chen_jing"], ["record", "1", "--as", "chen_jing", "--data", "{}"],
    ["claim", "1", "--as", "chen_jing"], ["assign", "1", "wang_li", "--as", "li_qiang"],
    ["outbox", "list"], ["outbox", "retry", "1"], ["outbox", "deliver"], ["staff", "token", "list"],
    ["staff", "token", "create", "li_qiang"], ["staff", "token", "revoke", "li_qiang"],
    ["notice", "render", "1", "fee_notice"], ["worker"], ["serve", "--port", "0"],
]


@pytest.mark.parametrize("argv", READERS_AND_CHANGERS, ids=[" ".join(a) for a in READERS_AND_CHANGERS])
def test_a_db_file_that_does_not_exist_is_named_and_not_created(sop, tmp_path: Path, argv: list[str]) -> None:  # type: ignore[no-untyped-def]
    typo = tmp_path / "sop-dmeo.db"
    refused(sop("--db", f"sqlite:///{typo}", *argv), f"--db: {typo} does not exist")
    assert not typo.exists()
    assert list(tmp_path.iterdir()) == []


def test_import_payments_into_a_db_that_does_not_exist_is_refused(sop, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pays = tmp_path / "pays.csv"
    pays.write_text("unit,period,amount,paid_at,reference\n1-0301,2025-10,1.00,2025-10-08 10:20,X1\n", encoding="utf-8")
    typo = tmp_path / "typo.db"
    refused(sop("--db", f"sqlite:///{typo}", "import", "payments", str(pays), "--as", "lin_cai"), str(typo))
    assert not typo.exists()


def test_with_json_a_missing_db_file_is_a_json_error_in_either_position(sop, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    typo = tmp_path / "typo.db"
    for argv in (["--json", "--db", f"sqlite:///{typo}", "show", "1"], ["--db", f"sqlite:///{typo}", "show", "1", "--json"]):
        error = json.loads(refused(sop(*argv)))
        assert error == {"error": f"--db: {typo} does not exist (`sop db upgrade` or `sop start` creates a database)",
                         "code": "bad_input"}


@pytest.mark.parametrize("argv", [["db", "upgrade"], ["start", "complaint", "--as", "liu_fang", "--data", json.dumps(COMPLAINT)]])
def test_db_upgrade_and_start_create_the_database(sop, tmp_path: Path, argv: list[str]) -> None:  # type: ignore[no-untyped-def]
    new = tmp_path / "new.db"
    r = sop("--db", f"sqlite:///{new}", *argv)
    assert r.exit_code == 0, r.output
    assert new.exists()
    assert sop("--db", f"sqlite:///{new}", "audit", "verify").exit_code == 0


def test_read_commands_leave_no_sop_db_behind_in_the_working_directory(sop, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("SOP_DB")
    monkeypatch.chdir(tmp_path)
    for argv in (["tasks", "--as", "chen_jing"], ["show", "1"], ["sla", "report"], ["audit", "verify"]):
        refused(sop(*argv), "--db: sop.db does not exist")
    for argv in (["lint"], ["graph", "complaint"], ["schema"]):  # need no database at all
        assert sop(*argv).exit_code == 0
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ unknown ids, people, procedures

def test_outbox_retry_of_an_unknown_id_is_refused(sop, one) -> None:  # type: ignore[no-untyped-def]
    refused(sop("outbox", "retry", "4242"), "no notification 4242")
    assert json.loads(refused(sop("outbox", "retry", "4242", "--json")))["code"] == "bad_input"


def test_staff_token_revoke_of_an_unknown_person_is_refused(sop, one) -> None:  # type: ignore[no-untyped-def]
    refused(sop("staff", "token", "revoke", "nobody"), "staff 'nobody'")
    assert json.loads(refused(sop("--json", "staff", "token", "revoke", "nobody")))["code"] == "unknown_staff"


def test_staff_token_revoke_of_an_unknown_token_id_is_refused(sop, one) -> None:  # type: ignore[no-untyped-def]
    assert sop("staff", "token", "create", "li_qiang").exit_code == 0
    refused(sop("staff", "token", "revoke", "li_qiang", "--id", "77"), "--id", "no token 77")
    assert sop("staff", "token", "revoke", "li_qiang", "--id", "1").exit_code == 0


def test_sla_report_of_an_unknown_procedure_is_refused_naming_the_known_ones(sop, one) -> None:  # type: ignore[no-untyped-def]
    refused(sop("sla", "report", "--procedure", "complaints"), "--procedure", "'complaints'", "complaint,")
    assert sop("sla", "report", "--procedure", "complaint").exit_code == 0


# ------------------------------------------------------------------ --json in both positions

PRINTERS = [["show", "1"], ["history", "1"], ["replay", "1"], ["tasks", "--as", "chen_jing"], ["audit", "verify"],
            ["sla", "report"], ["graph", "complaint"], ["lint"], ["outbox", "list"], ["staff", "token", "list"],
            ["db", "current"], ["tick", "--until", "2025-09-30T09:20:00+08:00"]]


@pytest.mark.parametrize("argv", PRINTERS, ids=[" ".join(a) for a in PRINTERS])
def test_every_read_command_takes_json_before_and_after_the_subcommand(sop, one, argv: list[str]) -> None:  # type: ignore[no-untyped-def]
    before, after = sop("--json", *argv), sop(*argv, "--json")
    assert before.exit_code == after.exit_code == 0, before.output + after.output
    assert json.loads(before.stdout) == json.loads(after.stdout)


def test_a_json_usage_error_after_the_subcommand_is_json(sop, one) -> None:  # type: ignore[no-untyped-def]
    error = json.loads(refused(sop("show", "--json")))
    assert error == {"error": "Missing argument 'INSTANCE'.", "code": "usage"}


# ------------------------------------------------------------------ help

@pytest.mark.parametrize("argv", [[], ["audit"], ["db"], ["staff", "token"]])
def test_a_group_without_a_subcommand_prints_its_help_on_stdout(runner: CliRunner, argv: list[str]) -> None:
    r = runner.invoke(main, argv, prog_name="sop")
    assert r.exit_code == 0 and r.stderr == ""
    assert r.stdout.startswith(f"Usage: {' '.join(['sop', *argv])} ") and "Commands:" in r.stdout


# ------------------------------------------------------------------ the worker and SIGTERM

def test_sigterm_stops_the_worker_promptly_and_cleanly(one: Path) -> None:
    env = {**os.environ, "SOP_DB": f"sqlite:///{one}"}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "worker", "--interval", "3600"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=one.parent)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("worker: sweeping every 3600s")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)  # the alarm is an hour away: only the signal can end it now
    assert code == 0, proc.stderr.read() if proc.stderr else ""
    assert proc.stdout.read() == "worker: stopped cleanly\n"


@pytest.mark.parametrize("value, reason", [(".nan", "finite"), ("1.0e-9", "greater than or equal to 0.01"),
                                           ("-1", "greater than or equal to 0.01"), ("1.0e308", "less than or equal to 3600")])
def test_a_delivery_poll_interval_that_would_spin_or_never_wake_is_refused(sop, one, tmp_path: Path, value: str,
                                                                         reason: str) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "notify.yaml"
    cfg.write_text(f"channels:\n  f: {{adapter: file, path: {tmp_path / 'out.txt'}}}\ndefault: [f]\n"
                   f"poll_seconds: {value}\n", encoding="utf-8")
    line = refused(sop("outbox", "deliver", "--notify", str(cfg)), "poll_seconds", reason)
    assert line.startswith(f"{cfg}:4:")
