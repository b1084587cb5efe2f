"""`sop import calls`: call-detail records become phone_call instances judged on their own times (PHN-6)."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from adapters.calls import import_calls
from cli import main
from engine.runtime.config import build_engine
from tests.conftest import ROOT, SHANGHAI

CDR = """call_id,caller,ring_started_at,answered_at,rings,seat
C1,13912345678,2025-09-30T10:00:00+08:00,2025-09-30T10:00:09+08:00,2,8001
C2,+86 139 1234 5679,2025-09-30T10:05:00+08:00,2025-09-30T10:05:31+08:00,,8002
C3,anonymous,2025-09-30T10:10:00,,2,8001
C4,021-55551234,2025-09-30T10:20:00+08:00,,6,8002
C5,13912345670,2025-09-30T10:30:00+08:00,,,8001
"""


def write(tmp_path: Path, text: str, name: str = "cdr.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def sla(engine, iid: int) -> dict:  # type: ignore[no-untyped-def]
    return next(d for d in engine.deadlines(iid) if d["name"] == "answer")


def run_import(runner, path: Path, staff: str = "li_qiang"):  # type: ignore[no-untyped-def]
    return runner.invoke(main, ["--json", "import", "calls", str(path), "--as", staff])


def test_phn6_imported_calls_are_judged_on_the_times_in_the_record(runner, tmp_path, settings, clock) -> None:  # type: ignore[no-untyped-def]
    r = run_import(runner, write(tmp_path, CDR))          # imported on the real clock, long after 2025-09-30
    assert r.exit_code == 0, r.output + r.stderr
    out = json.loads(r.stdout)
    assert len(out["created"]) == 5 and out["existing"] == [] and out["errors"] == []
    clock.set(datetime(2025, 10, 9, 9, 0, tzinfo=SHANGHAI))
    engine = build_engine(settings, clock)
    c1, c2, c3, c4, c5 = (engine.show(i) for i in out["created"])
    assert (c1.state, sla(engine, c1.id)["status"]) == ("closed", "met")             # answered at ring 2
    assert (c2.state, sla(engine, c2.id)["status"]) == ("closed", "breached")        # answered after 31 s
    assert c2.data["caller"] == "13912345679" and c2.data["seat"] == "8002"
    assert (c3.state, sla(engine, c3.id)["status"]) == ("missed", "met")             # caller gave up at ring 2
    assert "caller" not in c3.data and c3.data["ring_started_at"] == "2025-09-30T10:10:00+08:00"
    assert (c4.state, sla(engine, c4.id)["status"]) == ("missed", "breached")        # 6 rings, nobody answered
    assert c4.data["missed_at"] == "2025-09-30T10:20:30+08:00"                       # 6 rings x 5 s
    assert (c5.state, sla(engine, c5.id)["status"]) == ("ringing", "open")           # unknown length: swept
    engine.tick(clock.now())
    assert sla(engine, c5.id)["status"] == "breached"
    breach = next(e for e in engine.history(c5.id) if e.type == "SlaBreached")
    assert breach.occurred_at == datetime(2025, 9, 30, 10, 30, 15, tzinfo=SHANGHAI)
    for c in (c1, c2, c3, c4, c5):
        assert engine.replay(c.id).ok
    assert not [e for c in (c1, c2, c5) for e in engine.history(c.id) if e.type == "NotificationQueued"]


def test_importing_the_same_file_twice_creates_nothing_new(runner, tmp_path, settings, clock) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, CDR)
    first = json.loads(run_import(runner, path).stdout)
    engine = build_engine(settings, clock)
    revisions = {i: engine.show(i).revision for i in first["created"]}
    second = run_import(runner, path)
    assert second.exit_code == 0, second.output
    again = json.loads(second.stdout)
    assert again["created"] == [] and again["existing"] == first["created"]
    assert {i: engine.show(i).revision for i in first["created"]} == revisions


def test_bad_values_are_named_by_line_and_column_and_nothing_is_imported(runner, tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = (
        "call_id,caller,ring_started_at,answered_at,rings,seat\n"
        "G1,13912345678,2025-09-30T10:00:00+08:00,2025-09-30T10:00:05+08:00,,8001\n"
        "B1,13912345678,yesterday,,,8001\n"
        "B2,13912345678,2025-09-30T10:00:00+08:00,2025-09-30T09:59:00+08:00,,8001\n"
        ",13912345678,2025-09-30T10:00:00+08:00,,,8001\n"
        "B4,13912345678,2025-09-30T10:00:00+08:00,,two,8001\n"
        "B6,13912345678,9999-12-31T23:59:59-12:00,,,8001\n"
        "\n"
        "G2,13912345678,2025-09-30T11:00:00+08:00,,1,8002\n"
    )
    path = write(tmp_path, text)
    r = runner.invoke(main, ["import", "calls", str(path), "--as", "liu_fang"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "0 created, 0 already imported, 5 refused" in r.stdout
    errors = r.stderr.strip().splitlines()
    assert [e.split(":")[:2] for e in errors] == [[str(path), n] for n in ("3", "4", "5", "6", "7")]
    assert "ring_started_at: not an ISO 8601 time" in errors[0]
    assert "answered_at: " in errors[1] and "before ring_started_at" in errors[1]
    assert "call_id: missing" in errors[2]
    assert "rings: not a whole number" in errors[3]
    assert "ring_started_at: '9999-12-31T23:59:59-12:00' is outside the years 1970–2999" in errors[4]
    assert json.loads(run_import(runner, path).stdout)["created"] == []  # still nothing written


def test_rows_the_engine_refuses_are_reported_by_line_and_good_rows_still_load(runner, tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = (
        "call_id,caller,ring_started_at,answered_at,rings,seat\n"
        "G1,13912345678,2025-09-30T10:00:00+08:00,2025-09-30T10:00:05+08:00,,8001\n"
        "B5,12345,2025-09-30T10:00:00+08:00,,,8001\n"
        "G2,13912345678,2025-09-30T11:00:00+08:00,,1,8002\n"
    )
    path = write(tmp_path, text)
    r = runner.invoke(main, ["import", "calls", str(path), "--as", "liu_fang"])
    assert r.exit_code == 1
    assert "2 created, 0 already imported, 1 refused" in r.stdout
    errors = r.stderr.strip().splitlines()
    assert [e.split(":")[1] for e in errors] == ["3"] and "caller" in errors[0]


def test_a_file_without_the_required_columns_is_refused_whole(runner, tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = run_import(runner, write(tmp_path, "id,number,start\n1,13912345678,2025-09-30T10:00:00+08:00\n"))
    assert r.exit_code == 1 and "missing column(s) call_id, caller, ring_started_at" in r.stderr


def test_only_staff_who_may_take_every_step_can_import(engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from engine.errors import NotAuthorized

    with pytest.raises(NotAuthorized, match="file_record"):
        import_calls(engine, write(tmp_path, CDR), "chen_jing")        # a steward cannot file records
    result = import_calls(engine, CDR, "zhou_min")                       # CSV text works too
    assert len(result.created) == 5


def test_phn6_cmp2_an_imported_answered_call_is_on_the_record_of_the_person_at_its_seat(runner, tmp_path, settings,
                                                                                        clock) -> None:  # type: ignore[no-untyped-def]
    """Seats 8001/8002 are 刘芳 and 周敏 in the org file; an unknown seat stays with the importer."""
    cdr = CDR.splitlines()[0] + "\nS1,13912345678,2025-09-30T10:00:00+08:00,2025-09-30T10:00:09+08:00,2,8002\n" \
                                "S2,13912345678,2025-09-30T11:00:00+08:00,2025-09-30T11:00:04+08:00,,8099\n"
    out = json.loads(run_import(runner, write(tmp_path, cdr)).stdout)
    engine = build_engine(settings, clock)
    known, unknown = (engine.show(i) for i in out["created"])
    assert known.data["answered_by"] == "zhou_min" and known.data["seat"] == "8002"
    assert {e.actor for e in engine.history(known.id) if e.type == "ActionTaken"} == {"zhou_min"}
    assert unknown.data["answered_by"] == "li_qiang"           # seat 8099 is nobody's: the importer
    assert all(engine.replay(i).ok for i in out["created"])


def test_a_seat_given_to_two_people_is_refused_in_the_org_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from engine.errors import ProcedureError
    from engine.spec.org import load_org

    org = tmp_path / "org.yaml"
    org.write_text("site: {name: 山水庭苑}\nstaff:\n"
                   "  - {id: liu_fang, name: 刘芳, roles: [front_desk], seat: \"8001\"}\n"
                   "  - {id: zhou_min, name: 周敏, roles: [front_desk], seat: \"8001\"}\n", encoding="utf-8")
    with pytest.raises(ProcedureError, match="seat '8001' belongs to both liu_fang and zhou_min"):
        load_org(org)


def test_a_ring_unit_not_in_wall_clock_time_is_refused_in_one_line_and_nothing_is_imported(runner, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A record's rings are counted in seconds from its ring time: ``units: {ring: 1 workday}``
    used to end the import in a TypeError traceback."""
    import shutil

    for folder in ("procedures", "forms"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    phone = tmp_path / "procedures" / "phone_call.yaml"
    text = phone.read_text(encoding="utf-8").replace("units: {ring: 5s}", "units: {ring: 1 workday}")
    phone.write_text(text.replace("    goal: 3 rings\n", "    goal: 3 rings\n    workday_mode: working_hours\n"),
                     encoding="utf-8")  # (lint asks how to read a goal in workdays)
    r = runner.invoke(main, ["--procedures", str(tmp_path / "procedures"), "import", "calls",
                             str(write(tmp_path, CDR)), "--as", "li_qiang"])
    assert r.exit_code != 0 and isinstance(r.exception, SystemExit), repr(r.exception)  # not a crash
    assert r.stderr.strip().splitlines() == [
        f"error: {phone}: units.ring: 1 workday is not wall-clock time; one ring lasts e.g. 5s"]
    shown = runner.invoke(main, ["--procedures", str(tmp_path / "procedures"), "show", "1"])
    assert shown.exit_code != 0 and "1" in shown.stderr  # nothing was imported
