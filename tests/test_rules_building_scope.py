"""Building-scoped permissions (issue 14): a steward acts only on what is assigned to them or
waits in their buildings' queue; who supervises and who audits is the org file's to say.

In the demo organisation 陈静 chen_jing is the steward of buildings 3 and 4, 赵磊 zhao_lei of
5 and 6, 王丽 wang_li of 1 and 2; 李强 li_qiang is the CS supervisor. A case lands unassigned
in the steward queue when its building has no active steward: the ``gap`` org file below is
the demo's with chen_jing and zhao_lei away, and the cases started under it wait in the queue
when they come back (the same database, opened with the demo org).

Through every public surface: the engine API, the CLI, the HTTP API and the web pages.
"""
from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from engine.codec import ClockStatus
from engine.errors import NotAuthorized, OutOfScope, ProcedureError
from engine.runtime.config import Settings, build_engine
from engine.spec.org import DEFAULT_SUPERVISORS, OrgSpec, load_org
from tests.api_support import api  # noqa: F401  (fixture)
from tests.test_engine_refusals import refused, tables
from tests.web_support import Web, csrf_of, web  # noqa: F401  (fixture)

from conftest import ROOT

ORG = ROOT / "org" / "demo.yaml"
COMPLAINT = {"owner_name": "王先生", "contact": "13912345678", "channel": "phone", "content": "楼上漏水",
             "anonymous": False}
SUPERVISORS = ", ".join(DEFAULT_SUPERVISORS)


def complaint(engine: Any, unit: str) -> Any:
    return engine.start("complaint", "liu_fang", {**COMPLAINT, "unit": unit})


def org_file(tmp_path: Path, name: str, extra: str = "", away: tuple[str, ...] = ()) -> Path:
    """The demo org file without its own ``supervisors:``/``auditors:``, with ``extra``
    top-level keys and the people in ``away`` inactive."""
    text = re.sub(r"(?m)^(supervisors|auditors):.*\n", "", ORG.read_text(encoding="utf-8"))
    for staff in away:
        text = re.sub(rf"(\{{id: {staff}, [^\n]*)\}}", r"\1, active: false}", text)
    path = tmp_path / name
    path.write_text(text.replace("staff:\n", extra + "staff:\n", 1), encoding="utf-8")
    return path


@pytest.fixture
def queued(settings: Settings, clock: Any, tmp_path: Path) -> tuple[int, int]:
    """Complaints #1 (unit 3-1201) and #2 (unit 5-0502), both waiting unassigned in the
    steward queue: they came in while their buildings' stewards were away."""
    gap = build_engine(Settings(settings.db, settings.procedures, org_file(tmp_path, "gap.yaml",
                                                                              away=("chen_jing", "zhao_lei"))), clock)
    ids = complaint(gap, "3-1201").id, complaint(gap, "5-0502").id
    for iid in ids:
        inst = gap.show(iid)
        assert (inst.assignee, inst.assignee_role) == (None, "steward")
    gap.close()
    return ids


def out_of_scope(who: str, what: str, iid: int, building: str, buildings: str, assignee: str = "") -> str:
    held = f"; instance {iid} is assigned to {assignee}" if assignee else ""
    return (f"{who} may not {what}: instance {iid} is in building {building}, not one of yours ({buildings})"
            f"{held} (a supervisor may: {SUPERVISORS})")


# ------------------------------------------------------------------ the engine API

def test_a_steward_of_building_3_cannot_act_on_building_5s_case_assigned_to_zhao_lei(engine) -> None:  # type: ignore[no-untyped-def]
    inst = complaint(engine, "5-0502")
    assert inst.assignee == "zhao_lei"
    err = refused(engine, OutOfScope, lambda: engine.advance(inst.id, "investigate", "chen_jing"))
    assert str(err) == out_of_scope("chen_jing", "take 'investigate'", inst.id, "5", "3, 4", "zhao_lei")
    assert isinstance(err, NotAuthorized) and err.allowed_roles == list(DEFAULT_SUPERVISORS)
    assert (err.building, err.buildings, err.assignee) == ("5", ("3", "4"), "zhao_lei")
    err = refused(engine, OutOfScope, lambda: engine.record(inst.id, "chen_jing", {"contact": "13900000000"}))
    assert "instance 1 is in building 5, not one of yours (3, 4)" in str(err)
    assert engine.advance(inst.id, "investigate", "zhao_lei").state == "investigating"


