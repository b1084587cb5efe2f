"""Changing a procedure: ``sop migrate`` moves running instances onto a new version, and
``sop replay --with FILE`` re-runs recorded histories under an edited file (what-if).

The YAML is edited in temporary copies of ``procedures/`` and ``forms/`` (complaint and
callback), never in the repository; times come from ``--at``, never from sleeping.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cli import main
from engine.codec import ClockStatus
from test_versions import NAMED, REPLY, Time, copy_of_shipped, edit, engine_on


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    return copy_of_shipped(tmp_path / "v1")


@pytest.fixture
def renamed(tmp_path: Path) -> Path:
    """complaint with ``investigating`` renamed ``checking``."""
    procs = copy_of_shipped(tmp_path / "renamed")
    edit(procs / "complaint.yaml", "investigating", "checking", count=0)
    return procs


@pytest.fixture
def time() -> Time:
    return Time()


def sop(runner: Any, procedures: Path, *args: str) -> Any:
    return runner.invoke(main, ["--procedures", str(procedures), *args])


def table_counts(db_url: str) -> dict[str, int]:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as con:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: con.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for n in names}


def investigating(db_url: str, procedures: Path, time: Time) -> tuple[Any, int, int]:
    """Two complaints on the old version: #1 investigating, #2 received."""
    eng = engine_on(db_url, procedures, time)
    a = eng.start("complaint", "liu_fang", NAMED, time.next())
    eng.advance(a.id, "investigate", "chen_jing", at=time.next())
    b = eng.start("complaint", "liu_fang", NAMED, time.next())
    return eng, a.id, b.id


# ------------------------------------------------------------------ migration

def test_migration_maps_a_renamed_state_and_replay_and_audit_still_pass(v1: Path, renamed: Path, db_url: str,
                                                                        runner: Any, time: Time) -> None:
    eng, a, b = investigating(db_url, v1, time)
    old = eng.show(a).version
    r = sop(runner, renamed, "migrate", "complaint", "--as", "li_qiang", "--from", old, "--to", "current",
            "--map", "investigating=checking", "--at", "2025-09-30T10:00:00+08:00")
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"#{a} migrated") and "investigating → checking (mapped)" in lines[0]
    assert f"#{b} migrated" in lines[1] and "received → received" in lines[1]
    new_engine = engine_on(db_url, renamed, time)
    new = new_engine.library.get("complaint").version
    shown = new_engine.show(a)
    assert (shown.version, shown.state) == (new, "checking")
    events = new_engine.history(a)
    migrated = [e for e in events if e.type == "VersionMigrated"]
    assert len(migrated) == 1 and json.loads(migrated[0].data_json) == {
        "from": old, "to": new, "state_from": "investigating", "state_to": "checking", "mapped": True}
    assert migrated[0].actor == "li_qiang"  # the supervisor who ran it, on the record
    # the reply SLA kept its state; the instance goes on under the new version
    assert shown.clocks["reply"].status is ClockStatus.OPEN
    done = new_engine.advance(a, "reply", "chen_jing", REPLY, time.next(90))
    assert done.state == "replied" and done.clocks["reply"].status is ClockStatus.MET
    for iid in (a, b):
        assert sop(runner, renamed, "replay", str(iid)).exit_code == 0
    # an engine that only has the old files replays it too (the new snapshot is stored)
    assert engine_on(db_url, v1, time).replay(a).ok
    r = sop(runner, renamed, "audit", "verify")
    assert r.exit_code == 0, r.output


def test_only_a_supervisor_migrates_and_the_cli_asks_who_does(v1: Path, renamed: Path, db_url: str, runner: Any,
                                                               time: Time) -> None:
    eng, a, b = investigating(db_url, v1, time)
    old = eng.show(a).version
    before = table_counts(db_url)
    r = sop(runner, renamed, "migrate", "complaint", "--as", "chen_jing", "--from", old, "--map",
            "investigating=checking", "--at", "2025-09-30T10:00:00+08:00")
    assert r.exit_code == 1 and "chen_jing may not migrate complaint: needs one of the roles" in r.output
    assert "Traceback" not in r.output and table_counts(db_url) == before
    r = sop(runner, renamed, "migrate", "complaint", "--from", old)
    assert r.exit_code == 1 and "Missing option '--as'" in r.output
    assert table_counts(db_url) == before


