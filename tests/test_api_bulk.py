"""``POST /v1/instances/bulk``: a month's fee cycle through the API (FEE-1), all or nothing,
as ``sop start fee_cycle --each FILE`` does it."""
from __future__ import annotations

from typing import Any

from tests.api_support import Api, api, issue_tokens  # noqa: F401  (fixture)
from test_bulk_start import FEE_AT, month

BULK = "/v1/instances/bulk"


def _finance(api: Api) -> Any:  # type: ignore[no-untyped-def]
    api.tokens.update(issue_tokens(api.engine, ("lin_cai",)))
    return api.as_("lin_cai")


def _count(api: Api) -> int:
    with api.engine.read() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM instances").scalar_one())


def test_rule_FEE_1_a_months_fee_cycle_starts_in_one_request_and_a_resend_starts_nothing(api: Api) -> None:
    finance = _finance(api)
    rows = [{"data": row, "external_key": f"fee:2025-10:{row['unit']}"} for row in month()]
    body = {"procedure": "fee_cycle", "rows": rows, "at": FEE_AT.isoformat()}
    r = finance.post(BULK, json=body)
    assert r.status_code == 201, r.text
    got = r.json()
    assert (got["procedure"], got["started"], got["existing"]) == ("fee_cycle", len(rows), 0)
    for item, row in zip(got["instances"], rows):
        shown = api.engine.show(item["id"])
        assert shown.data["unit"] == row["data"]["unit"] and shown.state == item["state"] == "billing"
        assert shown.revision == item["revision"] and item["existing"] is False
    again = finance.post(BULK, json=body).json()  # the external keys make a resend harmless
    assert (again["started"], again["existing"]) == (0, len(rows))
    assert [i["id"] for i in again["instances"]] == [i["id"] for i in got["instances"]]
    assert _count(api) == len(rows) and api.engine.verify()[2] is None


def test_refused_rows_are_named_by_their_index_and_nothing_starts(api: Api) -> None:
    finance = _finance(api)
    rows = [{"data": row} for row in month(3)]
    rows[1]["data"] = {**rows[1]["data"], "unit": "no such unit"}
    rows[0]["external_key"] = rows[2]["external_key"] = "fee:2025-10:same"
    r = finance.post(BULK, json={"procedure": "fee_cycle", "rows": rows, "at": FEE_AT.isoformat()})
    assert r.status_code == 422, r.text
    paths = {e["path"] for e in r.json()["errors"]}
    assert paths == {"rows.2.external_key"}  # the keys are checked first, for the whole batch
    del rows[2]["external_key"]
    r = finance.post(BULK, json={"procedure": "fee_cycle", "rows": rows, "at": FEE_AT.isoformat()})
    assert r.status_code == 422 and r.json()["code"] == "form_invalid"
    assert {e["path"] for e in r.json()["errors"]} == {"rows.1.data.unit"}
    assert _count(api) == 0


def test_bulk_start_needs_a_start_role_and_a_known_procedure(api: Api) -> None:
    rows = [{"data": row} for row in month(1)]
    steward = api.as_("chen_jing")
    r = steward.post(BULK, json={"procedure": "fee_cycle", "rows": rows})
    assert r.status_code == 403 and "finance" in r.json()["allowed_roles"]
    r = _finance(api).post(BULK, json={"procedure": "fee_cylce", "rows": rows})
    assert r.status_code == 404 and r.json()["errors"][0]["path"] == "procedure"
    assert _count(api) == 0
