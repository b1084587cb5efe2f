"""Deadlines on the working calendar: SLA clocks, timers, the durable sweep (issue 3)."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.clock import FakeClock
from engine.errors import ActionNotAllowed, NotAuthorized
from engine.runtime.config import Settings, build_engine
from engine.timeskip import skip, skip_to
from engine.store import timers as timer_store
from tests.conftest import ROOT, SHANGHAI

ORAL = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
        "content": "楼上漏水", "anonymous": False}


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI) if "+" not in text else datetime.fromisoformat(text)


def deadline(engine, iid: int, name: str) -> dict:  # type: ignore[no-untyped-def]
    return next(d for d in engine.deadlines(iid) if d["name"] == name)


# ------------------------------------------------------------------ CMP-3 / CMP-4

def test_cmp3_oral_complaint_at_1755_before_national_day_is_due_1755_on_first_workday_after(engine) -> None:  # type: ignore[no-untyped-def]
    c = engine.start("complaint", "liu_fang", ORAL, at=t("2025-09-30T17:55"))
    assert deadline(engine, c.id, "reply") == {"name": "reply", "kind": "sla", "status": "open",
                                               "due": "2025-10-09T17:55:00+08:00"}


def test_cmp3_letter_gets_three_workdays_counting_the_make_up_saturday(engine) -> None:  # type: ignore[no-untyped-def]
    c = engine.start("complaint", "liu_fang", {**ORAL, "channel": "letter"}, at=t("2025-09-30T17:55"))
    # 10-09 and 10-10 are workdays, and Saturday 10-11 is a make-up working day (调休).
    assert deadline(engine, c.id, "reply")["due"] == "2025-10-11T17:55:00+08:00"


def test_cmp3_reply_before_the_due_time_is_met(engine) -> None:  # type: ignore[no-untyped-def]
    c = engine.start("complaint", "liu_fang", ORAL, at=t("2025-09-30T17:55"))
    engine.advance(c.id, "reply", "chen_jing", {"reply_method": "phone", "reply_summary": "已处理"},
                   at=t("2025-10-09T10:00"))
    assert deadline(engine, c.id, "reply")["status"] == "met"


def test_cmp3_late_reply_is_breached_judged_on_occurred_at_without_any_sweep(engine) -> None:  # type: ignore[no-untyped-def]
    c = engine.start("complaint", "liu_fang", ORAL, at=t("2025-09-30T17:55"))
    engine.advance(c.id, "reply", "chen_jing", {"reply_method": "phone", "reply_summary": "已处理"},
                   at=t("2025-10-09T18:30"))
    assert deadline(engine, c.id, "reply")["status"] == "breached"
    types = [e.type for e in engine.history(c.id)]
    assert types.index("SlaBreached") < types.index("ActionTaken")  # the breach happened first
    assert engine.replay(c.id).ok


def test_cmp3_warnings_then_breach_notify_and_escalate(engine, clock) -> None:  # type: ignore[no-untyped-def]
    c = engine.start("complaint", "liu_fang", ORAL, at=t("2025-09-30T17:55"))
    fired = skip_to(engine, t("2025-10-09T18:00"))
    assert [(f.name, f.kind) for f in fired] == [("reply", "warned"), ("reply", "warned"), ("reply", "breached")]
    shown = engine.show(c.id)
    assert shown.data["priority"] == "high"
    notes = [json.loads(e.data_json) for e in engine.history(c.id) if e.type == "NotificationQueued"]
    assert any("li_qiang" in n["recipients"] and "超过答复时限" in n["message"] for n in notes)


def test_cmp4_interim_reply_sets_the_promised_time_as_the_new_deadline(engine) -> None:  # type: ignore[no-untyped-def]
    c = engine.start("complaint", "liu_fang", ORAL, at=t("2025-10-09T09:00"))
    engine.advance(c.id, "interim_reply", "chen_jing",
                   {"interim_message": "正在联系楼上业主", "next_reply_at": "2025-10-13T12:00:00+08:00"},
                   at=t("2025-10-09T15:00"))
    assert deadline(engine, c.id, "reply") == {"name": "reply", "kind": "sla", "status": "open",
                                               "due": "2025-10-13T12:00:00+08:00"}
    engine.advance(c.id, "reply", "chen_jing", {"reply_method": "phone", "reply_summary": "已处理"},
                   at=t("2025-10-13T11:00"))
    assert deadline(engine, c.id, "reply")["status"] == "met"


# ------------------------------------------------------------------ clock kinds

@pytest.fixture
def probe(tmp_path: Path, db_url: str, clock: FakeClock):  # type: ignore[no-untyped-def]
    procs, forms = tmp_path / "procedures", tmp_path / "forms"
    shutil.copytree(ROOT / "procedures", procs)
    shutil.copytree(ROOT / "forms", forms)
    shutil.copy(ROOT / "tests/timer_fixtures/probe.yaml", procs / "probe.yaml")
    shutil.copy(ROOT / "tests/timer_fixtures/probe_start.yaml", forms / "probe_start.yaml")
    return build_engine(Settings(db_url, procs, ROOT / "org/demo.yaml"), clock)


def test_phn1_ring_unit_three_rings_is_fifteen_seconds_and_breach_escalates(probe, clock) -> None:  # type: ignore[no-untyped-def]
    p = probe.start("probe", "liu_fang", {}, at=t("2025-10-09T10:00"))
    assert deadline(probe, p.id, "answer")["due"] == "2025-10-09T10:00:15+08:00"
    assert [f.name for f in skip_to(probe, t("2025-10-09T10:00:16"))] == ["answer"]
    assert deadline(probe, p.id, "answer")["status"] == "breached"


def test_overdue_steps_fire_once_late_after_downtime_with_lateness_recorded(probe, clock) -> None:  # type: ignore[no-untyped-def]
    p = probe.start("probe", "liu_fang", {}, at=t("2025-10-09T10:00"))
    fired = skip_to(probe, t("2025-10-09T11:00:15"))  # the worker was down for an hour
    assert [f.name for f in fired].count("answer") == 1
    breach = next(json.loads(e.data_json) for e in probe.history(p.id) if e.type == "SlaBreached")
    assert breach["late_by_s"] == 3600
    assert probe.tick(clock.now()) == []  # nothing fires twice


def test_sla_pauses_while_paused_and_resumes_with_the_remaining_working_time(probe) -> None:  # type: ignore[no-untyped-def]
    p = probe.start("probe", "liu_fang", {}, at=t("2025-10-09T09:00"))
    assert deadline(probe, p.id, "handle")["due"] == "2025-10-09T14:30:00+08:00"
    probe.advance(p.id, "hold", "liu_fang", at=t("2025-10-09T10:00"))  # 1 h used, 3 h left
    assert deadline(probe, p.id, "handle").get("paused")
    probe.advance(p.id, "resume", "liu_fang", at=t("2025-10-10T09:00"))
    assert deadline(probe, p.id, "handle")["due"] == "2025-10-10T12:00:00+08:00"


def test_timer_at_a_time_computed_from_data_starts_at_minus_15_minutes(probe, clock) -> None:  # type: ignore[no-untyped-def]
    p = probe.start("probe", "liu_fang", {"starts_at": "2025-10-09T14:00:00+08:00"}, at=t("2025-10-09T09:00"))
    assert deadline(probe, p.id, "lights")["due"] == "2025-10-09T13:45:00+08:00"
    skip_to(probe, t("2025-10-09T13:45"))
    assert probe.show(p.id).data["reminded"] == 1
    assert deadline(probe, p.id, "lights")["status"] == "fired"


def test_recurring_timer_every_15_minutes_stops_when_the_state_is_left(probe, clock) -> None:  # type: ignore[no-untyped-def]
    p = probe.start("probe", "liu_fang", {}, at=t("2025-10-09T09:00"))
    probe.advance(p.id, "run", "liu_fang", at=t("2025-10-09T09:00:05"))
    teas = []
    clock.set(t("2025-10-09T09:00:05"))
    for _ in range(4):  # a live worker sweeps often: one firing per occurrence
        teas += [f for f in skip(probe, minutes=15) if f.name == "tea"]
    assert [f.due.astimezone(SHANGHAI).strftime("%H:%M:%S") for f in teas] == [
        "09:15:05", "09:30:05", "09:45:05", "10:00:05"]
    probe.advance(p.id, "finish", "liu_fang", at=t("2025-10-09T10:05"))
    assert deadline(probe, p.id, "tea")["status"] == "cancelled"
    assert [f for f in skip_to(probe, t("2025-10-09T12:00")) if f.name == "tea"] == []


def test_day_30_or_last_day_fires_on_february_28(probe, clock) -> None:  # type: ignore[no-untyped-def]
    p = probe.start("probe", "liu_fang", {}, at=t("2026-01-31T09:00"))
    assert deadline(probe, p.id, "monthly")["due"] == "2026-02-28T00:00:00+08:00"
    fired = [f.due.astimezone(SHANGHAI).date().isoformat() for f in skip_to(probe, t("2026-03-31T00:00"))
             if f.name == "monthly"]
    # The sweep was down from 02-28 to 03-31: each missed occurrence fires, at its own time.
    assert fired == ["2026-02-28", "2026-03-30"]
    fires = [e for e in probe.history(p.id) if e.type == "TimerFired" and '"name":"monthly"' in e.data_json]
    assert [e.occurred_at.astimezone(SHANGHAI).isoformat() for e in fires] == [
        "2026-02-28T00:00:00+08:00", "2026-03-30T00:00:00+08:00"]
    assert deadline(probe, p.id, "monthly")["due"] == "2026-04-30T00:00:00+08:00"


def test_breach_action_is_taken_by_the_engine_as_system(probe, clock) -> None:  # type: ignore[no-untyped-def]
    p = probe.start("probe", "liu_fang", {}, at=t("2025-10-09T09:00"))
    probe.advance(p.id, "run", "liu_fang", at=t("2025-10-09T09:00:05"))
    skip_to(probe, t("2025-10-09T11:00:05"))
    inst = probe.show(p.id)
    assert inst.state == "done" and inst.status == "completed"
    finish = [e for e in probe.history(p.id) if e.type == "ActionTaken" and "finish" in e.data_json]
    assert finish and finish[0].actor == "system"
    assert {d["name"]: d["status"] for d in probe.deadlines(p.id)}["tea"] == "cancelled"
    assert probe.replay(p.id).ok


def test_sweep_query_uses_the_due_time_index(probe) -> None:  # type: ignore[no-untyped-def]
    """The statement the sweep runs (seen through SQLAlchemy: a cursor listener takes it off
    the driver fast path, which runs the same compiled text) walks the partial index."""
    sent: list[tuple[str, Any]] = []
    sa.event.listen(probe.db, "before_cursor_execute", lambda _c, _cur, stmt, params, _ctx, _many:
                    sent.append((stmt, params)))
    with probe.read() as conn:
        timer_store.due(conn, datetime(2030, 1, 1, tzinfo=SHANGHAI), 200)
        sql, params = next((s, p) for s, p in sent if "FROM timers" in s)
        plan = " ".join(str(r) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))
    assert "ix_timers_next_fire" in plan and "SCAN timers" not in plan


# ------------------------------------------------------------------ durability

def test_worker_killed_between_claim_and_commit_fires_the_timer_exactly_once(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    env = {**os.environ, "SOP_DB": f"sqlite:///{db}"}
    sop = [sys.executable, "-c", "from cli import main; main()"]
    r = subprocess.run(sop + ["start", "complaint", "--as", "liu_fang", "--data", json.dumps(ORAL),
                              "--at", "2025-09-30T17:55:00+08:00"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    crash = subprocess.run(sop + ["tick", "--until", "2025-10-09T15:00:00+08:00"],
                           env={**env, "SOP_FAULT_CRASH_AFTER_CLAIM": "1"}, cwd=ROOT, capture_output=True, text=True)
    assert crash.returncode == 17  # died after claiming, before commit
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from events where type like 'Sla%' and type != 'SlaStarted'").fetchone()[0] == 0
        assert conn.execute("select count(*) from timers where next_fire_at is not null").fetchone()[0] == 1
    again = subprocess.run(sop + ["--json", "tick", "--until", "2025-10-09T15:00:00+08:00"], env=env, cwd=ROOT,
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert [f["name"] for f in json.loads(again.stdout)] == ["reply"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from events where type = 'SlaWarned'").fetchone()[0] == 1
    assert subprocess.run(sop + ["audit", "verify"], env=env, cwd=ROOT, capture_output=True).returncode == 0


def test_sla_report_counts_met_breached_open_with_compliance(engine, runner) -> None:  # type: ignore[no-untyped-def]
    from cli import main
    a = engine.start("complaint", "liu_fang", ORAL, at=t("2025-10-09T09:00"))
    b = engine.start("complaint", "liu_fang", ORAL, at=t("2025-10-09T09:05"))
    engine.start("complaint", "liu_fang", ORAL, at=t("2025-10-09T09:10"))
    engine.advance(a.id, "reply", "chen_jing", {"reply_method": "phone", "reply_summary": "好"}, at=t("2025-10-09T10:00"))
    engine.advance(b.id, "reply", "chen_jing", {"reply_method": "phone", "reply_summary": "好"}, at=t("2025-10-10T17:00"))
    r = runner.invoke(main, ["sla", "report", "--json", "--procedure", "complaint"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    total = next(x for x in rows if x["assignee"] is None)
    assert {k: total[k] for k in ("procedure", "sla", "met", "breached", "open", "compliance")} == {
        "procedure": "complaint", "sla": "reply", "met": 1, "breached": 1, "open": 1, "compliance": 50.0}
    assert any(x["assignee"] == "chen_jing" for x in rows)


def test_worker_sweeps_on_the_real_clock_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    import signal
    import time

    db = tmp_path / "worker.db"
    env = {**os.environ, "SOP_DB": f"sqlite:///{db}"}
    sop = [sys.executable, "-c", "from cli import main; main()"]
    # A complaint received long ago: its whole reply clock is overdue on the real clock.
    r = subprocess.run(sop + ["start", "complaint", "--as", "liu_fang", "--data", json.dumps(ORAL),
                              "--at", "2025-09-30T17:55:00+08:00"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    proc = subprocess.Popen(sop + ["worker", "--interval", "0.2"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline_at = time.monotonic() + 30
        breached = 0
        while time.monotonic() < deadline_at and not breached:  # bounded poll for a real process
            with sqlite3.connect(db) as conn:
                breached = conn.execute("select count(*) from events where type = 'SlaBreached'").fetchone()[0]
            time.sleep(0.1)
        assert breached == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped cleanly" in out


class _AlarmClock:
    """Stands in for APScheduler: records the one-off jobs the worker sets."""

    def __init__(self) -> None:
        self.jobs: list[dict] = []

    def add_job(self, func, trigger, **kw):  # type: ignore[no-untyped-def]
        self.jobs.append({"trigger": trigger, **kw})


def test_worker_sets_its_alarm_for_the_next_due_step_within_the_interval(engine, clock) -> None:  # type: ignore[no-untyped-def]
    from engine.runtime.worker import arm_next

    alarm = _AlarmClock()
    arm_next(alarm, engine, 60.0, lambda: None)
    assert alarm.jobs == []  # nothing pending: the interval alone
    c = engine.start("complaint", "liu_fang", ORAL, at=clock.now())
    first = min(x.next for x in engine.show(c.id).clocks.values() if x.next is not None)
    arm_next(alarm, engine, 60.0, lambda: None)
    assert alarm.jobs == []  # due hours away: the interval comes first
    clock.set(first - timedelta(seconds=20))
    before = datetime.now(first.tzinfo)
    arm_next(alarm, engine, 60.0, lambda: None)
    (job,) = alarm.jobs
    assert job["trigger"] == "date" and job["id"] == "sop-sweep-due" and job["replace_existing"]
    assert timedelta(seconds=19) <= job["run_date"] - before <= timedelta(seconds=21)
    clock.set(first + timedelta(seconds=1))
    arm_next(alarm, engine, 60.0, lambda: None)
    assert len(alarm.jobs) == 1  # already due (a step that failed stays due): no spinning on it


def test_sla_goal_cases_read_the_local_date_whatever_zone_the_time_was_given_in(probe) -> None:  # type: ignore[no-untyped-def]
    from datetime import timezone

    # 07:30 in Shanghai on 10-09 is 23:30 UTC on 10-08: "today" for the office is 10-09.
    at_utc = datetime(2025, 10, 8, 23, 30, tzinfo=timezone.utc)
    p = probe.start("probe", "liu_fang", {"starts_at": "2025-10-09T08:00:00+08:00"}, at=at_utc)
    assert deadline(probe, p.id, "same_day")["due"] == "2025-10-10T18:00:00+08:00"  # 1 workday, not 3 (10-13)


# ------------------------------------------------------------------ sweep batching

def _commits_of_tick(engine, until: datetime) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(steps fired, write transactions used) by one sweep up to ``until``."""
    commits = 0
    real = engine.transaction

    def counted():  # type: ignore[no-untyped-def]
        nonlocal commits
        commits += 1
        return real()

    engine.transaction = counted
    try:
        return len(engine.tick(until)), commits
    finally:
        del engine.transaction


