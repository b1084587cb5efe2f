"""Every error code of the API, over real HTTP: JSON with a stable ``code`` and a message,
and a refused write leaves the log exactly as it was."""
from __future__ import annotations

import httpx

from tests.api_support import COMPLAINT, Api, api  # noqa: F401  (fixture)


def error(r: httpx.Response, status: int, code: str) -> dict:  # type: ignore[type-arg]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["code"] == code and body["message"], body
    return body


def test_401_without_a_token_or_with_a_bad_one(api: Api) -> None:
    for client in (api.anonymous(), api.as_("liu_fang", authorization="Basic bGl1OmZhbmc=")):
        r = client.get("/v1/me")
        error(r, 401, "unauthenticated")
        assert r.headers["www-authenticate"].startswith("Bearer")
    client = httpx.Client(base_url=api.url, headers={"Authorization": "Bearer sop_not-a-real-token"})
    error(client.post("/v1/instances", json={"procedure": "complaint", "data": COMPLAINT}), 401, "invalid_token")
    client.close()
    assert api.engine.verify()[0] == 0  # nothing was started


def test_403_role_not_allowed_writes_nothing(api: Api) -> None:
    inst = api.start_complaint()
    before = api.history_length(inst["id"])
    body = error(api.as_("liu_fang").post(f"/v1/instances/{inst['id']}/actions/investigate", json={}),
                 403, "forbidden")
    assert "steward" in body["allowed_roles"]
    error(api.as_("wu_gang").post("/v1/instances", json={"procedure": "complaint", "data": COMPLAINT}),
          403, "forbidden")
    error(api.as_("chen_jing").post(f"/v1/instances/{inst['id']}/assign", json={"assignee": "wang_li"}),
          403, "forbidden")
    error(api.as_("chen_jing").get("/v1/audit/verify"), 403, "forbidden")
    error(api.as_("chen_jing").get("/v1/tasks", params={"staff": "wang_li"}), 403, "forbidden")
    assert api.history_length(inst["id"]) == before
    assert api.engine.show(inst["id"]).revision == inst["revision"]
    assert api.engine.verify()[0] == 1  # the refused start left no instance behind


def test_404_for_unknown_instance_procedure_form_and_route(api: Api) -> None:
    c = api.as_("chen_jing")
    error(c.get("/v1/instances/999"), 404, "not_found")
    error(c.post("/v1/instances/999/actions/investigate", json={}), 404, "not_found")
    error(c.get("/v1/procedures/no_such_thing"), 404, "not_found")
    error(c.get("/v1/procedures/complaint/forms/no_such_form"), 404, "not_found")
    error(c.get("/v1/procedures/complaint", params={"version": "abc123"}), 404, "not_found")
    error(api.as_("liu_fang").post("/v1/instances", json={"procedure": "no_such_thing", "data": {}}),
          404, "not_found")
    error(c.get("/v1/nowhere"), 404, "not_found")


def test_409_stale_if_match_writes_nothing_and_a_fresh_one_succeeds(api: Api) -> None:
    inst = api.start_complaint()
    c = api.as_("chen_jing")
    r = c.get(f"/v1/instances/{inst['id']}")
    etag = r.headers["etag"]
    assert etag == f'"{inst["revision"]}"'
    ok = c.post(f"/v1/instances/{inst['id']}/data", json={"data": {"contact": "13900000000"}},
                headers={"If-Match": etag})
    assert ok.status_code == 200 and ok.headers["etag"] != etag
    length = api.history_length(inst["id"])
    body = error(c.post(f"/v1/instances/{inst['id']}/actions/investigate", json={}, headers={"If-Match": etag}),
                 409, "conflict")
    assert "revision" in body["message"]
    assert api.history_length(inst["id"]) == length
    r = c.post(f"/v1/instances/{inst['id']}/actions/investigate", json={}, headers={"If-Match": ok.headers["etag"]})
    assert r.status_code == 200 and r.json()["state"] == "investigating"
    error(c.post(f"/v1/instances/{inst['id']}/actions/investigate", json={}), 409, "action_not_allowed")


def test_304_when_the_client_already_has_the_revision(api: Api) -> None:
    inst = api.start_complaint()
    c = api.as_("chen_jing")
    r = c.get(f"/v1/instances/{inst['id']}", headers={"If-None-Match": f'"{inst["revision"]}"'})
    assert r.status_code == 304 and r.headers["etag"] == f'"{inst["revision"]}"'


