"""Paged lists with filters: procedure, state, assignee, building, overdue; inbox rules."""
from __future__ import annotations

from datetime import timedelta

from tests.api_support import Api, api  # noqa: F401  (fixture)


def ids(page: dict) -> list[int]:  # type: ignore[type-arg]
    return [i["id"] for i in page["items"]]


def test_pages_and_filters(api: Api) -> None:
    units = ["1-101", "3-1201", "3-502", "5-1", "3-9"]
    made = [api.start_complaint(unit=u)["id"] for u in units]
    c = api.as_("li_qiang")
    first = c.get("/v1/instances", params={"limit": 2}).json()
    assert ids(first) == made[::-1][:2] and first["total"] == 5 and first["next_offset"] == 2
    rest = c.get("/v1/instances", params={"limit": 2, "offset": 4}).json()
    assert ids(rest) == [made[0]] and rest["next_offset"] is None

    in_3 = c.get("/v1/instances", params={"building": "3"}).json()
    assert sorted(ids(in_3)) == [made[1], made[2], made[4]]
    assert {i["assignee"] for i in in_3["items"]} == {"chen_jing"}
    assert c.get("/v1/instances", params={"assignee": "wang_li"}).json()["total"] == 1
    assert c.get("/v1/instances", params={"procedure": "callback"}).json()["total"] == 0

    steward = api.as_("chen_jing")
    steward.post(f"/v1/instances/{made[2]}/actions/investigate", json={})
    investigating = c.get("/v1/instances", params={"state": "investigating"}).json()
    assert ids(investigating) == [made[2]]
    inbox = steward.get("/v1/tasks", params={"limit": 2}).json()
    assert inbox["total"] == 3 and ids(inbox) == [made[1], made[2]]  # oldest first
    assert ids(steward.get("/v1/tasks", params={"state": "received"}).json()) == [made[1], made[4]]
    assert c.get("/v1/tasks", params={"staff": "chen_jing"}).json()["total"] == 3  # a supervisor may look


def test_overdue_follows_the_sla_clock(api: Api) -> None:
    late = api.start_complaint(unit="3-1201")["id"]
    api.engine.clock.advance(timedelta(hours=2))
    on_time = api.start_complaint(unit="3-502")["id"]
    c = api.as_("li_qiang")
    assert c.get("/v1/instances", params={"overdue": True}).json()["total"] == 0

    api.as_("chen_jing").post(f"/v1/instances/{on_time}/actions/reply",
                              json={"data": {"reply_method": "phone", "reply_summary": "已答复"}})
    api.engine.clock.advance(timedelta(days=3))  # past the one-workday reply goal
    assert ids(c.get("/v1/instances", params={"overdue": True}).json()) == [late]  # due, not yet swept
    api.engine.tick(api.engine.clock.now())  # the sweep records the breach
    assert ids(c.get("/v1/instances", params={"overdue": True}).json()) == [late]
    assert ids(c.get("/v1/instances", params={"overdue": False}).json()) == [on_time]
    assert ids(api.as_("chen_jing").get("/v1/tasks", params={"overdue": True}).json()) == [late]