def test_a_steward_cannot_act_on_a_case_of_their_building_that_a_supervisor_gave_to_another(engine) -> None:  # type: ignore[no-untyped-def]
    inst = complaint(engine, "3-1201")
    engine.assign(inst.id, "wang_li", "li_qiang")
    err = refused(engine, OutOfScope, lambda: engine.advance(inst.id, "investigate", "chen_jing"))
    assert str(err) == (f"chen_jing may not take 'investigate': instance {inst.id} is assigned to wang_li "
                        f"(a supervisor may: {SUPERVISORS})")
    # ... while wang_li (buildings 1 and 2) works on it: it is assigned to her.
    assert engine.advance(inst.id, "investigate", "wang_li").assignee == "wang_li"


def test_a_supervisor_may_act_on_any_case_of_any_building(engine) -> None:  # type: ignore[no-untyped-def]
    for unit in ("3-1201", "5-0502", "8-0101"):
        inst = complaint(engine, unit)
        assert engine.advance(inst.id, "investigate", "li_qiang").state == "investigating"
        assert engine.record(inst.id, "zhang_hua", {"contact": "13900000000"}).data["contact"] == "13900000000"


def test_a_steward_claims_from_the_building_3_queue_but_not_from_building_5s(engine, queued) -> None:  # type: ignore[no-untyped-def]
    b3, b5 = queued
    err = refused(engine, OutOfScope, lambda: engine.claim(b5, "chen_jing"))
    assert str(err) == out_of_scope("chen_jing", f"claim instance {b5}", b5, "5", "3, 4")
    refused(engine, OutOfScope, lambda: engine.advance(b5, "investigate", "chen_jing"))
    assert engine.claim(b3, "chen_jing").assignee == "chen_jing"
    assert engine.claim(b5, "zhao_lei").assignee == "zhao_lei"


def test_an_unassigned_case_of_the_stewards_building_is_theirs_to_act_on(engine, queued) -> None:  # type: ignore[no-untyped-def]
    b3, _ = queued
    assert engine.advance(b3, "investigate", "chen_jing").state == "investigating"


def test_a_case_without_a_building_is_in_every_stewards_scope(engine) -> None:  # type: ignore[no-untyped-def]
    anonymous = engine.start("complaint", "liu_fang", {**COMPLAINT, "anonymous": True, "owner_name": None,
                                                       "contact": None})
    assert (anonymous.assignee, anonymous.data.get("unit")) == (None, None)
    assert engine.advance(anonymous.id, "investigate", "chen_jing").state == "investigating"


def test_a_stewards_inbox_shows_their_tasks_and_only_their_buildings_queue(engine, queued) -> None:  # type: ignore[no-untyped-def]
    b3, b5 = queued
    elsewhere = complaint(engine, "5-0601")
    engine.assign(elsewhere.id, "chen_jing", "li_qiang")   # a supervisor gives her a building-5 case
    assert [i.id for i in engine.tasks("chen_jing")] == [b3, elsewhere.id]
    assert [i.id for i in engine.tasks("zhao_lei")] == [b5]
    assert [i.id for i in engine.tasks(role="steward")] == [b3, b5]   # the role's whole queue


def test_staff_without_buildings_keep_acting_on_any_building(engine) -> None:  # type: ignore[no-untyped-def]
    repair = engine.start("repair", "liu_fang", {"unit": "5-0502", "owner_name": "李女士", "contact": "13912345678",
                                                 "channel": "phone", "content": "水龙头漏水"})
    assert repair.assignee == "liu_fang"
    # 周敏 at the front desk dispatches her colleague's building-5 request; engineering takes it.
    repair = engine.advance(repair.id, "dispatch", "zhou_min")
    assert (repair.state, repair.assignee, repair.assignee_role) == ("engineering", None, "engineering")
    assert engine.claim(repair.id, "wu_gang").assignee == "wu_gang"