def test_422_names_the_failing_fields(api: Api) -> None:
    inst = api.start_complaint()
    c = api.as_("chen_jing")
    body = error(c.post(f"/v1/instances/{inst['id']}/actions/reply", json={"data": {"reply_method": "fax"}}),
                 422, "form_invalid")
    assert {e["path"] for e in body["errors"]} == {"data.reply_method", "data.reply_summary"}
    body = error(c.post(f"/v1/instances/{inst['id']}/actions/investigate",
                        json={"at": "2025-09-30T10:00:00", "colour": "red"}), 422, "validation_failed")
    assert {(e["path"], e["in"]) for e in body["errors"]} == {("at", "body"), ("colour", "body")}
    body = error(c.get("/v1/instances", params={"limit": 0}), 422, "validation_failed")
    assert body["errors"][0]["path"] == "limit" and body["errors"][0]["in"] == "query"
    for bad in ("yesterday", '"\u00b2"'):  # not a number; a digit Python knows but int() does not take
        body = error(c.post(f"/v1/instances/{inst['id']}/actions/investigate", json={},
                            headers={"If-Match": bad.encode("latin-1")}), 422, "validation_failed")
        assert body["errors"][0]["path"] == "If-Match"
    body = error(c.post(f"/v1/instances/{inst['id']}/actions/investigate", json={"at": "2025-09-30T08:00:00+08:00"}),
                 422, "time_order")
    assert body["errors"][0]["path"] == "at"
    body = error(api.as_("li_qiang").post(f"/v1/instances/{inst['id']}/assign", json={"assignee": "nobody"}),
                 422, "unknown_staff")
    assert body["errors"][0]["path"] == "assignee"
    lone_surrogate = b'{"data": {"contact": "x\\ud800"}}'  # valid JSON, not valid text
    body = error(c.post(f"/v1/instances/{inst['id']}/data", content=lone_surrogate,
                        headers={"content-type": "application/json"}), 422, "validation_failed")
    assert "data.contact" in body["errors"][0]["message"]
    error(c.post(f"/v1/instances/{inst['id']}/data", content=b"{not json",
                 headers={"content-type": "application/json"}), 422, "validation_failed")
    assert api.history_length(inst["id"]) == inst["revision"]


def test_413_body_over_the_limit_writes_nothing(api: Api) -> None:
    big = {"procedure": "complaint", "data": {**COMPLAINT, "content": "漏" * 40_000}}
    error(api.as_("liu_fang").post("/v1/instances", json=big), 413, "payload_too_large")
    assert api.engine.verify()[0] == 0


def test_idempotency_key_returns_the_first_result_and_writes_nothing_new(api: Api) -> None:
    c = api.as_("liu_fang", idempotency_key="intake-0930-001")
    first = c.post("/v1/instances", json={"procedure": "complaint", "data": COMPLAINT})
    again = c.post("/v1/instances", json={"procedure": "complaint", "data": COMPLAINT})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["etag"] == first.headers["etag"]
    assert again.headers["idempotent-replayed"] == "true" and again.headers["location"] == first.headers["location"]
    assert api.engine.verify()[0] == 1

    iid = first.json()["id"]
    s = api.as_("chen_jing", idempotency_key="investigate-1")
    one = s.post(f"/v1/instances/{iid}/actions/investigate", json={})
    length = api.history_length(iid)
    two = s.post(f"/v1/instances/{iid}/actions/investigate", json={})
    assert one.status_code == two.status_code == 200 and two.json() == one.json()
    assert api.history_length(iid) == length
    body = error(s.post(f"/v1/instances/{iid}/data", json={"data": {"contact": "13900000000"}}),
                 422, "idempotency_key_reused")
    assert body["errors"][0]["path"] == "Idempotency-Key"
    assert api.history_length(iid) == length
    # keys belong to one staff member: the same key from someone else is a new request
    other = api.as_("li_qiang", idempotency_key="investigate-1").post(f"/v1/instances/{iid}/claim", json={})
    assert other.status_code == 409 and other.json()["code"] == "action_not_allowed"


def test_idempotency_keys_are_forgotten_after_24_hours_by_the_background_sweep(api: Api) -> None:
    from datetime import timedelta

    from engine.runtime.worker import prune_once

    c = api.as_("liu_fang", idempotency_key="intake-0930-002")
    first = c.post("/v1/instances", json={"procedure": "complaint", "data": COMPLAINT})
    assert first.status_code == 201
    api.engine.clock.advance(timedelta(hours=23))
    assert prune_once(api.engine) == 0
    assert c.post("/v1/instances", json={"procedure": "complaint", "data": COMPLAINT}).headers[
        "idempotent-replayed"] == "true"
    api.engine.clock.advance(timedelta(hours=2))
    assert prune_once(api.engine) == 1
    again = c.post("/v1/instances", json={"procedure": "complaint", "data": COMPLAINT})
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