def test_migration_refused_when_a_state_is_unmapped_names_the_instance_and_writes_nothing(
        v1: Path, renamed: Path, db_url: str, runner: Any, time: Time) -> None:
    eng, a, b = investigating(db_url, v1, time)
    old = eng.show(a).version
    before = table_counts(db_url)
    r = sop(runner, renamed, "migrate", "complaint", "--as", "li_qiang", "--from", old, "--at", "2025-09-30T10:00:00+08:00")
    assert r.exit_code == 1
    assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
    assert f"#{a}: state 'investigating' is not in version" in r.stderr and "--map investigating=" in r.stderr
    assert f"#{b}" not in r.stderr
    assert table_counts(db_url) == before          # all or nothing: #b was not moved either
    r = sop(runner, renamed, "migrate", "complaint", "--as", "li_qiang", "--from", old, "--map", "investigating=nowhere",
            "--at", "2025-09-30T10:00:00+08:00")
    assert r.exit_code == 1 and f"#{a}: --map investigating=nowhere: 'nowhere' is not a state" in r.stderr
    assert table_counts(db_url) == before


def test_migration_dry_run_writes_nothing(v1: Path, renamed: Path, db_url: str, runner: Any, time: Time) -> None:
    eng, a, b = investigating(db_url, v1, time)
    old = eng.show(a).version
    before = table_counts(db_url)
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as con:
        rows_before = con.execute("SELECT * FROM instances ORDER BY id").fetchall()
    r = sop(runner, renamed, "--json", "migrate", "complaint", "--as", "li_qiang", "--from", old, "--map", "investigating=checking",
            "--dry-run", "--at", "2025-09-30T10:00:00+08:00")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["dry_run"] and [(i["instance"], i["state_to"]) for i in out["instances"]] == [(a, "checking"),
                                                                                             (b, "received")]
    assert table_counts(db_url) == before
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as con:
        assert con.execute("SELECT * FROM instances ORDER BY id").fetchall() == rows_before


def test_migration_cancels_a_clock_whose_spec_is_gone_and_keeps_the_others(v1: Path, tmp_path: Path, db_url: str,
                                                                           runner: Any, time: Time) -> None:
    eng, a, _ = investigating(db_url, v1, time)
    old = eng.show(a).version
    before = eng.show(a).clocks
    procs = copy_of_shipped(tmp_path / "renamed_sla")
    edit(procs / "complaint.yaml", "  - name: reply\n    title: 答复时限", "  - name: answer\n    title: 答复时限")
    r = sop(runner, procs, "--json", "migrate", "complaint", "--as", "li_qiang", "--from", old, "--at", "2025-09-30T10:00:00+08:00")
    assert r.exit_code == 0, r.output
    moved = {i["instance"]: i for i in json.loads(r.stdout)["instances"]}
    assert "reply" in moved[a]["cancelled_clocks"]
    new_engine = engine_on(db_url, procs, time)
    shown = new_engine.show(a)
    assert shown.clocks["reply"].status is ClockStatus.CANCELLED
    assert "answer" not in shown.clocks          # a renamed SLA starts when its own start next occurs
    kept = [n for n in shown.clocks if n != "reply"]
    assert all(shown.clocks[n] == before[n] for n in kept)
    types = [e.type for e in new_engine.history(a)]
    assert types[types.index("VersionMigrated") + 1] == "SlaCancelled"
    assert new_engine.replay(a).ok
    assert sop(runner, procs, "audit", "verify").exit_code == 0


# ------------------------------------------------------------------ what-if replay

def answered(db_url: str, procedures: Path, time: Time) -> tuple[Any, int]:
    """A phone complaint answered two hours after it came in: the reply SLA (1 workday) met."""
    eng = engine_on(db_url, procedures, time)
    c = eng.start("complaint", "liu_fang", NAMED, time.next())
    eng.advance(c.id, "investigate", "chen_jing", at=time.next())
    done = eng.advance(c.id, "reply", "chen_jing", REPLY, time.next(120))
    assert done.clocks["reply"].status is ClockStatus.MET
    return eng, c.id