def test_the_engines_own_steps_are_not_building_scoped(engine, clock) -> None:  # type: ignore[no-untyped-def]
    inst = complaint(engine, "5-0502")
    clock.advance(timedelta(days=2))
    assert engine.tick(clock.now())                        # the reply SLA warns and breaches
    assert engine.show(inst.id).clocks["reply"].status is ClockStatus.BREACHED
    engine.assign(inst.id, "chen_jing", "li_qiang")        # she covers building 5 this week
    engine.advance(inst.id, "reply", "chen_jing", {"reply_method": "phone", "reply_summary": "已安排维修"})
    done = engine.advance(inst.id, "resolve", "chen_jing", {"handling_result": "已修复"})
    assert done.children                                   # the callback, started by the engine
    assert engine.replay(inst.id).ok


def test_staff_without_buildings_are_not_building_scoped(engine) -> None:  # type: ignore[no-untyped-def]
    assert engine.org.building_scope("liu_fang") is None       # front desk
    assert engine.org.building_scope("wu_gang") is None        # engineering
    assert engine.org.building_scope("li_qiang") is None       # a supervisor
    assert engine.org.building_scope("chen_jing") == ("3", "4")


# ------------------------------------------------------------------ the org file says who supervises and audits

def test_the_shipped_org_file_says_who_supervises_and_audits() -> None:
    org = load_org(ORG)
    assert "supervisors:" in ORG.read_text(encoding="utf-8")
    assert org.supervising_roles == ("cs_supervisor", "office_director", "cs_department", "deputy_manager",
                                     "general_manager")
    assert org.auditing_roles == (*org.supervising_roles, "archive_keeper")


def test_without_supervisors_or_auditors_the_org_file_keeps_todays_roles(tmp_path: Path) -> None:
    org = load_org(org_file(tmp_path, "org.yaml"))
    assert org.supervising_roles == DEFAULT_SUPERVISORS
    assert org.auditing_roles == (*DEFAULT_SUPERVISORS, "archive_keeper")
    own = OrgSpec.model_validate({"site": {"name": "x"}, "roles": {"front_desk": "前台", "cs_supervisor": "主管"},
                                  "staff": [{"id": "a", "name": "甲", "roles": ["front_desk"]}]})
    assert (own.supervising_roles, own.auditing_roles) == (("cs_supervisor",), ("cs_supervisor",))


def test_an_org_file_with_supervisors_changes_who_may(tmp_path: Path, settings: Settings, clock: Any) -> None:
    path = org_file(tmp_path, "org.yaml", "supervisors: [cs_supervisor, steward]\nauditors: [finance]\n")
    engine = build_engine(Settings(settings.db, settings.procedures, path), clock)
    inst = complaint(engine, "5-0502")
    # Stewards supervise on this site: chen_jing may work on building 5's case ...
    assert engine.advance(inst.id, "investigate", "chen_jing").state == "investigating"
    assert engine.org.building_scope("chen_jing") is None
    # ... and the office director no longer assigns.
    err = refused(engine, NotAuthorized, lambda: engine.assign(inst.id, "wang_li", "zhang_hua"))
    assert str(err) == f"zhang_hua may not assign instance {inst.id}: needs one of the roles cs_supervisor, steward"
    assert engine.org.auditing_roles == ("finance",)


@pytest.mark.parametrize("key", ["supervisors", "auditors"])
def test_an_unknown_role_in_supervisors_or_auditors_is_a_located_error(tmp_path: Path, key: str) -> None:
    path = org_file(tmp_path, "org.yaml", f"{key}: [cs_supervisor, cs_supervsor]\n")
    line = path.read_text(encoding="utf-8").splitlines().index(f"{key}: [cs_supervisor, cs_supervsor]") + 1
    col = len(f"{key}: [cs_supervisor, ") + 1
    with pytest.raises(ProcedureError) as e:
        load_org(path)
    assert str(e.value) == f"{path}:{line}:{col}: {key}[1]: unknown role 'cs_supervsor' (did you mean 'cs_supervisor'?)"


def test_the_cli_reports_an_unknown_supervising_role_where_it_is_written(runner: CliRunner, tmp_path: Path) -> None:
    path = org_file(tmp_path, "org.yaml", "supervisors:\n  - cs_supervisor\n  - janitor\n")
    line = path.read_text(encoding="utf-8").splitlines().index("  - janitor") + 1
    r = runner.invoke(main, ["--org", str(path), "tasks", "--as", "chen_jing"])
    assert (r.exit_code, r.stdout) == (1, "")
    assert r.stderr == f"{path}:{line}:5: supervisors[1]: unknown role 'janitor'\n"


