"""The storage contract, one test body per rule, run on every backend (SQLite and PostgreSQL).

Commands, the event log and its projection, revisions and conflicts, replay and the hash
chain, timers (due, claim, fire exactly once) and the sweep, the outbox claim, and the CLI
against the database URL. The PostgreSQL runs use a fresh migrated database of a
throwaway server (tests/pg.py) and are skipped, with the reason, where none can be started.
"""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from engine.errors import ConcurrencyConflict, NotAuthorized
from engine.store import outbox as outbox_store
from engine.store import instances as instance_store
from engine.store import versions as version_store
from engine.store import timers as timer_store
from tests.conftest import ROOT, SHANGHAI

BACKENDS = ["sqlite", "postgresql"]
COMPLAINT = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
             "content": "楼上漏水", "anonymous": False}
ANONYMOUS = {"channel": "online", "content": "电梯经常停运", "anonymous": True}
REPLY = {"reply_method": "phone", "reply_summary": "已安排工程部上门维修"}


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:  # overrides conftest's: every backend
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sop.db'}"
    return str(request.getfixturevalue("pg_url"))


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def other_engine(engine):  # type: ignore[no-untyped-def]
    """A second process's view of the same database: its own connection pool (same definitions)."""
    from engine.runtime.service import Engine

    return Engine(engine.store_url, engine.library, engine.org, engine.clock, engine.calendar)


