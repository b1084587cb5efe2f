"""Watchers (issue 14): escalation moves a task away from its worker, who must not lose sight
of it. A watched case stays in the person's "cases I watch" list and they receive the
notifications a procedure sends to ``watchers: true``; every change is an event.

CMP-7 (层级汇报、层级处理): the steward who reports a complaint up to the CS supervisor keeps
watching it, and the watchers hear when it goes on to the office director. In the demo
organisation 陈静 chen_jing is the steward of buildings 3 and 4, 赵磊 zhao_lei of 5 and 6,
李强 li_qiang the CS supervisor, 张华 zhang_hua the office director.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from cli import main
from engine.errors import ActionNotAllowed, OutOfScope
from engine.runtime import watching
from engine.store.tables import outbox
from tests.test_api_support import api  # noqa: F401  (fixture)
from tests.test_engine_refusals import refused
from tests.web_support import Web, csrf_of, web  # noqa: F401  (fixture)

COMPLAINT = {"owner_name": "王先生", "contact": "13912345678", "channel": "phone", "content": "楼上漏水",
             "anonymous": False}


def complaint(engine: Any, unit: str = "3-1201") -> Any:
    return engine.start("complaint", "liu_fang", {**COMPLAINT, "unit": unit})


def sent_to(engine: Any, iid: int) -> list[tuple[str, str]]:
    """(recipient, message) of the outbox rows of an instance, in order."""
    with engine.read() as conn:
        rows = conn.execute(sa.select(outbox.c.recipient, outbox.c.message).where(outbox.c.instance_id == iid)
                            .order_by(outbox.c.id)).all()
    return [(r[0], r[1]) for r in rows]


# ------------------------------------------------------------------ the engine API

def test_cmp7_the_steward_who_reports_up_keeps_watching_and_hears_of_the_director(engine) -> None:  # type: ignore[no-untyped-def]
    c = complaint(engine)
    assert (c.assignee, c.watchers) == ("chen_jing", ())
    c = engine.advance(c.id, "escalate_to_supervisor", "chen_jing")
    assert (c.assignee, c.assignee_role, c.watchers) == (None, "cs_supervisor", ("chen_jing",))
    assert [t.id for t in engine.tasks(staff="chen_jing")] == []          # no longer her task …
    assert [i.id for i in watching.watched(engine, "chen_jing")] == [c.id]  # … but she still sees it
    engine.claim(c.id, "li_qiang")
    c = engine.advance(c.id, "escalate_to_director", "li_qiang")
    assert c.watchers == ("chen_jing", "li_qiang")                          # the supervisor too (keep_watching)
    told = [who for who, text in sent_to(engine, c.id) if "您仍可在“我关注的”中查看进展" in text]
    assert told == ["chen_jing", "li_qiang"]
    assert engine.replay(c.id).ok


def test_a_manual_reassignment_keeps_the_previous_assignee_watching(engine) -> None:  # type: ignore[no-untyped-def]
    c = complaint(engine)
    c = engine.assign(c.id, "wang_li", "li_qiang")
    assert (c.assignee, c.watchers) == ("wang_li", ("chen_jing",))
    event = engine.history(c.id)[-1]
    assert (event.type, json.loads(event.data_json)) == ("WatcherAdded", {"reason": "reassigned", "staff": "chen_jing"})


def test_watch_and_unwatch_are_events_each_and_replay_rederives_the_watchers(engine) -> None:  # type: ignore[no-untyped-def]
    c = complaint(engine)
    n = len(engine.history(c.id))
    c = watching.watch(engine, c.id, "li_qiang")
    c = watching.watch(engine, c.id, "zhang_hua")
    c = watching.unwatch(engine, c.id, "li_qiang")
    assert c.watchers == ("zhang_hua",)
    assert [e.type for e in engine.history(c.id)[n:]] == ["WatcherAdded", "WatcherAdded", "WatcherRemoved"]
    assert engine.replay(c.id).ok


def test_watching_twice_or_unwatching_what_one_does_not_watch_is_refused_and_writes_nothing(engine) -> None:  # type: ignore[no-untyped-def]
    c = watching.watch(engine, complaint(engine).id, "li_qiang")
    err = refused(engine, ActionNotAllowed, lambda: watching.watch(engine, c.id, "li_qiang"))
    assert "already watch instance 1" in str(err)
    err = refused(engine, ActionNotAllowed, lambda: watching.unwatch(engine, c.id, "zhang_hua"))
    assert "do not watch instance 1" in str(err)


def test_a_steward_may_watch_only_what_they_could_see(engine) -> None:  # type: ignore[no-untyped-def]
    c = complaint(engine, "3-1201")                       # chen_jing's building
    err = refused(engine, OutOfScope, lambda: watching.watch(engine, c.id, "zhao_lei"))
    assert str(err).startswith("zhao_lei may not watch instance 1: instance 1 is in building 3, not one of yours (5, 6)")
    moved = engine.assign(complaint(engine, "4-0101").id, "wang_li", "li_qiang")  # building 4, now wang_li's
    assert watching.watch(engine, moved.id, "wang_li").watchers == ("chen_jing", "wang_li")  # assigned to her
    err = refused(engine, OutOfScope, lambda: watching.watch(engine, c.id, "wang_li"))  # building 3: not hers
    assert "not one of yours (1, 2)" in str(err)
    assert watching.watch(engine, c.id, "chen_jing").watchers == ("chen_jing",)  # her own building


class _Ops:
    """A hypothesis strategy of watch/unwatch/reassign steps by a few people."""

    people = ["li_qiang", "zhang_hua", "chen_jing", "wang_li"]
    steps = st.lists(st.tuples(st.sampled_from(["watch", "unwatch", "assign"]), st.sampled_from(people)),
                     max_size=12)


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_Ops.steps)
def test_replay_equals_the_stored_watchers_after_any_watch_unwatch_and_reassignment(engine, steps) -> None:  # type: ignore[no-untyped-def]
    c = complaint(engine)
    expected = list(c.watchers)
    for op, who in steps:
        try:
            if op == "watch":
                c = watching.watch(engine, c.id, who)
            elif op == "unwatch":
                c = watching.unwatch(engine, c.id, who)
            else:
                before = c.assignee
                c = engine.assign(c.id, who, "li_qiang")
                if before and before != who and before not in expected:
                    expected.append(before)
                continue
        except (ActionNotAllowed, OutOfScope):
            continue
        if op == "watch":
            expected.append(who)
        else:
            expected.remove(who)
        assert engine.replay(c.id).ok
    assert list(engine.show(c.id).watchers) == expected
    assert engine.replay(c.id).ok


# ------------------------------------------------------------------ the CLI

def test_cli_watch_unwatch_and_tasks_watching(runner: CliRunner, tmp_path: Path) -> None:
    def sop(*args: str) -> Any:
        r = runner.invoke(main, list(args))
        assert r.exit_code == 0, r.output
        return r.output

    sop("start", "complaint", "--as", "liu_fang", "--data", json.dumps({**COMPLAINT, "unit": "3-1201"}))
    assert json.loads(sop("watch", "1", "--as", "li_qiang", "--json"))["watchers"] == ["li_qiang"]
    assert "watchers: li_qiang" in sop("show", "1")
    assert [r["id"] for r in json.loads(sop("tasks", "--as", "li_qiang", "--watching", "--json"))] == [1]
    sop("unwatch", "#1", "--as", "li_qiang")
    assert json.loads(sop("tasks", "--as", "li_qiang", "--watching", "--json")) == []
    r = runner.invoke(main, ["watch", "1", "--as", "zhao_lei"])
    assert r.exit_code == 1 and r.output.startswith("error: zhao_lei may not watch instance 1")
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
    r = runner.invoke(main, ["tasks", "--role", "steward", "--watching"])
    assert r.exit_code != 0 and "--watching" in r.output


# ------------------------------------------------------------------ the HTTP API

def test_api_watch_unwatch_and_the_watching_filter_of_tasks(api) -> None:  # type: ignore[no-untyped-def]
    c = api.start_complaint(unit="3-1201")
    supervisor = api.as_("li_qiang")
    r = supervisor.post(f"/v1/instances/{c['id']}/watch")
    assert r.status_code == 200 and r.json()["watchers"] == ["li_qiang"]
    assert [t["id"] for t in supervisor.get("/v1/tasks", params={"watching": "true"}).json()["items"]] == [c["id"]]
    assert supervisor.get(f"/v1/instances/{c['id']}").json()["watchers"] == ["li_qiang"]
    r = api.as_("wang_li").post(f"/v1/instances/{c['id']}/watch")     # buildings 1 and 2 only
    assert r.status_code == 403, r.text
    r = supervisor.post(f"/v1/instances/{c['id']}/unwatch")
    assert r.status_code == 200 and r.json()["watchers"] == []
    assert supervisor.get("/v1/tasks", params={"watching": "true"}).json()["total"] == 0


# ------------------------------------------------------------------ the web pages

def test_web_watch_button_and_the_watched_inbox_section(web: Web) -> None:
    c = web.start_complaint(unit="3-1201")
    boss = web.login("li_qiang")
    page = boss.get(f"/instances/{c.id}").text
    assert 'id="watch"' in page and "关注" in page
    r = boss.post(f"/instances/{c.id}/watch", data={"csrf": csrf_of(page), "revision": c.revision, "watch": "1"})
    assert r.status_code == 303
    assert web.engine.show(c.id).watchers == ("li_qiang",)
    inbox = boss.get("/").text
    assert "我关注的" in inbox and f'id="watched-{c.id}"' in inbox.split("我关注的")[1]
    page = boss.get(f"/instances/{c.id}").text
    assert "取消关注" in page
    other = web.login("wang_li")                               # buildings 1 and 2: no button
    assert 'id="watch"' not in other.get(f"/instances/{c.id}").text
