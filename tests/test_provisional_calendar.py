"""The office never stops for the calendar (issue 11): provisional years, flags, repair.

Today is December 2026 and chinese-calendar knows nothing of 2027. A complaint received
on 30 or 31 December still gets its deadline, computed on the provisional 2027 calendar
(the statutory rules, engine/statutory.py) and flagged ``provisional`` wherever a person
sees it; once the site adds the 2027 notice, ``sop calendar repair`` moves each open
deadline with one ClockRepaired event, and replay and audit still hold.
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from cli import main
from engine.runtime.calendar_repair import repair_all
from engine.runtime.calendar_status import open_provisional_count, watch
from engine.runtime.calendar_status import status as calendar_status
from engine.runtime.config import Settings, build_engine
from engine.store.tables import outbox
from engine.timeskip import skip_to
from tests.case_helpers import clock, events, local, t  # noqa: F401  (fixtures)
from tests.conftest import ROOT

COMPLAINT = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "content": "楼上漏水",
             "anonymous": False}
# Illustrative, NOT the real 2027 notice: New Year off from 1 to 4 January, so that the
# repair has something to move.
NOTICE_2027 = """\
years:
  2027:
    source: "示例：2027年节假日安排（测试用）"
    holidays: ["2027-01-01..2027-01-04", "2027-02-05..2027-02-11"]
    workdays: [2027-02-20]
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site folder: the shipped org file and, once written, the site's own calendar file."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "org.yaml").write_text((ROOT / "org" / "demo.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return folder


def engine_for(db_url: str, site: Path, clock):  # type: ignore[no-untyped-def]
    return build_engine(Settings(db_url, ROOT / "procedures", site / "org.yaml"), clock)


def sla(engine, iid: int) -> dict:  # type: ignore[no-untyped-def]
    return next(d for d in engine.deadlines(iid) if d["name"] == "reply")


def test_cmp3_letter_complaint_of_2026_12_30_is_recorded_with_a_provisional_deadline(db_url, site, clock) -> None:  # type: ignore[no-untyped-def]
    engine = engine_for(db_url, site, clock)
    c = engine.start("complaint", "liu_fang", {**COMPLAINT, "channel": "letter"}, at=t("2026-12-30T10:00"))
    # 3 workdays of working hours: 12-30 6.5 h, 12-31 7.5 h, 元旦 off, 01-04 7.5 h, 01-05 the last hour.
    assert sla(engine, c.id) == {"name": "reply", "kind": "sla", "due": "2027-01-05T10:00:00+08:00",
                                 "status": "open", "provisional": True, "provisional_years": [2027]}
    assert engine.replay(c.id).ok


def test_cmp3_phone_complaint_of_2026_12_31_is_flagged_in_show_tasks_and_report(db_url, site, clock, runner,  # type: ignore[no-untyped-def]
                                                                                 monkeypatch) -> None:
    engine = engine_for(db_url, site, clock)
    c = engine.start("complaint", "liu_fang", {**COMPLAINT, "channel": "phone"}, at=t("2026-12-31T10:00"))
    assert sla(engine, c.id)["due"] == "2027-01-04T10:00:00+08:00"
    monkeypatch.setenv("SOP_ORG", str(site / "org.yaml"))
    shown = runner.invoke(main, ["show", str(c.id)])
    assert "reply  due 2027-01-04T10:00:00+08:00  open  provisional (2027)" in shown.stdout
    task = json.loads(runner.invoke(main, ["--json", "tasks", "--as", "chen_jing"]).stdout)[0]
    assert (task["due"], task["sla_status"], task["provisional"]) == ("2027-01-04T10:00:00+08:00", "open", True)
    report = json.loads(runner.invoke(main, ["--json", "sla", "report", "--procedure", "complaint"]).stdout)
    assert {(r["sla"], r["assignee"], r["open"], r["provisional"]) for r in report} >= {("reply", None, 1, 1)}


def test_dun12_payment_on_2026_12_31_is_booked_while_daily_timers_run_into_2027(db_url, site, clock) -> None:  # type: ignore[no-untyped-def]
    from tests.test_rules_dunning import CASE

    engine = engine_for(db_url, site, clock)
    c = engine.start("dunning", "li_qiang", {**CASE, "notices_posted_at": t("2026-12-01T09:00").isoformat()},
                     at=t("2026-12-01T09:00"))
    skip_to(engine, t("2026-12-31T11:00"))
    paid = engine.advance(c.id, "record_payment", "liu_fang", {"payment_amount": CASE["amount_due"],
                          "payment_channel": "wechat", "payment_reference": "WX-20261231"}, at=t("2026-12-31T11:00"))
    assert paid.status == "completed" and engine.replay(c.id).ok


