"""`sop demo`: one month at 山水庭苑 on a fresh database, end to end through the CLI.

The month is played once for the module (it takes a while); each test reads what it left.
A short run of the first days, twice, shows the demo is deterministic.
"""
from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from cli import main
from engine import demo as demo_run
from engine.runtime.config import Settings, build_engine
from tests.conftest import ROOT

CLEAN_ENV = {"SOP_DB": None, "SOP_PROCEDURES": None, "SOP_ORG": None}


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    db = tmp_path_factory.mktemp("demo") / "sop-demo.db"
    result = CliRunner().invoke(main, ["demo", "--db-file", str(db)], env=CLEAN_ENV)
    return result, db


def sop(db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", f"sqlite:///{db}", *args], env=CLEAN_ENV)


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_demo_plays_the_month_and_says_where_the_database_is(month: tuple[Result, Path]) -> None:
    result, db = month
    assert result.exit_code == 0, result.output
    out = result.output
    assert "2025-09-15 → 2025-10-15" in out and "SLA 报告" in out and "流程实例" in out
    assert f"数据库：{db.resolve()}" in out
    for cmd in ("tasks --as chen_jing", "history", "replay", "audit verify"):
        assert f"sop --db sqlite:///{db.resolve()} {cmd}" in out
    notices = db.parent / "sop-demo-notices"
    files = sorted(p.name for p in notices.iterdir() if p.name != demo_run.NOTICES_MARK)  # (its own list)
    assert {"lawyer_letter", "door_notice", "fee_notice", "repair_slip"} <= {f.split("-")[2] for f in files}
    assert all(name in out for name in files)
    assert "定时任务失败" not in out and "replay differs" not in out


def test_the_sla_report_has_met_and_breached_clocks(month: tuple[Result, Path]) -> None:
    _, db = month
    res = sop(db, "--json", "sla", "report")
    assert res.exit_code == 0, res.output
    totals = {(r["procedure"], r["sla"]): r for r in json.loads(res.stdout) if r["assignee"] is None}
    for key in (("phone_call", "answer"), ("complaint", "reply"), ("dunning", "first_call")):
        assert totals[key]["met"] > 0 and totals[key]["breached"] > 0, totals[key]


def test_every_procedure_has_an_instance(month: tuple[Result, Path]) -> None:
    _, db = month
    shipped = {yaml.safe_load(p.read_text(encoding="utf-8"))["id"] for p in (ROOT / "procedures").glob("*.yaml")}
    played = {p for (p,) in query(db, "SELECT DISTINCT procedure FROM instances")}
    assert shipped <= played, f"no instance of {sorted(shipped - played)}"


def test_audit_verify_and_replay_pass(month: tuple[Result, Path]) -> None:
    _, db = month
    res = sop(db, "audit", "verify")
    assert res.exit_code == 0 and "every chain intact" in res.output, res.output
    # Through the CLI: one instance of every procedure; through the engine: every instance.
    for (iid,) in query(db, "SELECT min(id) FROM instances GROUP BY procedure"):
        res = sop(db, "replay", str(iid))
        assert res.exit_code == 0 and "matches the stored state" in res.output, res.output
    settings = Settings.resolve(f"sqlite:///{db}", None, None)
    engine = build_engine(settings)
    bad = [(iid, r.difference) for (iid,) in query(db, "SELECT id FROM instances")
           if not (r := engine.replay(iid)).ok]
    assert bad == []


def test_what_if_replay_under_the_unedited_files_finds_every_demo_case_the_same(month: tuple[Result, Path]) -> None:
    """Golden histories: the month's recorded commands, re-run by ``sop replay --with`` under
    the very files that recorded them, come out the same, case by case (state, status, SLAs,
    nothing refused): the re-run rebuilds what the engine did, not something like it."""
    _, db = month
    differ = {}
    for (procedure,) in query(db, "SELECT DISTINCT procedure FROM instances ORDER BY procedure"):
        res = sop(db, "--json", "replay", "--with", str(ROOT / "procedures" / f"{procedure}.yaml"))
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        assert out["instances"], procedure
        differ.update({(procedure, i["instance"]): i["differences"] for i in out["instances"] if not i["same"]})
    assert differ == {}


def data_of(db: Path, procedure: str) -> list[tuple[str]]:
    return query(db, f"SELECT data FROM instances WHERE procedure = '{procedure}'")


def actions(db: Path, procedure: str) -> list[tuple[int, str]]:
    rows = query(db, "SELECT e.instance_id, e.data FROM events e JOIN instances i ON i.id = e.instance_id "
                     f"WHERE i.procedure = '{procedure}' AND e.type = 'ActionTaken' ORDER BY e.instance_id, e.seq")
    return [(iid, json.loads(data)["action"]) for iid, data in rows]


def test_complaints_include_interim_replies_and_late_replies(month: tuple[Result, Path]) -> None:
    _, db = month
    assert {"interim_reply", "reply", "resolve", "check_effect"} <= {a for _, a in actions(db, "complaint")}
    channels = {json.loads(d)["channel"] for (d,) in data_of(db, "complaint")}
    assert {"phone", "visit", "letter"} <= channels
    resets = query(db, "SELECT count(*) FROM events WHERE type = 'SlaReset'")
    assert resets[0][0] >= 1


def test_dunning_has_all_five_classes(month: tuple[Result, Path]) -> None:
    _, db = month
    taken = {a for _, a in actions(db, "dunning")}
    assert {f"classify_{c}" for c in "abcde"} <= taken
    assert {"send_letter", "record_payment", "supervisor_review", "weekly_summary"} <= taken
    now = {json.loads(d).get("dunning_class") for (d,) in data_of(db, "dunning")}
    assert set("ABCDE") <= now
    # The dunning cases were handed over by the fee cycle (FEE-5), except the one carried over.
    parents = query(db, "SELECT p.procedure, count(*) FROM instances d JOIN instances p ON p.id = d.parent_id "
                        "WHERE d.procedure = 'dunning' GROUP BY p.procedure")
    assert parents and parents[0][0] == "fee_cycle" and parents[0][1] >= 5


def test_the_first_days_play_the_same_every_time(tmp_path: Path) -> None:
    """A subset (prologue + 5 days, missed calls returned included), twice: the same history to the last hash."""
    runs = []
    for name in ("a", "b"):
        db = tmp_path / name / "sop-demo.db"
        db.parent.mkdir()
        settings = Settings.resolve(demo_run.fresh_db(db), None, None)
        lines: list[str] = []
        result = demo_run.run(settings, lines.append, days=5)
        assert result.broken is None and result.replay_failures == [] and result.sweep_errors == []
        runs.append((result.diary, result.sla, result.states,
                     query(db, "SELECT id, procedure, state, revision, last_hash FROM instances ORDER BY id")))
    assert runs[0] == runs[1]
    summary = json.loads(json.dumps(demo_run.as_json(result)))  # what `sop --json demo` prints
    assert summary["audit"] == {"ok": True, "broken": None} and summary["instances"] == len(runs[1][3])
    assert summary["replay"]["differences"] == [] and summary["sla"] == result.sla
    diary, _, states, rows = runs[0]
    assert any("电话报修" in line for line in diary) and len(rows) > 20
    assert ("phone_call", "closed", "completed") in {(p, s, st) for p, s, st, _ in states}
    assert {p for p, *_ in states} >= {"fee_cycle", "dunning", "phone_call", "repair", "renovation", "meeting"}


def test_json_demo_prints_one_document_on_stdout_through_supported_click_calls(tmp_path: Path) -> None:
    """``--json``: the progress goes to stderr, and not through ``click.get_text_stream``
    (deprecated in Click 8.5, gone in 9: the command would fail there)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=DeprecationWarning, module=r"engine\.")
        result = CliRunner().invoke(main, ["--json", "demo", "--db-file", str(tmp_path / "sop-demo.db")],
                                    env=CLEAN_ENV)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert json.loads(result.stdout)["audit"] == {"ok": True, "broken": None}
    assert "模拟一个月" in result.stderr