def test_what_if_a_shortened_sla_goal_turns_met_into_breached(v1: Path, tmp_path: Path, db_url: str, runner: Any,
                                                              time: Time) -> None:
    eng, c = answered(db_url, v1, time)
    edited = copy_of_shipped(tmp_path / "edited")
    edit(edited / "complaint.yaml", "      - {goal: 1 workday}", "      - {goal: 1 working hour}")
    before = table_counts(db_url)
    r = sop(runner, v1, "replay", "--with", str(edited / "complaint.yaml"), "--since", "2025-09-01",
            "--as-of", "2025-10-10T09:00:00+08:00")
    assert r.exit_code == 0, r.output
    assert f"#{c}" in r.stdout and "differs" in r.stdout and "reply SLA met→breached" in r.stdout
    r = sop(runner, v1, "--json", "replay", "--with", str(edited / "complaint.yaml"), "--procedure", "complaint",
            "--as-of", "2025-10-10T09:00:00+08:00")
    out = json.loads(r.stdout)
    (one,) = out["instances"]
    assert not one["same"] and one["slas"]["reply"] == {"recorded": "met", "whatif": "breached"}
    assert one["state"] == {"recorded": "replied", "whatif": "replied"} and one["refused"] == []
    assert table_counts(db_url) == before           # nothing written to the real database
    # the unedited file changes nothing
    r = sop(runner, v1, "--json", "replay", "--with", str(v1 / "complaint.yaml"), "--as-of", "2025-10-10T09:00:00+08:00")
    assert json.loads(r.stdout)["differ"] == 0, r.stdout
    assert eng.replay(c).ok


def test_what_if_an_added_guard_refuses_a_recorded_step(v1: Path, tmp_path: Path, db_url: str, runner: Any,
                                                        time: Time) -> None:
    _, c = answered(db_url, v1, time)
    edited = copy_of_shipped(tmp_path / "edited")
    edit(edited / "complaint.yaml", "    guards:\n      # rule CMP-3",
         "    guards:\n      - when: \"reply_method == 'visit'\"\n        refusal: 投诉须上门答复\n      # rule CMP-3")
    r = sop(runner, v1, "replay", "--with", str(edited / "complaint.yaml"), "--as-of", "2025-10-10T09:00:00+08:00")
    assert r.exit_code == 0, r.output
    assert "step 3 reply refused:" in r.stdout and "投诉须上门答复" in r.stdout
    assert "state replied→investigating" in r.stdout
    r = sop(runner, v1, "--json", "replay", "--with", str(edited / "complaint.yaml"), str(c),
            "--as-of", "2025-10-10T09:00:00+08:00")
    (one,) = json.loads(r.stdout)["instances"]
    assert [(x["step"], x["command"]) for x in one["refused"]] == [(3, "reply")]
    assert one["slas"]["reply"] == {"recorded": "met", "whatif": "breached"}


def test_what_if_refuses_a_broken_file_in_one_line_per_issue(v1: Path, tmp_path: Path, db_url: str, runner: Any,
                                                             time: Time) -> None:
    answered(db_url, v1, time)
    edited = copy_of_shipped(tmp_path / "edited")
    edit(edited / "complaint.yaml", "    to: replied\n", "    to: nowhere\n")
    r = sop(runner, v1, "replay", "--with", str(edited / "complaint.yaml"))
    assert r.exit_code == 1 and "nowhere" in r.stderr and r.stdout == ""