def test_calendar_repair_moves_open_deadlines_with_one_event_each_once_the_notice_is_added(db_url, site, clock,  # type: ignore[no-untyped-def]
                                                                                           runner, monkeypatch) -> None:
    before = engine_for(db_url, site, clock)
    c = before.start("complaint", "liu_fang", {**COMPLAINT, "channel": "letter"}, at=t("2026-12-30T10:00"))
    phone = before.start("complaint", "liu_fang", {**COMPLAINT, "channel": "phone"}, at=t("2026-12-30T10:00"))
    early = before.start("complaint", "liu_fang", {**COMPLAINT, "channel": "phone"}, at=t("2026-12-01T10:00"))
    assert repair_all(before, t("2026-12-30T12:00")) == []  # nothing changed yet: nothing recorded
    (site / "calendar.yaml").write_text(NOTICE_2027, encoding="utf-8")
    clock.set(t("2026-12-30T12:00"))
    monkeypatch.setenv("SOP_ORG", str(site / "org.yaml"))
    out = runner.invoke(main, ["--json", "calendar", "repair", "--at", "2026-12-30T12:00"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    moved = {r["instance"]: r for r in json.loads(out.stdout)}
    # The letter's 3 workdays now end an hour into 01-06; the phone reply's 1 workday ends on
    # 12-31, before the provisional year, and so does not move; neither does a finished day.
    assert set(moved) == {c.id}
    assert (moved[c.id]["old_due"], moved[c.id]["new_due"]) == ("2027-01-05T10:00:00+08:00",
                                                                 "2027-01-06T10:00:00+08:00")
    assert "was computed on provisional 2027" in moved[c.id]["reason"] and "示例" in moved[c.id]["reason"]
    after = engine_for(db_url, site, clock)
    assert sla(after, c.id) == {"name": "reply", "kind": "sla", "due": "2027-01-06T10:00:00+08:00", "status": "open"}
    [event] = events(after, c.id, "ClockRepaired")
    assert (event["name"], event["_actor"], event["_at"]) == ("reply", "system", "2026-12-30T12:00")
    assert (local(event["old_due"]), local(event["new_due"])) == ("2027-01-05T10:00", "2027-01-06T10:00")
    assert all(after.replay(i).ok for i in (c.id, phone.id, early.id)) and after.verify()[2] is None
    assert repair_all(after, t("2026-12-30T13:00")) == []  # a second repair finds nothing to move
    # The sweep judges the corrected deadline: still open on the old due, breached after the new.
    skip_to(after, t("2027-01-05T18:00"))
    assert sla(after, c.id)["status"] == "warned"  # not breached: warned on the way to the new due
    skip_to(after, t("2027-01-06T10:01"))
    assert sla(after, c.id)["status"] == "breached"


def test_calendar_status_says_where_each_year_comes_from_and_warns_from_november(db_url, site, clock) -> None:  # type: ignore[no-untyped-def]
    engine = engine_for(db_url, site, clock)
    engine.start("complaint", "liu_fang", {**COMPLAINT, "channel": "letter"}, at=t("2026-12-30T10:00"))
    def status(engine, now):  # type: ignore[no-untyped-def]
        return calendar_status(engine.calendar, now, open_provisional_count(engine))

    report = status(engine, t("2026-12-03T09:00"))
    assert [(y["year"], y["source"]) for y in report["years"]] == [
        (2025, "package"), (2026, "package"), (2027, "provisional")]
    assert report["open_provisional_deadlines"] == 1
    assert len(report["warnings"]) == 1 and "2027 is still provisional" in report["warnings"][0]
    assert status(engine, t("2026-10-31T09:00"))["warnings"] == []

    def queued() -> list[tuple[str, str]]:
        with engine.read() as conn:
            return [(r.recipient, r.idempotency_key) for r in conn.execute(sa.select(outbox))]

    watch(engine, t("2026-10-31T23:00"))               # October: not yet
    assert queued() == []
    watch(engine, t("2026-11-01T00:10"))               # 1 November: the director is told once
    watch(engine, t("2026-11-02T09:00"))
    assert queued() == [("zhang_hua", "calendar:2027:zhang_hua")]
    watch(engine_for(db_url, site, clock), t("2026-11-03T09:00"))  # another process: still once
    assert queued() == [("zhang_hua", "calendar:2027:zhang_hua")]
    (site / "calendar.yaml").write_text(NOTICE_2027, encoding="utf-8")
    fixed = engine_for(db_url, site, clock)
    assert status(fixed, t("2026-12-03T09:00"))["warnings"] == []
    assert status(fixed, t("2026-12-03T09:00"))["years"][2]["source"] == "site"


def test_calendar_status_needs_no_database(site, runner, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SOP_DB", f"sqlite:///{tmp_path / 'none.db'}")
    out = runner.invoke(main, ["--json", "calendar", "status"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["open_provisional_deadlines"] is None and not (tmp_path / "none.db").exists()


def test_calendar_option_and_env_name_the_site_file(db_url, site, runner, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "elsewhere.yaml").write_text(NOTICE_2027, encoding="utf-8")
    out = runner.invoke(main, ["--json", "--calendar", str(tmp_path / "elsewhere.yaml"), "calendar", "status"])
    assert out.exit_code == 0, out.output
    sources = {y["year"]: y["source"] for y in json.loads(out.stdout)["years"]}
    assert sources[2027] == "site"  # the year the named file states, whatever today's year is
    assert json.loads(out.stdout)["file"] == str(tmp_path / "elsewhere.yaml")
    monkeypatch.setenv("SOP_CALENDAR", str(tmp_path / "missing.yaml"))
    bad = runner.invoke(main, ["calendar", "status"])
    assert bad.exit_code == 1 and bad.output.strip() == f"error: --calendar: {tmp_path / 'missing.yaml'} does not exist"


def test_a_refused_earlier_time_is_shown_in_the_site_zone(db_url, site, clock) -> None:  # type: ignore[no-untyped-def]
    from engine.errors import TimeOrderError

    engine = engine_for(db_url, site, clock)
    c = engine.start("complaint", "liu_fang", {**COMPLAINT, "channel": "phone"}, at=t("2026-12-31T10:00"))
    with pytest.raises(TimeOrderError) as err:
        engine.claim(c.id, "chen_jing", at=datetime.fromisoformat("2026-12-31T09:00:00+08:00"))
    assert "2026-12-31T09:00:00+08:00" in str(err.value) and "(2026-12-31T10:00:00+08:00)" in str(err.value)


def test_fee5_the_2027_01_fee_cycle_hands_its_unpaid_unit_to_dunning(db_url, site, clock) -> None:  # type: ignore[no-untyped-def]
    from tests.test_rules_fee_cycle import CHARGES

    engine = engine_for(db_url, site, clock)
    c = engine.start("fee_cycle", "lin_cai", {**CHARGES, "period": "2027-01", "unit": "7-0802", "payment_method": "cash",
                     "due_date": "2027-01-15"}, at=t("2027-01-04T09:00"))
    skip_to(engine, t("2027-01-05T09:00"))
    engine.advance(c.id, "deliver_notice", "xu_bin", {"delivered_via": "patrol"}, at=t("2027-01-05T15:00"))
    skip_to(engine, t("2027-02-01T09:00"))                       # the month-end timer closes the cycle
    closed = engine.show(c.id)
    assert closed.status == "completed" and closed.data["outcome"] == "handed_to_dunning"
    [child] = closed.children
    assert engine.show(child).procedure == "dunning" and engine.show(child).data["period"] == "2027-01"
    assert engine.replay(c.id).ok and engine.replay(child).ok


def test_worker_repairs_open_deadlines_when_it_starts(db_url, site, clock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal
    import subprocess
    import sys

    engine = engine_for(db_url, site, clock)
    c = engine.start("complaint", "liu_fang", {**COMPLAINT, "channel": "letter"}, at=t("2026-12-30T10:00"))
    engine.close()
    (site / "calendar.yaml").write_text(NOTICE_2027, encoding="utf-8")  # edited while no worker ran
    env = {**os.environ, "SOP_DB": db_url, "SOP_ORG": str(site / "org.yaml"), "PYTHONUNBUFFERED": "1"}
    worker = subprocess.Popen([sys.executable, "-c", "from cli import main; main()", "worker", "--interval", "60"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in worker.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if line.startswith("worker: sweeping"):
                break
    finally:
        worker.send_signal(signal.SIGTERM)
        rest, _ = worker.communicate(timeout=60)
    assert "worker: working calendar changed, 1 open deadlines recomputed\n" in lines, "".join(lines) + rest
    after = engine_for(db_url, site, clock)
    assert sla(after, c.id)["due"] == "2027-01-06T10:00:00+08:00"
    assert [e["name"] for e in events(after, c.id, "ClockRepaired")] == ["reply"]


def test_api_shows_provisional_deadlines_in_the_instance_and_the_inbox(db_url, site, clock) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from engine.api import create_app
    from engine.api.server import BackgroundServer
    from tests.api_support import issue_tokens

    engine = engine_for(db_url, site, clock)
    clock.set(t("2026-12-31T10:00"))
    tokens = issue_tokens(engine)
    with BackgroundServer(create_app(engine, max_body_bytes=64 * 1024)) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens['liu_fang']}"}) as front:
            made = front.post("/v1/instances", json={"procedure": "complaint", "data": {**COMPLAINT, "channel": "phone"}})
            assert made.status_code == 201, made.text
        [reply] = [d for d in made.json()["deadlines"] if d["name"] == "reply"]
        assert (reply["due"], reply["provisional"], reply["provisional_years"]) == (
            "2027-01-04T10:00:00+08:00", True, [2027])
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens['chen_jing']}"}) as steward:
            [task] = steward.get("/v1/tasks").json()["items"]
        assert (task["due"], task["sla_status"], task["provisional"]) == ("2027-01-04T10:00:00+08:00", "open", True)
