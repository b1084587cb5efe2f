"""Everything the CLI does, through the HTTP API: a complaint from intake to its callback,
claim and assign, history (who did what), replay, audit, SLA report, procedures, forms."""
from __future__ import annotations

import json
import re

from cli import main
from test_api_support import COMPLAINT, ISO_WITH_OFFSET, Api, api  # noqa: F401  (fixture)


def test_a_complaint_through_the_api_matches_the_cli_and_records_who(api: Api, runner) -> None:  # type: ignore[no-untyped-def]
    inst = api.start_complaint("liu_fang")
    assert inst["assignee"] == "chen_jing" and inst["state"] == "received"
    steward = api.as_("chen_jing")
    inbox = steward.get("/v1/tasks").json()
    assert [t["id"] for t in inbox["items"]] == [inst["id"]] and inbox["total"] == 1

    iid = inst["id"]
    steps = [("investigate", {}), ("reply", {"reply_method": "phone", "reply_summary": "已安排工程部上门维修"}),
             ("resolve", {"handling_result": "已修复"})]
    etag = f'"{inst["revision"]}"'
    for action, data in steps:
        r = steward.post(f"/v1/instances/{iid}/actions/{action}", json={"data": data}, headers={"If-Match": etag})
        assert r.status_code == 200, r.text
        etag = r.headers["etag"]
    shown = steward.get(f"/v1/instances/{iid}")
    assert shown.headers["etag"] == etag
    view = shown.json()
    assert view["state"] == "resolved" and len(view["children"]) == 1

    cli = json.loads(runner.invoke(main, ["show", str(iid), "--json"]).stdout)
    assert view == cli  # the same fields, the same values as `sop show --json`
    for t in (view["started_at"], view["last_occurred_at"]):
        assert re.match(ISO_WITH_OFFSET, t) and t.endswith("+08:00")

    history = steward.get(f"/v1/instances/{iid}/history").json()
    actors = {(e["type"], e["actor"]) for e in history["items"]}
    assert ("InstanceStarted", "liu_fang") in actors and ("ActionTaken", "chen_jing") in actors
    assert history["total"] == len(history["items"]) == view["revision"]
    page = steward.get(f"/v1/instances/{iid}/history", params={"limit": 2, "offset": 1}).json()
    assert [e["seq"] for e in page["items"]] == [2, 3] and page["next_offset"] == 3

    replay = steward.get(f"/v1/instances/{iid}/replay").json()
    assert replay == {"instance": iid, "ok": True, "events": view["revision"], "seq": None, "difference": None}
    audit = api.as_("gao_ya").get("/v1/audit/verify").json()
    assert audit["ok"] and audit["instances"] == 2 and audit["broken"] is None
    sla = api.as_("li_qiang").get("/v1/reports/sla", params={"procedure": "complaint"}).json()
    assert {"procedure": "complaint", "sla": "reply", "assignee": None, "met": 1, "breached": 0, "open": 0,
            "provisional": 0, "compliance": 100.0} in sla


def test_claim_from_a_role_queue_and_assign_by_a_supervisor(api: Api) -> None:
    anonymous = api.start_complaint("liu_fang", anonymous=True, unit=None, owner_name=None, contact=None)
    assert anonymous["assignee"] is None and anonymous["assignee_role"] == "cs_supervisor"
    supervisor = api.as_("li_qiang")
    queue = supervisor.get("/v1/tasks", params={"role": "cs_supervisor"}).json()
    assert [t["id"] for t in queue["items"]] == [anonymous["id"]]
    claimed = supervisor.post(f"/v1/instances/{anonymous['id']}/claim")  # no body needed
    assert claimed.status_code == 200 and claimed.json()["assignee"] == "li_qiang"
    assert supervisor.get("/v1/tasks", params={"role": "cs_supervisor"}).json()["total"] == 0
    moved = supervisor.post(f"/v1/instances/{anonymous['id']}/assign", json={"assignee": "chen_jing"},
                            headers={"If-Match": claimed.headers["etag"]})
    assert moved.status_code == 200 and moved.json()["assignee"] == "chen_jing"
    who = [(e.type, e.actor) for e in api.engine.history(anonymous["id"])][-3:]
    # the reassignment keeps li_qiang, who had claimed it, watching (issue 14: watchers)
    assert who == [("Assigned", "li_qiang"), ("Assigned", "li_qiang"), ("WatcherAdded", "li_qiang")]
    assert moved.json()["watchers"] == ["li_qiang"]
    assert api.as_("chen_jing").get("/v1/tasks").json()["items"][0]["id"] == anonymous["id"]


def test_procedures_versions_and_form_schemas_for_rendering(api: Api) -> None:
    c = api.as_("liu_fang")
    me = c.get("/v1/me").json()
    assert me == {"id": "liu_fang", "name": "刘芳", "roles": ["front_desk"], "buildings": []}
    procedures = {p["id"]: p for p in c.get("/v1/procedures").json()}
    complaint = procedures["complaint"]
    assert complaint["versions"] == [{"version": complaint["version"], "current": True, "first_used_at": None}]
    inst = api.start_complaint()
    complaint = next(p for p in c.get("/v1/procedures").json() if p["id"] == "complaint")
    assert re.match(ISO_WITH_OFFSET, complaint["versions"][0]["first_used_at"])

    detail = c.get("/v1/procedures/complaint", params={"version": complaint["version"]}).json()
    assert detail["definition"]["start"]["form"] == "complaint_intake"
    assert "complaint_reply" in detail["forms"]

    start = c.get("/v1/procedures/complaint/forms/start").json()
    schema = start["json_schema"]
    assert start["id"] == "complaint_intake" and schema["type"] == "object"
    assert schema["properties"]["channel"]["x-option-labels"]["phone"] == "电话"
    assert schema["properties"]["unit"]["title"] == "房号" and schema["properties"]["unit"]["x-required-if"]
    assert "content" in schema["required"]

    reply = api.as_("chen_jing").get(f"/v1/instances/{inst['id']}/actions/reply/form").json()
    assert reply["version"] == inst["version"]
    assert set(reply["json_schema"]["required"]) >= {"reply_method", "reply_summary"}
    none = api.as_("chen_jing").get(f"/v1/instances/{inst['id']}/actions/investigate/form").json()
    assert none["definition"] is None and none["json_schema"]["properties"] == {}


def test_api_verify_checks_the_ledger_too_and_names_a_deleted_instance(api: Api, db_url: str) -> None:
    from tests.test_audit_ledger import delete_instance

    api.start_complaint()
    victim = api.start_complaint(unit="5-0101")["id"]
    auditor = api.as_("gao_ya")
    clean = auditor.get("/v1/audit/verify").json()
    assert clean["ok"] and clean["findings"] == [] and clean["ledger_rows"] >= 2
    api.engine.close()
    delete_instance(db_url, victim)          # every chain left is intact: only the ledger can tell
    found = auditor.get("/v1/audit/verify").json()
    assert found["ok"] is False and found["broken"] is None
    assert ("instance_deleted", victim) in {(f["kind"], f["instance"]) for f in found["findings"]}
