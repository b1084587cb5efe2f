"""Every refusal of the engine API, and the promise behind each: nothing is written.

"Nothing is written" is checked on the database itself: :func:`tables` reads every row of
every table with the sqlite3 module, before and after the refused command. Commands run in
one transaction each; a failure at any point of it (proven with a change hook that raises)
leaves no event, no projection change, no outbox row, no child and no version snapshot.
"""
from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import pytest

from engine.errors import (ActionNotAllowed, ConcurrencyConflict, EngineError, FormInvalid, InputError,
                           InstanceNotFound, NotAuthorized, StaffNotFound, StoreBusy, TimeOrderError)
from engine.runtime.config import Settings, build_engine

from conftest import SHANGHAI

NAMED = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
         "content": "楼上漏水", "anonymous": False}
REPLY = {"reply_method": "phone", "reply_summary": "已安排维修"}
T0 = datetime(2025, 9, 30, 9, 0, tzinfo=SHANGHAI)

def tables(engine: Any) -> dict[str, list[tuple]]:
    """Every row of every table, read straight from the SQLite file."""
    path = engine.store_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as con:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {n: sorted(con.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}


def refused(engine: Any, exc: type, command: Callable[[], Any]) -> EngineError:
    before = tables(engine)
    with pytest.raises(exc) as e:
        command()
    assert tables(engine) == before, "a refused command wrote to the database"
    assert str(e.value) and "\n" not in str(e.value)
    return e.value


@pytest.fixture
def complaint(engine, clock):  # type: ignore[no-untyped-def]
    clock.set(T0)
    return engine.start("complaint", "liu_fang", NAMED)


def later(clock: Any, minutes: int = 5) -> datetime:
    return clock.advance(timedelta(minutes=minutes))


# ------------------------------------------------------------------ who may act

def test_start_by_someone_without_a_start_role_is_refused(engine) -> None:  # type: ignore[no-untyped-def]
    err = refused(engine, NotAuthorized, lambda: engine.start("complaint", "wu_gang", NAMED))
    assert str(err) == ("wu_gang may not start complaint: needs one of the roles "
                        "front_desk, steward, cs_supervisor, office_director")
    assert (err.staff_id, err.allowed_roles) == ("wu_gang", ["front_desk", "steward", "cs_supervisor",
                                                             "office_director"])


def test_action_by_someone_without_the_role_is_refused_and_changes_nothing(engine, complaint, clock) -> None:  # type: ignore[no-untyped-def]
    later(clock)
    err = refused(engine, NotAuthorized, lambda: engine.advance(complaint.id, "investigate", "wu_gang"))
    assert str(err) == "wu_gang may not take 'investigate': needs one of the roles steward, cs_supervisor, office_director"
    assert engine.show(complaint.id).revision == complaint.revision


def test_unknown_staff_is_refused(engine, complaint) -> None:  # type: ignore[no-untyped-def]
    err = refused(engine, StaffNotFound, lambda: engine.advance(complaint.id, "investigate", "nobody"))
    assert str(err) == "staff 'nobody' is not in the organisation file"
    refused(engine, StaffNotFound, lambda: engine.start("complaint", "nobody", NAMED))


def test_unknown_instance_and_procedure_are_refused(engine) -> None:  # type: ignore[no-untyped-def]
    assert str(refused(engine, InstanceNotFound, lambda: engine.advance(99, "investigate", "chen_jing"))) == \
        "instance 99 not found"
    refused(engine, InstanceNotFound, lambda: engine.show(99))
    refused(engine, InstanceNotFound, lambda: engine.history(99))
    err = refused(engine, InputError, lambda: engine.start("complain", "liu_fang", NAMED))
    assert "unknown procedure 'complain'; known: " in str(err)


def test_an_action_not_available_in_this_state_is_refused_naming_what_is(engine, complaint) -> None:  # type: ignore[no-untyped-def]
    err = refused(engine, ActionNotAllowed, lambda: engine.advance(complaint.id, "check_effect", "li_qiang",
                                                                   {"effective": True}))
    assert err.reason.startswith("not available in state 'received'; available: investigate, record_findings")
    err = refused(engine, ActionNotAllowed, lambda: engine.advance(complaint.id, "fly", "chen_jing"))
    assert err.reason.startswith("complaint has no such action; available in 'received': investigate")


def test_a_false_guard_is_refused_with_the_procedures_own_words(engine, complaint) -> None:  # type: ignore[no-untyped-def]
    err = refused(engine, ActionNotAllowed, lambda: engine.advance(
        complaint.id, "reply", "chen_jing", {**REPLY, "commitment": "赔偿"}))
    assert str(err) == "action 'reply' not allowed: 超出权限的承诺须先请示上级并获同意（CMP-8）"


def test_cmp3_a_letter_complaint_is_answered_in_writing_not_by_phone(engine) -> None:  # type: ignore[no-untyped-def]
    letter = engine.start("complaint", "liu_fang", {**NAMED, "channel": "letter"})
    err = refused(engine, ActionNotAllowed, lambda: engine.advance(letter.id, "reply", "chen_jing", REPLY))
    assert str(err) == "action 'reply' not allowed: 来函投诉须书面回函答复（CMP-3），电话或面谈不算答复"
    assert next(d for d in engine.deadlines(letter.id) if d["name"] == "reply")["status"] == "open"
    done = engine.advance(letter.id, "reply", "chen_jing", {**REPLY, "reply_method": "letter"})
    assert next(d for d in engine.deadlines(done.id) if d["name"] == "reply")["status"] == "met"


def test_a_completed_instance_accepts_nothing(engine, clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(T0)
    c = engine.start("complaint", "zhou_min", {"channel": "letter", "content": "噪音", "anonymous": True})
    for action, data in (("reply", {**REPLY, "reply_method": "letter"}), ("resolve", {"handling_result": "已处理"}), ("check_effect",
                                                                                        {"effective": True})):
        c = engine.advance(c.id, action, "li_qiang", data, at=later(clock))
    assert c.status == "completed"
    for command in (lambda: engine.advance(c.id, "report_important", "li_qiang"),
                    lambda: engine.record(c.id, "li_qiang", {"content": "补充"}),
                    lambda: engine.claim(c.id, "li_qiang"),
                    lambda: engine.assign(c.id, "chen_jing", "li_qiang")):
        err = refused(engine, ActionNotAllowed, command)
        assert err.reason == f"instance {c.id} is completed"


# ------------------------------------------------------------------ form data

@pytest.mark.parametrize("data, expected", [
    ({**NAMED, "channel": "fax"}, [("channel", "Input should be 'phone', 'visit', 'letter' or 'online'")]),
    ({k: v for k, v in NAMED.items() if k != "content"}, [("content", "required")]),
    ({**NAMED, "colour": "red"}, [("colour", "unknown field")]),
    ({**NAMED, "contact": "12345"}, [("contact", "not a valid value ('12345')")]),
    ({**NAMED, "unit": "三栋1201"}, [("unit", "not a valid value ('三栋1201')")]),
    ({**NAMED, "repeat_of": 0}, [("repeat_of", "Input should be greater than or equal to 1")]),
    ({**NAMED, "repeat_of": "first"},
     [("repeat_of", "Input should be a valid integer, unable to parse string as an integer")]),
    ({**NAMED, "anonymous": "maybe"}, [("anonymous", "Input should be a valid boolean, unable to interpret input")]),
    ({**NAMED, "content": "   "}, [("content", "String should have at least 1 character")]),
    ({**NAMED, "owner_name": "王" * 51}, [("owner_name", "String should have at most 50 characters")]),
])
def test_bad_form_data_is_refused_with_field_and_reason(engine, data, expected) -> None:  # type: ignore[no-untyped-def]
    err = refused(engine, FormInvalid, lambda: engine.start("complaint", "liu_fang", data))
    assert err.form == "complaint_intake"
    assert [(f.field, f.reason) for f in err.errors] == expected
    assert str(err) == "form complaint_intake: " + "; ".join(f"{f}: {r}" for f, r in expected)


def test_every_bad_field_is_reported_at_once(engine) -> None:  # type: ignore[no-untyped-def]
    err = refused(engine, FormInvalid, lambda: engine.start("complaint", "liu_fang",
                                                           {"channel": "fax", "contact": "1", "extra": 1}))
    assert {f.field for f in err.errors} == {"channel", "contact", "content", "extra"}


def test_a_datetime_without_offset_is_refused(engine, complaint) -> None:  # type: ignore[no-untyped-def]
    err = refused(engine, FormInvalid, lambda: engine.advance(complaint.id, "interim_reply", "chen_jing", {
        "interim_message": "跟进中", "next_reply_at": "2025-10-01T10:00:00"}))
    assert [(f.field, f.reason) for f in err.errors] == [("next_reply_at", "Input should have timezone info")]


def test_data_for_a_step_without_a_form_is_refused(engine, complaint) -> None:  # type: ignore[no-untyped-def]
    err = refused(engine, FormInvalid, lambda: engine.advance(complaint.id, "investigate", "chen_jing",
                                                             {"note": "x"}))
    assert [(f.field, f.reason) for f in err.errors] == [("note", "this step takes no data")]


def test_record_refuses_unknown_fields_empty_data_bad_values_and_outsiders(engine, complaint, clock) -> None:  # type: ignore[no-untyped-def]
    later(clock)
    err = refused(engine, FormInvalid, lambda: engine.record(complaint.id, "chen_jing", {"mood": "angry"}))
    assert [(f.field, f.reason) for f in err.errors] == [("mood", "unknown field of complaint")]
    refused(engine, FormInvalid, lambda: engine.record(complaint.id, "chen_jing", {}))
    refused(engine, FormInvalid, lambda: engine.record(complaint.id, "chen_jing", {"contact": "nope"}))
    refused(engine, NotAuthorized, lambda: engine.record(complaint.id, "lin_cai", {"contact": "13900000000"}))
    c = engine.record(complaint.id, "chen_jing", {"contact": "13900000000"})
    assert c.data["contact"] == "13900000000"


def test_cmp8_record_cannot_forge_the_superior_decision(engine, complaint, clock) -> None:  # type: ignore[no-untyped-def]
    later(clock)
    refused(engine, (NotAuthorized, FormInvalid),
            lambda: engine.record(complaint.id, "chen_jing", {"superior_decision": "approved"}))


def test_system_is_not_a_login(engine) -> None:  # type: ignore[no-untyped-def]
    refused(engine, (StaffNotFound, NotAuthorized), lambda: engine.start("complaint", "system", NAMED))


# ------------------------------------------------------------------ claim and assign

def test_claim_refusals(engine, clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(T0)
    c = engine.start("complaint", "zhou_min", {"channel": "letter", "content": "噪音", "anonymous": True})
    assert (c.assignee, c.assignee_role) == (None, "cs_supervisor")
    err = refused(engine, NotAuthorized, lambda: engine.claim(c.id, "chen_jing"))
    assert err.allowed_roles == ["cs_supervisor"]
    c = engine.claim(c.id, "li_qiang", at=later(clock))
    assert refused(engine, ActionNotAllowed, lambda: engine.claim(c.id, "li_qiang")).reason == \
        f"instance {c.id} is already assigned to you"
    named = engine.start("complaint", "liu_fang", NAMED, at=later(clock))
    assert refused(engine, ActionNotAllowed, lambda: engine.claim(named.id, "wang_li")).reason == \
        f"instance {named.id} is assigned to chen_jing; ask a supervisor to reassign it"


def test_assign_refusals(engine, complaint, clock) -> None:  # type: ignore[no-untyped-def]
    refused(engine, NotAuthorized, lambda: engine.assign(complaint.id, "wang_li", "chen_jing"))
    refused(engine, StaffNotFound, lambda: engine.assign(complaint.id, "nobody", "li_qiang"))
    c = engine.assign(complaint.id, "wang_li", "li_qiang", at=later(clock))
    assert (c.assignee, c.assignee_role) == ("wang_li", "steward")
    # the reassignment, then the steward it moved away from keeps watching (issue 14)
    assert [e.type for e in engine.history(c.id)[-2:]] == ["Assigned", "WatcherAdded"]


def test_assign_to_someone_who_cannot_act_is_refused(engine, complaint, clock) -> None:  # type: ignore[no-untyped-def]
    later(clock)
    refused(engine, (NotAuthorized, ActionNotAllowed), lambda: engine.assign(complaint.id, "lin_cai", "li_qiang"))


# ------------------------------------------------------------------ concurrency and time

def test_a_stale_revision_is_refused_and_nothing_written(engine, complaint, clock) -> None:  # type: ignore[no-untyped-def]
    seen = complaint.revision
    engine.advance(complaint.id, "investigate", "chen_jing", at=later(clock), expected_revision=seen)
    err = refused(engine, ConcurrencyConflict, lambda: engine.advance(
        complaint.id, "reply", "chen_jing", REPLY, at=later(clock), expected_revision=seen))
    now = engine.show(complaint.id).revision
    assert str(err) == (f"instance {complaint.id} was changed by someone else since revision {seen} "
                        f"(now at revision {now}); reload it and try again")
    for command in (lambda: engine.record(complaint.id, "chen_jing", {"contact": "13900000000"}, expected_revision=seen),
                    lambda: engine.claim(complaint.id, "li_qiang", expected_revision=seen),
                    lambda: engine.assign(complaint.id, "wang_li", "li_qiang", expected_revision=seen)):
        refused(engine, ConcurrencyConflict, command)


def test_two_writers_at_the_same_revision_one_wins_the_other_is_refused(settings, clock) -> None:  # type: ignore[no-untyped-def]
    clock.set(T0)
    first = build_engine(settings, clock)
    second = build_engine(settings, clock)          # another process on the same database
    c = first.start("complaint", "liu_fang", NAMED)
    clock.advance(timedelta(minutes=5))
    barrier, results = threading.Barrier(2), {}

    def take(name: str, eng: Any, action: str, data: dict) -> None:
        barrier.wait()
        try:
            results[name] = eng.advance(c.id, action, "chen_jing", data, expected_revision=c.revision).state
        except ConcurrencyConflict as e:
            results[name] = e

    threads = [threading.Thread(target=take, args=("a", first, "investigate", {})),
               threading.Thread(target=take, args=("b", second, "reply", REPLY))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    outcomes = sorted(results.values(), key=lambda v: isinstance(v, ConcurrencyConflict))
    assert outcomes[0] in ("investigating", "replied")
    assert isinstance(outcomes[1], ConcurrencyConflict)
    actions = [e for e in first.history(c.id) if e.type == "ActionTaken"]
    assert len(actions) == 1
    assert first.replay(c.id).ok and first.verify()[2] is None


def test_a_time_earlier_than_the_last_event_is_refused(engine, complaint) -> None:  # type: ignore[no-untyped-def]
    err = refused(engine, TimeOrderError, lambda: engine.advance(
        complaint.id, "investigate", "chen_jing", at=T0 - timedelta(seconds=1)))
    assert err.instance_id == complaint.id
    same = engine.advance(complaint.id, "investigate", "chen_jing", at=T0)      # the same instant is fine
    assert same.last_occurred_at == T0


def test_a_time_without_offset_is_refused(engine, complaint) -> None:  # type: ignore[no-untyped-def]
    err = refused(engine, InputError, lambda: engine.advance(
        complaint.id, "investigate", "chen_jing", at=datetime(2025, 9, 30, 10, 0)))
    assert err.argument == "--at"


# ------------------------------------------------------------------ one transaction per command

class Boom(Exception):
    """Raised by a change hook inside the transaction, like a crash half-way through a command."""


def _steps(engine: Any, clock: Any) -> dict[str, Callable[[], Any]]:
    clock.set(T0)
    anon = engine.start("complaint", "zhou_min", {"channel": "letter", "content": "噪音", "anonymous": True})
    c = engine.start("complaint", "liu_fang", NAMED)
    engine.advance(c.id, "reply", "chen_jing", REPLY)
    # Anonymous: no callback to wait for (CMP-12), so the effect check completes it.
    r = engine.start("complaint", "zhou_min", {"channel": "visit", "content": "夜间施工", "anonymous": True})
    engine.advance(r.id, "reply", "li_qiang", REPLY)
    engine.advance(r.id, "resolve", "li_qiang", {"handling_result": "已约谈施工方"})
    clock.advance(timedelta(minutes=5))
    return {
        "start": lambda: engine.start("complaint", "liu_fang", NAMED),
        "take action": lambda: engine.advance(c.id, "report_important", "chen_jing"),
        "record data": lambda: engine.record(c.id, "chen_jing", {"contact": "13900000000"}),
        "claim": lambda: engine.claim(anon.id, "li_qiang"),
        "assign": lambda: engine.assign(c.id, "wang_li", "li_qiang"),
        "spawn linked instance": lambda: engine.advance(c.id, "resolve", "chen_jing", {"handling_result": "好了"}),
        "complete": lambda: engine.advance(r.id, "check_effect", "li_qiang", {"effective": True}),
    }


@pytest.mark.parametrize("step", ["start", "take action", "record data", "claim", "assign",
                                  "spawn linked instance", "complete"])
def test_each_command_is_one_transaction(engine, clock, step: str) -> None:  # type: ignore[no-untyped-def]
    command = _steps(engine, clock)[step]
    calls = 0
    for fail_at in range(1, 10):            # fail at every point a hook runs inside the transaction
        def hook(*_args: Any, _n: int = fail_at) -> None:
            nonlocal calls
            calls += 1
            if calls == _n:
                raise Boom(f"crash at hook call {_n}")
        engine.hooks[:] = [hook]
        calls = 0
        before = tables(engine)
        try:
            command()
        except Boom:
            assert tables(engine) == before, f"{step}: a crash at hook call {fail_at} left rows behind"
            continue
        assert tables(engine) != before
        break
    else:  # pragma: no cover
        pytest.fail("the command never completed")
    assert fail_at > 1, "the hook never ran inside the transaction"
    engine.hooks[:] = []
    assert engine.verify()[2] is None


def test_a_rolled_back_first_start_saves_its_version_snapshot_on_the_next_try(engine, clock) -> None:  # type: ignore[no-untyped-def]
    def boom(*_a: Any) -> None:
        raise Boom()
    engine.hooks.append(boom)
    with pytest.raises(Boom):
        engine.start("complaint", "liu_fang", NAMED)
    assert tables(engine)["procedure_versions"] == []
    engine.hooks.clear()
    engine.start("complaint", "liu_fang", NAMED)
    assert [r[:2] for r in tables(engine)["procedure_versions"]] == [("complaint", engine.library.get("complaint").version)]


def test_a_child_that_cannot_start_refuses_the_parents_step(settings, clock, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil
    root = Path(settings.procedures).parent
    shutil.copytree(root / "procedures", tmp_path / "procedures")
    shutil.copytree(root / "forms", tmp_path / "forms")
    intake = tmp_path / "forms" / "callback_intake.yaml"
    intake.write_text(intake.read_text(encoding="utf-8") + "  visit_window: {type: text, label: 回访时段}\n",
                      encoding="utf-8")
    clock.set(T0)
    eng = build_engine(Settings(settings.db, tmp_path / "procedures", settings.org), clock)
    c = eng.start("complaint", "liu_fang", NAMED)
    eng.advance(c.id, "reply", "chen_jing", REPLY)
    err = refused(eng, FormInvalid, lambda: eng.advance(c.id, "resolve", "chen_jing", {"handling_result": "好了"}))
    assert (err.form, [f.field for f in err.errors]) == ("callback_intake", ["visit_window"])
    assert eng.show(c.id).state == "replied"


# ------------------------------------------------------------------ a database too busy to take the command

def test_a_command_on_a_database_locked_by_another_process_is_refused_as_busy(engine, complaint,
                                                                           clock) -> None:  # type: ignore[no-untyped-def]
    with engine.transaction() as conn:
        conn.exec_driver_sql("PRAGMA busy_timeout=0")  # this engine's kept connection stops waiting at once
    path = engine.store_url.removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        before = tables(engine)
        with pytest.raises(StoreBusy, match="database is locked.*nothing was changed, try again"):
            engine.advance(complaint.id, "investigate", engine.show(complaint.id).assignee, at=later(clock))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert tables(engine) == before
    assert engine.advance(complaint.id, "investigate", engine.show(complaint.id).assignee,
                          at=later(clock)).state == "investigating"  # and once free, it goes through