def in_threads(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in n threads released together; results or raised exceptions, by i."""
    out: list[Any] = [None] * n
    gate = threading.Barrier(n)

    def run(i: int) -> None:
        gate.wait()
        try:
            out[i] = work(i)
        except Exception as e:  # collected for the test to judge
            out[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    return out


def event_count(engine, iid: int) -> int:  # type: ignore[no-untyped-def]
    return len(engine.history(iid))


# ------------------------------------------------------------------ commands and the log

def test_start_advance_and_spawn_append_contiguous_events_and_replay_equals_state(engine) -> None:  # type: ignore[no-untyped-def]
    c = engine.start("complaint", "liu_fang", COMPLAINT, at=t("2025-09-30T17:55"))
    assert (c.id, c.revision, c.assignee) == (1, len(engine.history(c.id)), "chen_jing")
    engine.advance(c.id, "investigate", "chen_jing", at=t("2025-09-30T18:00"))
    engine.advance(c.id, "reply", "chen_jing", REPLY, at=t("2025-10-09T10:00"))
    done = engine.advance(c.id, "resolve", "chen_jing", {"handling_result": "已修复"}, at=t("2025-10-09T11:00"))
    shown = engine.show(c.id)
    assert shown.state == done.state == "resolved" and shown.revision == done.revision
    assert len(shown.children) == 1
    child = engine.show(shown.children[0])
    assert child.procedure == "callback" and child.parent_id == c.id
    events = engine.history(c.id)
    assert [e.seq for e in events] == list(range(1, shown.revision + 1))
    assert all(e.occurred_at.tzinfo is not None and e.recorded_at.tzinfo is not None for e in events)
    assert engine.replay(c.id).ok and engine.replay(child.id).ok
    assert engine.verify() == (2, len(events) + len(engine.history(child.id)), None)


def test_times_come_back_as_the_same_aware_instants_to_the_microsecond(engine) -> None:  # type: ignore[no-untyped-def]
    at = datetime(2025, 10, 9, 17, 55, 1, 123456, tzinfo=SHANGHAI)
    c = engine.start("complaint", "liu_fang", COMPLAINT, at=at)
    shown = engine.show(c.id)
    assert shown.started_at == at and shown.started_at.utcoffset() == timedelta(0)
    assert engine.history(c.id)[0].occurred_at == at
    due = next(d for d in engine.deadlines(c.id) if d["name"] == "reply")["due"]
    assert due == "2025-10-10T17:55:01.123456+08:00"


def test_record_changes_data_and_each_event_raises_the_revision_by_one(engine) -> None:  # type: ignore[no-untyped-def]
    c = engine.start("complaint", "liu_fang", COMPLAINT, at=t("2025-10-09T09:00"))
    after = engine.record(c.id, "chen_jing", {"priority": "high"}, at=t("2025-10-09T09:10"))
    assert after.data["priority"] == "high" and after.revision == c.revision + 1
    assert engine.show(c.id).data["priority"] == "high"
    assert engine.history(c.id)[-1].type == "DataRecorded"


def test_claim_from_the_role_queue_then_reassign_by_a_supervisor(engine) -> None:  # type: ignore[no-untyped-def]
    c = engine.start("complaint", "liu_fang", ANONYMOUS, at=t("2025-10-09T09:00"))
    assert c.assignee is None and c.assignee_role == "cs_supervisor"
    assert [i.id for i in engine.tasks(role="cs_supervisor")] == [c.id]
    claimed = engine.claim(c.id, "li_qiang", at=t("2025-10-09T09:05"))
    assert claimed.assignee == "li_qiang"
    moved = engine.assign(c.id, "chen_jing", "li_qiang", at=t("2025-10-09T09:06"))
    assert moved.assignee == "chen_jing" and [i.id for i in engine.tasks(staff="chen_jing")] == [c.id]
    assert engine.replay(c.id).ok


def test_a_refused_command_writes_nothing(engine) -> None:  # type: ignore[no-untyped-def]
    c = engine.start("complaint", "liu_fang", COMPLAINT, at=t("2025-10-09T09:00"))
    with pytest.raises(NotAuthorized):
        engine.advance(c.id, "reply", "liu_fang", REPLY, at=t("2025-10-09T10:00"))  # not her task
    assert event_count(engine, c.id) == c.revision and engine.show(c.id).revision == c.revision


# ------------------------------------------------------------------ revisions and conflicts

def test_a_stale_writer_loses_and_writes_nothing(engine, clock) -> None:  # type: ignore[no-untyped-def]
    """Two writers decided on the same revision: the first append wins, the second conflicts."""
    c = engine.start("complaint", "liu_fang", COMPLAINT, at=t("2025-10-09T09:00"))
    with engine.read() as conn:
        before = instance_store.load_instance(conn, c.id)
    first = engine.record(c.id, "chen_jing", {"priority": "high"}, at=t("2025-10-09T09:10"))
    from engine.core.model import Event

    stale = [Event("DataRecorded", "chen_jing", "steward", t("2025-10-09T09:11"), {"changes": {"level": "director"}})]
    other = other_engine(engine)
    with pytest.raises(ConcurrencyConflict):
        with other.transaction() as conn:
            other.store.append(conn, before, stale, before.with_(data={**before.data, "level": "director"}), clock.now())
    shown = engine.show(c.id)
    assert shown.revision == first.revision and shown.data["level"] == "steward"
    assert event_count(engine, c.id) == first.revision and engine.verify()[2] is None


def test_expected_revision_lets_exactly_one_of_two_engines_win(engine, clock) -> None:  # type: ignore[no-untyped-def]
    c = engine.start("complaint", "liu_fang", COMPLAINT, at=t("2025-10-09T09:00"))
    engines = [engine, other_engine(engine)]
    results = in_threads(2, lambda i: engines[i].record(c.id, "chen_jing", {"priority": ["high", "normal"][i]},
                                                        at=t("2025-10-09T09:10"), expected_revision=c.revision))
    wins = [r for r in results if not isinstance(r, Exception)]
    assert len(wins) == 1 and all(isinstance(r, ConcurrencyConflict) for r in results if r not in wins), results
    shown = engine.show(c.id)
    assert shown.revision == c.revision + 1 == wins[0].revision
    assert shown.data["priority"] == wins[0].data["priority"] and engine.replay(c.id).ok


def test_concurrent_writers_on_one_instance_lose_no_update(engine, clock) -> None:  # type: ignore[no-untyped-def]
    """Four engines record at once on one instance: each either lands whole or conflicts."""
    c = engine.start("complaint", "liu_fang", COMPLAINT, at=t("2025-10-09T09:00"))
    engines = [other_engine(engine) for _ in range(4)]

    def work(i: int) -> Any:
        for _ in range(20):  # retry a conflict like a client would
            try:
                return engines[i].record(c.id, "chen_jing", {"owner_name": f"writer-{i}"}, at=t("2025-10-09T09:10"))
            except ConcurrencyConflict:
                continue
        raise AssertionError("no progress")

    results = in_threads(4, work)
    assert not [r for r in results if isinstance(r, BaseException)], results
    events = engine.history(c.id)
    changes = [json.loads(e.data_json)["changes"] for e in events if e.type == "DataRecorded"]
    recorded = [c["owner_name"] for c in changes if "owner_name" in c]
    assert sorted(recorded) == [f"writer-{i}" for i in range(4)]  # every write is in the log, once
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert engine.show(c.id).revision == c.revision + 4 and engine.replay(c.id).ok and engine.verify()[2] is None


def test_first_use_of_a_version_by_several_engines_at_once_is_stored_once(engine) -> None:  # type: ignore[no-untyped-def]
    engines = [other_engine(engine) for _ in range(3)]
    results = in_threads(3, lambda i: engines[i].start("complaint", "liu_fang", COMPLAINT, at=t("2025-10-09T09:00")))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(r.id for r in results) == [1, 2, 3]
    with engines[0].read() as conn:
        assert [v.procedure for v in version_store.list_versions(conn)] == ["complaint"]


# ------------------------------------------------------------------ audit

def test_verify_names_the_first_altered_event(engine) -> None:  # type: ignore[no-untyped-def]
    c = engine.start("complaint", "liu_fang", COMPLAINT, at=t("2025-10-09T09:00"))
    engine.advance(c.id, "investigate", "chen_jing", at=t("2025-10-09T09:30"))
    assert engine.verify()[2] is None
    with engine.transaction() as conn:
        conn.execute(sa.text("UPDATE events SET data = :d WHERE instance_id = :i AND seq = 2"),
                     {"d": '{"assignee":"someone_else"}', "i": c.id})
    broken = engine.verify()[2]
    assert broken is not None and (broken.instance_id, broken.seq) == (c.id, 2)


def test_replay_reports_a_projection_that_disagrees_with_the_log(engine) -> None:  # type: ignore[no-untyped-def]
    c = engine.start("complaint", "liu_fang", COMPLAINT, at=t("2025-10-09T09:00"))
    with engine.transaction() as conn:
        conn.execute(sa.text("UPDATE instances SET state = 'closed' WHERE id = :i"), {"i": c.id})
    result = engine.replay(c.id)
    assert not result.ok and "state" in (result.difference or "")


# ------------------------------------------------------------------ timers and the sweep

def test_timers_come_due_by_index_claim_once_and_fire_once(engine, clock) -> None:  # type: ignore[no-untyped-def]
    c = engine.start("complaint", "liu_fang", COMPLAINT, at=t("2025-10-09T09:00"))
    with engine.read() as conn:
        assert timer_store.due(conn, t("2025-10-09T09:30"), 10) == []
        (row,) = timer_store.due(conn, t("2025-10-10T09:00"), 10)
    assert (row.instance_id, row.name) == (c.id, "reply") and row.next_fire_at.tzinfo is not None
    with engine.transaction() as conn:
        assert timer_store.claim(conn, row.instance_id, row.name, row.next_fire_at)
        assert not timer_store.claim(conn, row.instance_id, row.name, row.next_fire_at)  # already claimed
        conn.rollback()  # the claim goes with the transaction: still due afterwards
    with engine.read() as conn:
        assert len(timer_store.due(conn, t("2025-10-10T09:00"), 10)) == 1
    clock.set(t("2025-10-10T12:00"))  # every reply SLA warned twice and breached
    fired = engine.tick(clock.now())
    assert [(f.name, f.kind) for f in fired] == [("reply", "warned"), ("reply", "warned"), ("reply", "breached")]
    assert engine.tick(clock.now()) == []
    types = [e.type for e in engine.history(c.id)]
    assert types.count("SlaWarned") == 2 and types.count("SlaBreached") == 1
    with engine.read() as conn:
        assert timer_store.pending_count(conn) == 0


def test_tick_with_a_limit_leaves_the_rest_due(engine, clock) -> None:  # type: ignore[no-untyped-def]
    for minute in range(5):
        engine.start("complaint", "liu_fang", COMPLAINT, at=t(f"2025-10-09T09:0{minute}"))
    clock.set(t("2025-10-10T12:00"))  # every reply SLA warned twice and breached
    assert len(engine.tick(clock.now(), limit=4)) == 4
    assert len(engine.tick(clock.now())) == 15 - 4
    assert engine.verify()[2] is None


def test_one_broken_instance_is_skipped_and_the_sweep_fires_the_rest(engine, clock) -> None:  # type: ignore[no-untyped-def]
    ids = [engine.start("complaint", "liu_fang", COMPLAINT, at=t("2025-10-09T09:00") + timedelta(seconds=i)).id
           for i in range(3)]
    with engine.transaction() as conn:  # its pinned version is gone: firing it is refused
        conn.execute(sa.text("UPDATE instances SET version = 'missing' WHERE id = :i"), {"i": ids[1]})
    clock.set(t("2025-10-10T12:00"))
    fired = engine.tick(clock.now())
    assert sorted({f.instance_id for f in fired}) == [ids[0], ids[2]] and len(fired) == 6
    with engine.read() as conn:
        assert [(r.instance_id, r.name) for r in timer_store.due(conn, clock.now(), 10)] == [(ids[1], "reply")]
    assert "SlaWarned" not in [e.type for e in engine.history(ids[1])]


def test_broken_instances_filling_a_whole_read_do_not_starve_the_steps_behind_them(engine, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from engine.runtime import sweep

    monkeypatch.setattr(sweep, "PER_COMMIT", 2)  # the two broken instances' steps fill a batch
    ids = [engine.start("complaint", "liu_fang", COMPLAINT, at=t("2025-10-09T09:00") + timedelta(seconds=i)).id
           for i in range(3)]
    with engine.transaction() as conn:  # the two earliest cannot be fired
        conn.execute(sa.text("UPDATE instances SET version = 'missing' WHERE id IN (:a, :b)"),
                     {"a": ids[0], "b": ids[1]})
    clock.set(t("2025-10-10T12:00"))
    fired = engine.tick(clock.now())
    assert [f.instance_id for f in fired] == [ids[2]] * 3  # two warnings and the breach
    with engine.read() as conn:
        assert {r.instance_id for r in timer_store.due(conn, clock.now(), 10)} == {ids[0], ids[1]}


def test_two_sweepers_at_once_fire_every_step_exactly_once(engine, clock) -> None:  # type: ignore[no-untyped-def]
    ids = [engine.start("complaint", "liu_fang", COMPLAINT, at=t("2025-10-09T09:00") + timedelta(seconds=i)).id
           for i in range(12)]
    clock.set(t("2025-10-10T12:00"))  # every reply SLA warned twice and breached
    sweepers = [other_engine(engine) for _ in range(3)]
    results = in_threads(3, lambda i: sweepers[i].tick(clock.now()))
    assert not [r for r in results if isinstance(r, Exception)], results
    fired = sorted((f.instance_id, f.name, f.due) for r in results for f in r)
    assert len(fired) == len(set(fired)) == 3 * len(ids)
    for iid in ids:
        clocks = [json.loads(e.data_json) for e in engine.history(iid) if e.type in ("SlaWarned", "SlaBreached")]
        assert len(clocks) == 3
    assert engine.verify()[2] is None


def test_a_writer_catches_up_due_steps_a_sweeper_is_not_firing_twice(engine, clock) -> None:  # type: ignore[no-untyped-def]
    c = engine.start("complaint", "liu_fang", COMPLAINT, at=t("2025-10-09T09:00"))
    engine.advance(c.id, "reply", "chen_jing", REPLY, at=t("2025-10-09T18:30"))  # late: fires the steps itself
    clock.set(t("2025-10-10T09:00"))
    assert other_engine(engine).tick(clock.now()) == []
    types = [e.type for e in engine.history(c.id)]
    assert types.count("SlaBreached") == 1 and engine.replay(c.id).ok


# ------------------------------------------------------------------ outbox claim

def test_outbox_rows_are_claimed_by_one_dispatcher_at_a_time(engine, clock) -> None:  # type: ignore[no-untyped-def]
    engine.start("complaint", "liu_fang", COMPLAINT, at=t("2025-10-09T09:00"))
    clock.set(t("2025-10-10T12:00"))  # every reply SLA warned twice and breached
    engine.tick(clock.now())  # warnings and the breach queue notifications
    with engine.read() as conn:
        queued = sum(outbox_store.counts(conn).values())
    assert queued >= 3
    other = other_engine(engine)
    now, lease = clock.now(), clock.now() + timedelta(minutes=5)
    with engine.transaction() as first:
        a = outbox_store.claim_due(first, now, lease, 2)
        if engine.db.dialect.name == "postgresql":  # a second dispatcher meanwhile skips the held rows
            with other.transaction() as second:
                b = outbox_store.claim_due(second, now, lease, 100)
        else:
            b = []
    with other.transaction() as conn:
        b += outbox_store.claim_due(conn, now, lease, 100)
    assert len(a) == 2 and len(a) + len(b) == queued
    assert not {c.id for c in a} & {c.id for c in b}
    with engine.transaction() as conn:
        assert outbox_store.claim_due(conn, now, lease, 100) == []  # all leased


# ------------------------------------------------------------------ the CLI on this database

def test_every_cli_command_works_against_the_database_url(runner, db_url) -> None:  # type: ignore[no-untyped-def]
    from cli import main

    def sop(*args: str) -> Any:
        r = runner.invoke(main, ["--db", db_url, "--json", *args])
        assert r.exit_code == 0, (args, r.output)
        return json.loads(r.stdout) if r.stdout.strip() else None

    assert sop("db", "upgrade")["to"] == sop("db", "current")["head"]
    inst = sop("start", "complaint", "--as", "liu_fang", "--data", json.dumps(COMPLAINT),
               "--at", "2025-09-30T17:55:00+08:00")
    iid = str(inst["id"])
    sop("advance", iid, "investigate", "--as", "chen_jing", "--at", "2025-09-30T18:00:00+08:00")
    sop("record", iid, "--as", "chen_jing", "--data", '{"priority":"high"}', "--at", "2025-09-30T18:01:00+08:00")
    assert [x["id"] for x in sop("tasks", "--as", "chen_jing")] == [inst["id"]]
    fired = sop("tick", "--until", "2025-10-09T18:00:00+08:00")
    assert [f["name"] for f in fired] == ["reply", "reply", "reply"]
    assert sop("show", iid)["state"] == "investigating"
    assert len(sop("history", iid)) >= 6
    sop("replay", iid)
    sop("audit", "verify")
    sop("sla", "report")


def test_phn6_two_importers_of_the_same_record_at_once_create_one_instance(engine) -> None:  # type: ignore[no-untyped-def]
    """Importing one call record from two processes at the same moment: one instance, no error."""
    engines = [other_engine(engine) for _ in range(4)]
    results = in_threads(4, lambda i: engines[i].start("complaint", "liu_fang", COMPLAINT, at=t("2025-10-09T09:00"),
                                                       external_key="call:CDR-0001"))
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert len({r.id for r in results}) == 1
    assert engine.verify()[0] == 1 and engine.replay(results[0].id).ok


def test_calendar_repair_and_scheduled_reports_on_every_backend(engine, db_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The time work of issue 11 on both backends: a provisional deadline repaired with one
    event when the year is added; the dunning daily report sent once, whoever sweeps."""
    from engine.calendar import WorkCalendar
    from engine.runtime.calendar_repair import repair_all
    from engine.runtime.reports import send_due

    c = engine.start("complaint", "liu_fang", {**COMPLAINT, "channel": "letter"}, at=t("2026-12-30T10:00"))
    assert next(d for d in engine.deadlines(c.id) if d["name"] == "reply")["provisional"] is True
    notice = tmp_path / "calendar.yaml"
    notice.write_text('years:\n  2027:\n    holidays: ["2027-01-01..2027-01-04"]\n', encoding="utf-8")
    engine.calendar = WorkCalendar.from_file(notice)
    [moved] = repair_all(engine, t("2026-12-30T12:00"))
    assert (moved.instance_id, moved.name) == (c.id, "reply")
    assert repair_all(other_engine(engine), t("2026-12-30T12:05")) == []
    assert engine.replay(c.id).ok and engine.verify()[2] is None

    case = engine.start("dunning", "li_qiang", {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678",
                        "period": "2025-09", "amount_due": "1280.00",
                        "notices_posted_at": t("2025-09-22T09:00").isoformat()}, at=t("2025-09-22T09:00"))
    engine.advance(case.id, "enter_ledger", "li_qiang", at=t("2025-09-29T09:00"))
    at = t("2025-09-29T17:31")
    sent = send_due(engine, at) + send_due(other_engine(engine), at)
    assert [(s.report, s.listed) for s in sent if s.report == "daily_review"] == [("daily_review", 1)]