def test_migration_from_any_moves_every_other_version_and_says_when_there_is_none(
        v1: Path, renamed: Path, db_url: str, runner: Any, time: Time) -> None:
    _, a, b = investigating(db_url, v1, time)
    r = sop(runner, renamed, "--json", "migrate", "complaint", "--as", "li_qiang", "--from", "any", "--map", "investigating=checking",
            "--at", "2025-09-30T10:00:00+08:00")
    assert r.exit_code == 0, r.output
    assert [i["instance"] for i in json.loads(r.stdout)["instances"]] == [a, b]
    r = sop(runner, renamed, "migrate", "complaint", "--as", "li_qiang", "--from", "any", "--at", "2025-09-30T10:05:00+08:00")
    assert r.exit_code == 0 and r.stdout.strip() == "complaint: no running instance on another version"
    r = sop(runner, renamed, "migrate", "complaint", "--as", "li_qiang", "--from", "0123456789abcdef")
    assert r.exit_code == 1 and "no version '0123456789abcdef' of complaint is stored" in r.stderr


def test_migration_fires_due_clock_steps_first_and_a_breach_stays_breached(v1: Path, renamed: Path, db_url: str,
                                                                            runner: Any, time: Time) -> None:
    eng, a, _ = investigating(db_url, v1, time)
    due = eng.show(a).clocks["reply"].due
    r = sop(runner, renamed, "--json", "migrate", "complaint", "--as", "li_qiang", "--from", eng.show(a).version,
            "--map", "investigating=checking", "--at", "2025-10-10T09:00:00+08:00")   # due 10-09 09:10
    assert r.exit_code == 0, r.output
    moved = {i["instance"]: i for i in json.loads(r.stdout)["instances"]}
    assert moved[a]["fired_first"] >= 1
    new_engine = engine_on(db_url, renamed, time)
    types = [e.type for e in new_engine.history(a)]
    assert types.index("SlaBreached") < types.index("VersionMigrated")
    clock = new_engine.show(a).clocks["reply"]
    assert (clock.status, clock.due) == (ClockStatus.BREACHED, due)
    assert new_engine.replay(a).ok


def test_the_web_timeline_names_a_migration(v1: Path, renamed: Path, db_url: str, runner: Any, time: Time) -> None:
    from engine.web.views import timeline

    eng, a, _ = investigating(db_url, v1, time)
    assert sop(runner, renamed, "migrate", "complaint", "--as", "li_qiang", "--from", "any", "--map", "investigating=checking",
               "--at", "2025-09-30T10:00:00+08:00").exit_code == 0
    new_engine = engine_on(db_url, renamed, time)
    with new_engine.read() as conn:
        proc = new_engine.procedure_for(conn, "complaint", new_engine.show(a).version)
    whys = [t.why for t in timeline(new_engine, proc, new_engine.history(a))]
    assert any(w.startswith("迁移到流程版本 ") and "investigating → " in w for w in whys), whys


def test_replay_needs_an_instance_or_an_edited_file(v1: Path, db_url: str, runner: Any, time: Time) -> None:
    investigating(db_url, v1, time)
    r = sop(runner, v1, "replay")
    assert r.exit_code == 1 and "give an INSTANCE, or --with FILE" in r.stderr
    r = sop(runner, v1, "replay", "--with", str(v1 / "nothing.yaml"))
    assert r.exit_code == 1 and "is not a file" in r.stderr


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_replays_and_verifies_on_every_backend(backend: str, v1: Path, renamed: Path, tmp_path: Path,
                                                         request: pytest.FixtureRequest, time: Time) -> None:
    from engine.runtime import auditing
    from engine.runtime.migration import migrate

    url = f"sqlite:///{tmp_path / 'b.db'}" if backend == "sqlite" else str(request.getfixturevalue("pg_url"))
    eng, a, b = investigating(url, v1, time)
    new_engine = engine_on(url, renamed, time)
    done = migrate(new_engine, "complaint", "any", "current", {"investigating": "checking"}, at=time.next())
    assert [(d.instance, d.state_to) for d in done] == [(a, "checking"), (b, "received")]
    new_engine.advance(a, "reply", "chen_jing", REPLY, time.next())
    assert all(new_engine.replay(i).ok for i in (a, b))
    assert new_engine.verify()[2] is None
    report = auditing.run(new_engine)
    assert report.ok, report


# ------------------------------------------------------------------ property: migrate anywhere, replay still equals state