def test_sweep_commits_fresh_steps_promptly_and_fills_batches_for_a_backlog(engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A step counts as fired when its batch commits: steps just due are committed within
    BATCH_SECONDS (here 0: one per commit), while a backlog overdue by more than
    BACKLOG_AFTER_S, which has waited anyway, fills batches of PER_COMMIT (here 10)."""
    from engine.runtime import sweep

    monkeypatch.setattr(sweep, "BATCH_SECONDS", 0.0)
    monkeypatch.setattr(sweep, "PER_COMMIT", 10)
    for k in range(12):
        engine.start("complaint", "liu_fang", {**ORAL, "unit": f"{k % 8 + 1}-1201"}, at=t("2025-09-30T17:55"))
    # At the breach instant the two warnings of each reply clock are hours overdue and the
    # breaches are due now. Earliest first: a batch whose first step is overdue fills to 10
    # (12 + 12 warnings, then 6 breaches with them: 3 batches), the 6 breaches left are fresh
    # (one per commit), and the last transaction finds nothing due.
    fired, commits = _commits_of_tick(engine, t("2025-10-09T17:55"))
    assert fired == 36 and commits == 3 + 6 + 1
    assert all(engine.replay(i).ok for i in range(1, 13))


def test_a_timer_over_several_states_keeps_running_between_them_and_ends_outside(probe, clock) -> None:  # type: ignore[no-untyped-def]
    p = probe.start("probe", "liu_fang", {}, at=t("2025-10-09T10:00"))
    assert deadline(probe, p.id, "nudge")["due"] == "2025-10-09T11:00:00+08:00"
    probe.advance(p.id, "hold", "liu_fang", at=t("2025-10-09T10:20"))          # waiting -> paused: same timer
    assert deadline(probe, p.id, "nudge") == {"name": "nudge", "kind": "timer", "due": "2025-10-09T11:00:00+08:00",
                                              "status": "open"}
    skip_to(probe, t("2025-10-09T12:30"))
    probe.advance(p.id, "resume", "liu_fang", at=t("2025-10-09T12:40"))        # paused -> waiting: still the same
    fired = [json.loads(e.data_json)["due"][11:16] for e in probe.history(p.id)
             if e.type == "TimerFired" and '"name":"nudge"' in e.data_json]
    assert fired == ["03:00", "04:00"]                                        # 11:00 and 12:00 in Shanghai, as UTC
    assert deadline(probe, p.id, "nudge")["due"] == "2025-10-09T13:00:00+08:00"
    probe.advance(p.id, "run", "liu_fang", at=t("2025-10-09T12:50"))           # out of both: cancelled
    assert deadline(probe, p.id, "nudge")["status"] == "cancelled"


def test_ren4_a_quota_judges_every_whole_workday_met_or_missed_and_acts_on_a_miss(probe, clock) -> None:  # type: ignore[no-untyped-def]
    p = probe.start("probe", "liu_fang", {}, at=t("2025-09-26T15:00"))          # Friday afternoon: not a whole day
    assert {k: deadline(probe, p.id, "checks")[k] for k in ("due", "count", "required")} == {
        "due": "2025-09-28T18:00:00+08:00", "count": 0, "required": 2}      # Sunday 09-28 is a make-up workday
    probe.advance(p.id, "check", "liu_fang", at=t("2025-09-26T16:00"))          # before the first judged period
    for at in ("2025-09-28T10:00", "2025-09-28T16:00", "2025-09-29T10:00"):     # 2 on Sunday, 1 on Monday
        probe.advance(p.id, "check", "liu_fang", at=t(at))
    skip_to(probe, t("2025-10-10T09:00"))  # a sweep after the holiday
    verdicts = [(json.loads(e.data_json)["period_start"][:10], json.loads(e.data_json)["result"])
                for e in probe.history(p.id) if e.type == "QuotaJudged"]
    # 09-28 met (2), 09-29 missed (1), 09-30 missed (0); the National Day days are not workdays; 10-09 missed.
    assert verdicts == [("2025-09-28", "met"), ("2025-09-29", "missed"), ("2025-09-30", "missed"),
                        ("2025-10-09", "missed")]
    assert len([n for n in probe.history(p.id) if n.type == "NotificationQueued" and "巡查不足" in n.data_json]) == 3
    view = deadline(probe, p.id, "checks")
    assert (view["met"], view["missed"], view["due"]) == (1, 3, "2025-10-10T18:00:00+08:00")
    probe.advance(p.id, "finish", "liu_fang", at=t("2025-10-10T09:30"))         # out of the state: ended
    assert deadline(probe, p.id, "checks")["status"] == "ended" and probe.replay(p.id).ok


def test_cmp7_an_overdue_clock_climbs_the_ladder_until_someone_acknowledges(probe, clock) -> None:  # type: ignore[no-untyped-def]
    def told(iid: int, words: str) -> list[tuple[str, list[str]]]:
        return [(e.occurred_at.astimezone(SHANGHAI).strftime("%m-%d %H:%M"), json.loads(e.data_json)["recipients"])
                for e in probe.history(iid) if e.type == "NotificationQueued" and words in e.data_json]

    late = probe.start("probe", "liu_fang", {}, at=t("2025-10-09T16:00"))          # callback due 17:00
    skip_to(probe, t("2025-10-13T12:00"))
    assert told(late.id, "回电超时 ") == [("10-09 17:00", ["li_qiang"])]              # the breach itself
    assert told(late.id, "30分钟") == [("10-09 17:30", ["zhang_hua"])]               # 30 minutes after it
    assert told(late.id, "2工作小时") == [("10-10 10:00", ["he_jun"])]               # 2 working hours after it
    after = probe.show(late.id)
    assert (after.assignee, after.assignee_role) == (None, "front_desk")              # the task stays where it was

    held = probe.start("probe", "liu_fang", {}, at=t("2025-10-13T13:00"))          # due 14:00
    skip_to(probe, t("2025-10-13T14:05"))
    with pytest.raises(NotAuthorized):
        probe.advance(held.id, "take_over", "liu_fang", at=t("2025-10-13T14:10"))
    probe.advance(held.id, "take_over", "li_qiang", at=t("2025-10-13T14:10"))
    skip_to(probe, t("2025-10-20T09:00"))
    assert told(held.id, "回电超时") == [("10-13 14:00", ["li_qiang"])]               # nobody above was told
    ack = [json.loads(e.data_json) for e in probe.history(held.id) if e.type == "SlaAcknowledged"]
    assert [(a["by"], a["clock"]["acknowledged_by"]) for a in ack] == [("li_qiang", "li_qiang")]
    assert probe.replay(held.id).ok
    with pytest.raises(ActionNotAllowed, match="no escalation to acknowledge"):
        probe.advance(held.id, "take_over", "li_qiang", at=t("2025-10-20T09:05"))
