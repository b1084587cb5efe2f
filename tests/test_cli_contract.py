"""The ``sop`` command's contract, whatever the subcommand:

- human tables by default; ``--json`` (before or after the subcommand) prints JSON on stdout;
- a user error prints one clear line on stderr, exits 1, never a traceback, nothing on stdout;
- ``--at`` sets occurred_at; a time earlier than the instance's last event is refused;
- ``replay`` and ``audit verify`` exit 1 naming the first difference / broken link.

A malformed command line (missing option, unknown option, unknown command) is a user error
too: one line naming what is wrong and where to find help, exit 1.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main

NAMED = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
         "content": "楼上漏水", "anonymous": False}
AT = "2025-09-30T09:10:00+08:00"

@pytest.fixture
def sop(runner):  # type: ignore[no-untyped-def]
    def run(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
        r = runner.invoke(main, list(args))
        assert "Traceback" not in r.output
        if ok:
            assert r.exit_code == 0, r.output
        return r
    return run


@pytest.fixture(scope="module")
def one_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding complaint #1, received at 09:10 and taken up by the steward at 09:40."""
    path = tmp_path_factory.mktemp("cli") / "one.db"
    runner = CliRunner(env={"SOP_DB": f"sqlite:///{path}", "SOP_PROCEDURES": None, "SOP_ORG": None})
    for argv in (["start", "complaint", "--as", "liu_fang", "--data", json.dumps(NAMED), "--at", AT],
                 ["advance", "1", "investigate", "--as", "chen_jing", "--at", "2025-09-30T09:40:00+08:00"]):
        r = runner.invoke(main, argv)
        assert r.exit_code == 0, r.output
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def one(sop, one_db: Path, db_url: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    shutil.copyfile(one_db, db_file())
    return json.loads(sop("--json", "show", "1").stdout)


def db_file() -> str:
    return os.environ["SOP_DB"].removeprefix("sqlite:///")


def tables() -> dict[str, list[tuple]]:
    with sqlite3.connect(db_file()) as con:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {n: sorted(con.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}


# ------------------------------------------------------------------ human output by default

def test_start_and_show_print_a_readable_summary(sop) -> None:  # type: ignore[no-untyped-def]
    r = sop("start", "complaint", "--as", "liu_fang", "--data", json.dumps(NAMED), "--at", AT)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("#1  complaint @ ") and lines[0].endswith("state: received (active)")
    assert lines[1].startswith("assignee: chen_jing   role queue: steward   revision: ")
    assert "  unit: 3-1201" in lines
    assert "actions:" in lines
    assert r.stderr == ""
    assert sop("show", "1").stdout.splitlines()[0] == lines[0]


def test_tasks_and_history_print_tables(sop, one) -> None:  # type: ignore[no-untyped-def]
    tasks = sop("tasks", "--as", "chen_jing").stdout.splitlines()
    assert tasks[0].split() == ["id", "procedure", "state", "assignee", "role", "unit", "since", "due"]
    assert set(tasks[1]) <= {"-", " "}
    assert tasks[2].split()[:6] == ["1", "complaint", "investigating", "chen_jing", "steward", "3-1201"]
    history = sop("history", "1").stdout.splitlines()
    assert history[0].split() == ["seq", "type", "actor", "role", "occurred_at", "data"]
    assert history[2].split()[:5] == ["1", "InstanceStarted", "liu_fang", "front_desk", AT]


def test_replay_verify_and_graph_print_text(sop, one) -> None:  # type: ignore[no-untyped-def]
    n = one["revision"]
    assert sop("replay", "1").stdout == f"instance 1: replay of {n} events matches the stored state\n"
    out = sop("audit", "verify").stdout
    assert out.startswith(f"ok: 1 instances, {n} events, every chain intact; ledger of ") and out.count("\n") == 1
    graph = sop("graph", "complaint").stdout
    assert graph.startswith("stateDiagram-v2\n") and "received --> investigating : investigate (开始调查)" in graph


# ------------------------------------------------------------------ --json

@pytest.mark.parametrize("where", ["before", "after"])
def test_json_on_stdout_before_or_after_the_subcommand(sop, one, where: str) -> None:  # type: ignore[no-untyped-def]
    def js(*args: str) -> Any:
        argv = ["--json", *args] if where == "before" else [*args, "--json"]
        r = sop(*argv)
        assert r.stderr == ""
        return json.loads(r.stdout)

    shown = js("show", "1")
    assert set(shown) == {"id", "procedure", "version", "state", "status", "assignee", "assignee_role", "revision",
                          "data", "actions", "deadlines", "parent", "children", "watchers", "branches", "started_at",
                          "last_occurred_at"}
    assert (shown["id"], shown["state"], shown["started_at"]) == (1, "investigating", AT)
    assert {"name": "investigate", "title": "开始调查", "roles": ["steward", "cs_supervisor", "office_director"],
            "form": None} not in shown["actions"]
    assert [t["id"] for t in js("tasks", "--as", "chen_jing")] == [1]
    events = js("history", "1")
    assert set(events[0]) == {"seq", "type", "actor", "role", "occurred_at", "recorded_at", "data", "prev_hash", "hash"}
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert js("replay", "1") == {"instance": 1, "ok": True, "events": len(events), "seq": None, "difference": None}
    verified = js("audit", "verify")
    assert {k: verified[k] for k in ("ok", "instances", "events", "broken", "findings", "checkpoint")} == \
        {"ok": True, "instances": 1, "events": len(events), "broken": None, "findings": [], "checkpoint": None}
    graph = js("graph", "callback")
    assert graph["procedure"] == "callback" and graph["mermaid"].startswith("stateDiagram-v2")
    assert {"action": "check", "title": "检查回访工作", "from": "recorded", "to": "checked"} in graph["transitions"]
    assert js("schema", "form")["title"] == "FormSpec"      # lint --json: tests/test_lint.py


def test_advance_json_is_the_new_state(sop, one) -> None:  # type: ignore[no-untyped-def]
    r = sop("advance", "1", "reply", "--as", "chen_jing", "--json", "--at", "2025-09-30T10:00:00+08:00",
            "--data", json.dumps({"reply_method": "phone", "reply_summary": "已处理"}))
    after = json.loads(r.stdout)
    assert (after["state"], after["data"]["reply_summary"], after["last_occurred_at"]) == \
        ("replied", "已处理", "2025-09-30T10:00:00+08:00")
    assert after["revision"] > one["revision"]


# ------------------------------------------------------------------ user errors

USER_ERRORS = [
    (["start", "complaint", "--as", "nobody"], "error: staff 'nobody' is not in the organisation file"),
    (["start", "complain", "--as", "liu_fang"], "error: PROCEDURE: unknown procedure 'complain'; known: "),
    (["start", "complaint", "--as", "liu_fang", "--data", "{"], "error: --data: not valid JSON at line 1 column 2"),
    (["start", "complaint", "--as", "liu_fang", "--data", "[1]"], "error: --data: must be a JSON object"),
    (["start", "complaint", "--as", "liu_fang", "--data", "@/no/such/file.json"], "error: --data: cannot read "),
    (["start", "complaint", "--as", "liu_fang", "--at", "yesterday"], "error: --at: not an ISO 8601 time"),
    (["start", "complaint", "--as", "liu_fang", "--data", '{"channel": "fax", "content": "x", "anonymous": true}'],
     "error: form complaint_intake: channel: Input should be 'phone', 'visit', 'letter' or 'online'"),
    (["start", "complaint", "--as", "wu_gang", "--data", json.dumps(NAMED)],
     "error: wu_gang may not start complaint: needs one of the roles "),
    (["advance", "1", "dispatch", "--as", "wu_gang"], "error: wu_gang may not take 'dispatch'"),
    (["advance", "1", "fly", "--as", "chen_jing"], "error: action 'fly' not allowed: complaint has no such action"),
    (["advance", "1", "reply", "--as", "chen_jing", "--data",
      '{"reply_method": "phone", "reply_summary": "好", "commitment": "赔钱"}'],
     "error: action 'reply' not allowed: 超出权限的承诺须先请示上级并获同意（CMP-8）"),
    (["advance", "1", "reply", "--as", "chen_jing", "--revision", "1", "--data",
      '{"reply_method": "phone", "reply_summary": "好"}'],
     "error: instance 1 was changed by someone else since revision 1 (now at revision "),
    (["advance", "1", "reply", "--as", "chen_jing", "--at", "2025-09-30T09:00:00+08:00", "--data",
      '{"reply_method": "phone", "reply_summary": "好"}'],
     "error: --at 2025-09-30T09:00:00+08:00 is earlier than the last event of instance 1"),
    (["advance", "x1", "investigate", "--as", "chen_jing"], "error: ID: not an instance id: 'x1'"),
    (["show", "99"], "error: instance 99 not found"),
    (["history", "99"], "error: instance 99 not found"),
    (["replay", "99"], "error: instance 99 not found"),
    (["record", "1", "--as", "chen_jing", "--data", '{"mood": "angry"}'],
     "error: form record: mood: unknown field of complaint"),
    (["claim", "1", "--as", "wang_li"], "error: action 'claim' not allowed: instance 1 is assigned to chen_jing"),
    (["assign", "1", "wang_li", "--as", "chen_jing"], "error: chen_jing may not assign instance 1"),
    (["tasks"], "error: tasks: give exactly one of --as STAFF or --role ROLE"),
    (["tasks", "--role", "janitor"], "error: --role: unknown role 'janitor'"),
    (["graph", "nothing"], "error: PROCEDURE: unknown procedure 'nothing'"),
    (["--db", "notaurl", "show", "1"], "error: --db: not a database URL: 'notaurl'"),
    (["--db", "sqlite:////no/such/folder/x.db", "show", "1"], "error: --db: /no/such/folder/x.db does not exist"),
    (["--db", "sqlite:////no/such/folder/x.db", "start", "complaint", "--as", "liu_fang"],
     "error: --db: folder /no/such/folder does not exist"),
    (["--procedures", "/no/such/dir", "show", "1"], "error: --procedures: /no/such/dir is not a directory"),
    (["--org", "/no/such/org.yaml", "show", "1"], "error: --org: /no/such/org.yaml does not exist"),
]


@pytest.mark.parametrize("argv, first_words", USER_ERRORS, ids=[" ".join(a)[:60] for a, _ in USER_ERRORS])
def test_user_error_is_one_line_on_stderr_and_exit_1(sop, one, argv: list[str], first_words: str) -> None:  # type: ignore[no-untyped-def]
    before = tables()
    r = sop(*argv, ok=False)
    assert r.exit_code == 1
    assert r.stdout == ""
    assert r.stderr.startswith(first_words), r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.endswith("\n")
    assert tables() == before, "a refused command wrote to the database"


@pytest.mark.parametrize("argv, first_words", USER_ERRORS[::4], ids=[" ".join(a)[:60] for a, _ in USER_ERRORS[::4]])
def test_with_json_a_user_error_is_one_json_line_on_stderr(sop, one, argv: list[str], first_words: str) -> None:  # type: ignore[no-untyped-def]
    r = sop("--json", *argv, ok=False)
    assert (r.exit_code, r.stdout) == (1, "")
    assert r.stderr.count("\n") == 1
    error = json.loads(r.stderr)
    assert error["error"].startswith(first_words.removeprefix("error: ")) and error["code"]


def test_a_broken_org_file_is_reported_as_located_lines(sop, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    org = tmp_path / "org.yaml"
    org.write_text("site: {name: x}\nstaff:\n  - {id: a, name: 甲, roles: [janitor]}\n  - {id: a, name: 乙, roles: [steward]}\n",
                   encoding="utf-8")
    r = sop("--org", str(org), "show", "1", ok=False)
    assert (r.exit_code, r.stdout) == (1, "")
    assert r.stderr == f"{org}:1:1: staff a: unknown role(s) janitor\n"


@pytest.mark.parametrize("argv", [["advance", "1"], ["start", "complaint"], ["show", "1", "--as", "x"], ["fly"]])
def test_a_malformed_command_line_is_one_line_and_exit_1(sop, argv: list[str]) -> None:  # type: ignore[no-untyped-def]
    r = sop(*argv, ok=False)
    assert r.exit_code == 1
    assert r.stdout == ""
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1 and "--help" in r.stderr


def test_a_db_file_that_is_not_a_database_is_a_user_error(sop, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    junk = tmp_path / "notes.txt"
    junk.write_text("这不是数据库\n" * 200, encoding="utf-8")
    r = sop("--db", f"sqlite:///{junk}", "show", "1", ok=False)
    assert (r.exit_code, r.stdout) == (1, "")
    assert r.stderr.startswith("error: --db") and r.stderr.count("\n") == 1


# ------------------------------------------------------------------ time, data files, revision

def test_at_sets_occurred_at_and_a_time_without_offset_is_the_sites(sop, one) -> None:  # type: ignore[no-untyped-def]
    sop("advance", "1", "report_important", "--as", "chen_jing", "--at", "2025-09-30T11:00:00")
    last = json.loads(sop("--json", "history", "1").stdout)[-1]
    assert last["occurred_at"] == "2025-09-30T11:00:00+08:00"
    assert last["recorded_at"] != last["occurred_at"]        # recorded when the engine wrote it
    r = sop("advance", "1", "report_important", "--as", "chen_jing", "--at", "2025-09-30T10:59:59+08:00", ok=False)
    assert r.exit_code == 1 and r.stderr.startswith("error: --at 2025-09-30T10:59:59+08:00 is earlier than")


def test_data_from_a_file(sop, one, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "findings.json"
    f.write_text(json.dumps({"findings": "防水层破损", "cause": "老化", "responsibility": "owner"}), encoding="utf-8")
    r = sop("--json", "advance", "1", "record_findings", "--as", "chen_jing", "--data", f"@{f}")
    assert json.loads(r.stdout)["data"]["cause"] == "老化"


def test_revision_guards_advance(sop, one) -> None:  # type: ignore[no-untyped-def]
    rev = str(one["revision"])
    sop("advance", "1", "report_important", "--as", "chen_jing", "--revision", rev)
    r = sop("advance", "1", "report_important", "--as", "chen_jing", "--revision", rev, ok=False)
    assert r.exit_code == 1 and "was changed by someone else since revision" in r.stderr


def test_record_claim_and_assign(sop, one) -> None:  # type: ignore[no-untyped-def]
    assert json.loads(sop("--json", "record", "1", "--as", "chen_jing", "--data",
                          '{"contact": "13900000000"}').stdout)["data"]["contact"] == "13900000000"
    assert json.loads(sop("--json", "assign", "1", "wang_li", "--as", "li_qiang").stdout)["assignee"] == "wang_li"
    sop("start", "complaint", "--as", "zhou_min", "--data", '{"channel": "letter", "content": "噪音", "anonymous": true}')
    assert json.loads(sop("--json", "claim", "2", "--as", "li_qiang").stdout)["assignee"] == "li_qiang"


# ------------------------------------------------------------------ replay and verify failures

def test_replay_and_verify_exit_1_naming_the_first_difference(sop, one) -> None:  # type: ignore[no-untyped-def]
    with sqlite3.connect(db_file()) as con:
        con.execute("UPDATE instances SET state = 'replied' WHERE id = 1")
    r = sop("replay", "1", ok=False)
    assert (r.exit_code, r.stdout) == (1, "instance 1: replay differs: state: replay gives 'investigating', "
                                          "stored 'replied'\n")
    assert json.loads(sop("--json", "replay", "1", ok=False).stdout)["difference"] == \
        "state: replay gives 'investigating', stored 'replied'"
    with sqlite3.connect(db_file()) as con:
        con.execute("UPDATE events SET actor = 'wang_li' WHERE instance_id = 1 AND seq = 2")
    r = sop("audit", "verify", ok=False)
    assert (r.exit_code, r.stdout) == (1, "broken: instance 1 seq 2: hash does not match the event's content "
                                          "(altered)\n")
    assert json.loads(sop("--json", "audit", "verify", ok=False).stdout)["broken"] == \
        {"instance": 1, "seq": 2, "reason": "hash does not match the event's content (altered)"}