# ------------------------------------------------------------------ the CLI

def test_the_cli_refuses_a_steward_another_buildings_case_and_writes_nothing(runner: CliRunner, engine) -> None:  # type: ignore[no-untyped-def]
    inst = complaint(engine, "5-0502")
    engine.close()
    before = tables(engine)
    r = runner.invoke(main, ["advance", str(inst.id), "investigate", "--as", "chen_jing"])
    assert r.exit_code == 1 and tables(engine) == before
    assert r.stderr == "error: " + out_of_scope("chen_jing", "take 'investigate'", inst.id, "5", "3, 4",
                                                "zhao_lei") + "\n"


def test_sop_tasks_shows_a_steward_only_their_buildings_queue(runner: CliRunner, engine, queued) -> None:  # type: ignore[no-untyped-def]
    b3, b5 = queued
    ids = lambda argv: [t["id"] for t in json.loads(runner.invoke(main, ["--json", "tasks", *argv]).stdout)]  # noqa: E731
    assert ids(["--as", "chen_jing"]) == [b3]
    assert ids(["--as", "zhao_lei"]) == [b5]


# ------------------------------------------------------------------ the HTTP API

def test_the_api_answers_403_with_the_building_and_writes_nothing(api) -> None:  # type: ignore[no-untyped-def]
    inst = complaint(api.engine, "5-0502")
    n = api.history_length(inst.id)
    r = api.as_("chen_jing").post(f"/v1/instances/{inst.id}/actions/investigate", json={})
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["code"] == "forbidden"
    assert body["message"] == out_of_scope("chen_jing", "take 'investigate'", inst.id, "5", "3, 4", "zhao_lei")
    assert body["allowed_roles"] == list(DEFAULT_SUPERVISORS)
    assert api.history_length(inst.id) == n
    assert api.as_("li_qiang").post(f"/v1/instances/{inst.id}/actions/investigate", json={}).status_code == 200


def test_the_api_inbox_shows_a_steward_only_their_buildings_queue(api, queued) -> None:  # type: ignore[no-untyped-def]
    b3, b5 = queued
    ids = lambda r: [i["id"] for i in r.json()["items"]]  # noqa: E731
    assert ids(api.as_("chen_jing").get("/v1/tasks")) == [b3]
    assert ids(api.as_("chen_jing").get("/v1/tasks", params={"role": "steward"})) == [b3]
    assert ids(api.as_("li_qiang").get("/v1/tasks", params={"staff": "chen_jing"})) == [b3]
    assert ids(api.as_("li_qiang").get("/v1/tasks", params={"role": "steward"})) == [b3, b5]
    r = api.as_("chen_jing").post(f"/v1/instances/{b5}/claim", json={})
    assert r.status_code == 403 and "instance 2 is in building 5, not one of yours (3, 4)" in r.json()["message"]


# ------------------------------------------------------------------ the web pages

def test_the_web_inbox_and_case_pages_keep_a_steward_to_their_buildings(web: Web, queued) -> None:
    b3, b5 = queued
    revision = str(web.engine.show(b5).revision)
    c = web.login("chen_jing")
    inbox = c.get("/").text
    assert f'href="/instances/{b3}"' in inbox and f'href="/instances/{b5}"' not in inbox
    page = c.get(f"/instances/{b5}").text
    assert 'id="act-investigate"' not in page and f'/instances/{b5}/claim' not in page
    assert "此单属于 5 栋，不在您负责的楼栋（3、4 栋）内。如需处理请由客服主管" in page
    form = c.get(f"/instances/{b5}/act/investigate").text
    assert "此单属于 5 栋，不在您负责的楼栋（3、4 栋）内" in form
    r = c.post(f"/instances/{b5}/act/investigate", data={"csrf": csrf_of(page), "revision": revision})
    assert r.status_code == 403
    assert "此单属于 5 栋，不在您负责的楼栋（3、4 栋）内" in r.text and "未保存任何内容" in r.text
    assert str(web.engine.show(b5).revision) == revision
    r = c.post(f"/instances/{b5}/claim", data={"csrf": csrf_of(c.get("/").text), "revision": revision},
               follow_redirects=True)
    assert "认领 #2 未成功" in r.text and web.engine.show(b5).assignee is None
    assert 'id="act-investigate"' in c.get(f"/instances/{b3}").text
