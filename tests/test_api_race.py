"""Two clients race to take the same action on one instance: exactly one wins.

Both requests are released together from a barrier, each on its own connection, so they
reach the server concurrently (its thread pool runs them in parallel); the outcome does
not depend on who is first, so the test is deterministic.
"""
from __future__ import annotations

import threading
from typing import Any

import httpx

from tests.api_support import Api, api  # noqa: F401  (fixture)


def race(api: Api, requests: list[tuple[str, str, dict[str, Any], dict[str, str]]]) -> list[httpx.Response]:
    barrier = threading.Barrier(len(requests))
    results: list[Any] = [None] * len(requests)

    def one(i: int, staff: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        client = api.as_(staff)
        client.get("/v1/health")  # connect before the barrier, so both requests leave at once
        barrier.wait(timeout=10)
        results[i] = client.post(path, json=body, headers=headers)

    threads = [threading.Thread(target=one, args=(i, *req)) for i, req in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_two_clients_take_the_same_action_with_the_same_revision_one_wins(api: Api) -> None:
    inst = api.start_complaint()
    etag = f'"{inst["revision"]}"'
    path = f"/v1/instances/{inst['id']}/actions/investigate"
    responses = race(api, [("chen_jing", path, {}, {"If-Match": etag}),
                           ("li_qiang", path, {}, {"If-Match": etag})])
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409], [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json()["code"] == "conflict"
    taken = [e for e in api.engine.history(inst["id"]) if e.type == "ActionTaken"]
    assert len(taken) == 1
    assert api.engine.replay(inst["id"]).ok and api.engine.verify()[2] is None


def test_without_if_match_the_second_finds_the_action_gone(api: Api) -> None:
    inst = api.start_complaint()
    path = f"/v1/instances/{inst['id']}/actions/investigate"
    responses = race(api, [("chen_jing", path, {}, {}), ("li_qiang", path, {}, {})])
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    assert next(r for r in responses if r.status_code == 409).json()["code"] == "action_not_allowed"
    assert len([e for e in api.engine.history(inst["id"]) if e.type == "ActionTaken"]) == 1


def test_the_same_idempotent_request_sent_twice_at_once_is_done_once(api: Api) -> None:
    inst = api.start_complaint()
    path = f"/v1/instances/{inst['id']}/data"
    body = {"data": {"contact": "13900000000"}}
    key = {"Idempotency-Key": "phone-retry-7"}
    responses = race(api, [("chen_jing", path, body, key), ("chen_jing", path, body, key)])
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    assert responses[0].json() == responses[1].json()
    recorded = [e for e in api.engine.history(inst["id"]) if e.type == "DataRecorded" and e.actor == "chen_jing"]
    assert len(recorded) == 1
