"""Procedure versions: a content hash, a snapshot stored at first use, running instances pinned.

The YAML is edited in a temporary copy of ``procedures/`` and ``forms/`` (the complaint and
callback procedures with their forms), never in the repository.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest

from cli import main
from engine.errors import ActionNotAllowed
from engine.runtime.config import Settings, build_engine
from engine.spec.library import CompiledProcedure, load_checked
from engine.spec.org import load_org

from conftest import ROOT, SHANGHAI

NAMED = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
         "content": "楼上漏水", "anonymous": False}
REPLY = {"reply_method": "phone", "reply_summary": "已处理"}
ORG = ROOT / "org" / "demo.yaml"
T0 = datetime(2025, 9, 30, 9, 0, tzinfo=SHANGHAI)


def copy_of_shipped(folder: Path) -> Path:
    """complaint + callback and their forms, copied; returns the procedures folder."""
    (folder / "procedures").mkdir(parents=True)
    (folder / "forms").mkdir()
    for name in ("complaint", "callback"):
        shutil.copy(ROOT / "procedures" / f"{name}.yaml", folder / "procedures")
        for form in (ROOT / "forms").glob(f"{name}_*.yaml"):
            shutil.copy(form, folder / "forms")
    return folder / "procedures"


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) >= 1, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new) if count == 0 else text.replace(old, new, count), encoding="utf-8")


def versions(procedures: Path) -> dict[str, str]:
    lib = load_checked(procedures, load_org(ORG).roles)
    return {k: p.version for k, p in lib.procedures.items()}


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    return copy_of_shipped(tmp_path / "v1")


@pytest.fixture
def v2(tmp_path: Path) -> Path:
    """The complaint procedure edited: a state renamed, an action added, a title changed."""
    procs = copy_of_shipped(tmp_path / "v2")
    complaint = procs / "complaint.yaml"
    edit(complaint, "investigating", "checking", count=0)
    edit(complaint, "title: 已受理", "title: 已登记")
    edit(complaint, "actions:\n", "actions:\n  - name: withdraw\n    title: 业主撤诉\n    from: received\n"
                                  "    to: closed\n    roles: [steward]\n\n")
    return procs


class Time:
    def __init__(self) -> None:
        self.t = T0

    def now(self) -> datetime:
        return self.t

    def next(self, minutes: int = 10) -> datetime:
        self.t += timedelta(minutes=minutes)
        return self.t


@pytest.fixture
def time() -> Time:
    return Time()


def engine_on(db_url: str, procedures: Path, clock: Any) -> Any:
    return build_engine(Settings(db_url, procedures, ORG), clock)


def stored_versions(db_url: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as con:
        return con.execute("SELECT procedure, version, snapshot FROM procedure_versions "
                           "ORDER BY first_used_at, procedure").fetchall()


# ------------------------------------------------------------------ the content hash

def test_version_ignores_comments_layout_quoting_and_key_order(v1: Path) -> None:
    before = versions(v1)
    complaint = v1 / "complaint.yaml"
    edit(complaint, "id: complaint\ntitle: 投诉处理\n", "# 版本说明：只改了格式\ntitle: '投诉处理'\n\nid: \"complaint\"\n")
    edit(complaint, "    roles: [steward, cs_supervisor, office_director]\n",
         "    roles:\n      - steward\n      - cs_supervisor\n      - office_director\n")
    edit(v1.parent / "forms" / "complaint_reply.yaml", "fields:", "# 答复表\nfields:")
    assert versions(v1) == before


def test_editing_a_procedure_or_a_form_it_uses_gives_a_new_version(v1: Path) -> None:
    before = versions(v1)
    edit(v1 / "complaint.yaml", "title: 已结案", "title: 已关闭")
    after = versions(v1)
    assert after["complaint"] != before["complaint"] and after["callback"] == before["callback"]
    edit(v1.parent / "forms" / "callback_record.yaml", "label: 回访内容", "label: 回访情况")
    again = versions(v1)
    assert again["callback"] != after["callback"] and again["complaint"] == after["complaint"]


def test_every_shipped_snapshot_rebuilds_the_same_version() -> None:
    """An old instance is replayed from its stored snapshot; the snapshot must hash to its version."""
    lib = load_checked(ROOT / "procedures", load_org(ORG).roles)
    for proc in lib.procedures.values():
        again = CompiledProcedure.from_snapshot(json.loads(proc.snapshot_json))
        assert (again.version, again.snapshot_json) == (proc.version, proc.snapshot_json), proc.id


# ------------------------------------------------------------------ snapshots

def test_the_snapshot_is_stored_at_first_use(v1: Path, db_url: str, time: Time) -> None:
    eng = engine_on(db_url, v1, time)
    assert stored_versions(db_url) == []
    c = eng.start("complaint", "liu_fang", NAMED, time.next())
    eng.start("complaint", "liu_fang", NAMED, time.next())
    proc = eng.library.get("complaint")
    assert stored_versions(db_url) == [("complaint", proc.version, proc.snapshot_json)]
    eng.advance(c.id, "reply", "chen_jing", REPLY, time.next())
    eng.advance(c.id, "resolve", "chen_jing", {"handling_result": "好了"}, time.next())   # spawns a callback
    assert [(p, v) for p, v, _ in stored_versions(db_url)] == \
        [("complaint", proc.version), ("callback", eng.library.get("callback").version)]


# ------------------------------------------------------------------ pinned instances

def test_running_instances_stay_on_their_version(v1: Path, v2: Path, db_url: str, time: Time) -> None:
    old_engine = engine_on(db_url, v1, time)
    a = old_engine.start("complaint", "liu_fang", NAMED, time.next())
    a = old_engine.advance(a.id, "investigate", "chen_jing", at=time.next())
    assert a.state == "investigating"

    new_engine = engine_on(db_url, v2, time)           # the YAML changed; a restarted engine
    b = new_engine.start("complaint", "liu_fang", NAMED, time.next())
    assert b.version != a.version
    assert new_engine.show(a.id).version == a.version
    assert "withdraw" not in [x["name"] for x in new_engine.available_actions(new_engine.show(a.id))]
    assert "withdraw" in [x["name"] for x in new_engine.available_actions(b)]

    # the old instance advances by its own rules, in a state the new version no longer has
    a = new_engine.advance(a.id, "reply", "chen_jing", REPLY, time.next())
    assert (a.state, a.version) == ("replied", old_engine.library.get("complaint").version)
    with pytest.raises(ActionNotAllowed):
        new_engine.advance(a.id, "withdraw", "chen_jing", at=time.next())
    b = new_engine.advance(b.id, "investigate", "chen_jing", at=time.next())
    assert b.state == "checking"
    c = new_engine.start("complaint", "liu_fang", NAMED, time.next())
    assert new_engine.advance(c.id, "withdraw", "chen_jing", at=time.next()).status == "completed"

    for iid in (a.id, b.id, c.id):
        r = new_engine.replay(iid)
        assert r.ok, r.difference
    assert new_engine.verify()[2] is None
    assert sorted(v for p, v, _ in stored_versions(db_url) if p == "complaint") == sorted({a.version, b.version})

    # and the other way round: an engine on the old files still runs the new instance
    back = engine_on(db_url, v1, time)
    assert back.advance(b.id, "reply", "chen_jing", REPLY, time.next()).state == "replied"
    assert all(back.replay(i).ok for i in (a.id, b.id, c.id))


def test_old_instances_replay_through_the_cli_after_the_yaml_changed(v1: Path, v2: Path, db_url: str, runner,
                                                                     time: Time) -> None:  # type: ignore[no-untyped-def]
    eng = engine_on(db_url, v1, time)
    a = eng.start("complaint", "liu_fang", NAMED, time.next())
    eng.advance(a.id, "investigate", "chen_jing", at=time.next())
    shutil.rmtree(v1.parent)                           # the old files are gone altogether
    r = runner.invoke(main, ["--procedures", str(v2), "--json", "show", str(a.id)])
    assert r.exit_code == 0, r.output
    shown = json.loads(r.stdout)
    assert (shown["version"], shown["state"]) == (a.version, "investigating")
    r = runner.invoke(main, ["--procedures", str(v2), "advance", str(a.id), "reply", "--as", "chen_jing",
                             "--data", json.dumps(REPLY), "--at", "2025-09-30T10:00:00+08:00"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["--procedures", str(v2), "replay", str(a.id)])
    assert r.exit_code == 0 and "matches the stored state" in r.stdout
    assert runner.invoke(main, ["--procedures", str(v2), "audit", "verify"]).exit_code == 0