def test_replay_equals_the_stored_state_after_a_migration_at_any_point(tmp_path: Path) -> None:
    """Random commands on complaint/callback (the audit property test's), a migration onto a
    version with ``investigating`` renamed at a random point, more random commands: every
    instance replays to its stored row, and chains and ledger verify."""
    from datetime import timedelta

    from hypothesis import given, settings, strategies as st

    from engine.errors import EngineError
    from engine.runtime import auditing
    from engine.runtime.migration import migrate
    from test_audit_properties import SETTINGS, T0, Clock, _one_command

    v1 = copy_of_shipped(tmp_path / "v1")
    v2 = copy_of_shipped(tmp_path / "v2")
    edit(v2 / "complaint.yaml", "investigating", "checking", count=0)
    runs = iter(range(1000))

    @settings(SETTINGS, max_examples=12)
    @given(st.data())
    def prop(data: st.DataObject) -> None:
        clock = Clock(T0)
        url = f"sqlite:///{tmp_path / f'p{next(runs)}.db'}"
        engine = engine_on(url, v1, clock)
        first = engine.start("complaint", "liu_fang", NAMED, clock.t).id   # one investigating, always
        ids = [first, engine.advance(first, "investigate", "chen_jing", at=clock.t).id]
        switch = data.draw(st.integers(1, 8), label="migrate after step")
        for step in range(data.draw(st.integers(switch, 12), label="steps")):
            clock.t += timedelta(minutes=data.draw(st.integers(0, 600), label="minutes later"))
            if step == switch:
                engine.close()
                engine = engine_on(url, v2, clock)
                moved = migrate(engine, "complaint", "any", "current", {"investigating": "checking"}, at=clock.t)
                assert all(engine.show(m.instance).state == m.state_to for m in moved)
                assert first in [m.instance for m in moved] or not engine.show(first).active
                continue
            kind, command = _one_command(data.draw, engine, ids)
            if command is None:
                continue
            try:
                inst = command(clock.t)
            except EngineError:
                continue
            ids = sorted(set(ids) | {inst.id, *inst.children})
        for i in ids:
            r = engine.replay(i)
            assert r.ok, f"#{i} replay differs at seq {r.seq}: {r.difference}"
        assert auditing.run(engine).ok
        engine.close()

    prop()


# ------------------------------------------------------------------ the HTTP API

def test_migrate_over_the_api_previews_with_dry_run_then_moves_for_supervisors_only(
        v1: Path, renamed: Path, db_url: str, time: Time) -> None:
    """POST /v1/procedures/{name}/migrate does what ``sop migrate`` does, for the supervising roles."""
    from tests.api_support import issue_tokens
    from engine.api.app import create_app
    from engine.api.server import BackgroundServer
    import httpx

    _, a, b = investigating(db_url, v1, time)
    eng = engine_on(db_url, renamed, time)
    old = eng.show(a).version
    time.next()
    with BackgroundServer(create_app(eng, max_body_bytes=64 * 1024)) as url:
        tokens = issue_tokens(eng, ("li_qiang", "chen_jing"))

        def post(staff: str, body: dict[str, Any]) -> httpx.Response:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens[staff]}"}) as c:
                return c.post("/v1/procedures/complaint/migrate", json={**body, "at": time.now().isoformat()})

        body = {"from": old, "map": {"investigating": "checking"}}
        r = post("chen_jing", body)
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        r = post("li_qiang", {"from": old})
        assert r.status_code == 409 and r.json()["code"] == "migration_refused"
        assert f"#{a}: " in r.json()["message"] and eng.show(a).version == old
        r = post("li_qiang", {**body, "dry_run": True})
        assert r.status_code == 200, r.text
        assert [(i["instance"], i["state_to"]) for i in r.json()["instances"]] == [(a, "checking"), (b, "received")]
        assert eng.show(a).version == old                    # a dry run writes nothing
        r = post("li_qiang", body)
        assert r.status_code == 200 and r.json()["dry_run"] is False
        assert (eng.show(a).state, eng.show(a).version) == ("checking", eng.library.get("complaint").version)
        assert eng.replay(a).ok and eng.replay(b).ok
        assert {e.actor for i in (a, b) for e in eng.history(i) if e.type == "VersionMigrated"} == {"li_qiang"}
