"""Identity: `sop staff token create` prints a token once and stores only its hash;
`revoke` ends it; each API call acts as that staff member."""
from __future__ import annotations

import json

import httpx
import sqlalchemy as sa

from cli import main
from tests.api_support import Api, api  # noqa: F401  (fixture)

from engine.store import tokens


def test_a_created_token_is_shown_once_stored_hashed_and_revocable(api: Api, runner) -> None:  # type: ignore[no-untyped-def]
    r = runner.invoke(main, ["staff", "token", "create", "zhang_hua", "--label", "phone"])
    assert r.exit_code == 0, r.output
    token = r.stdout.strip()
    assert token.startswith("sop_") and len(token) > 40
    with api.engine.read() as conn:
        stored = [tuple(row) for row in conn.execute(sa.select(tokens.T))]
    assert token not in repr(stored) and tokens.hash_token(token) in repr(stored)

    listed = runner.invoke(main, ["--json", "staff", "token", "list", "zhang_hua"])
    assert token not in listed.stdout
    assert [t["label"] for t in json.loads(listed.stdout)] == ["test", "phone"]  # the fixture's, and this one

    client = httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {token}"})
    assert client.get("/v1/me").json()["id"] == "zhang_hua"
    assert runner.invoke(main, ["staff", "token", "revoke", "zhang_hua"]).exit_code == 0
    r401 = client.get("/v1/me")
    assert r401.status_code == 401 and r401.json()["code"] == "invalid_token"
    assert api.as_("chen_jing").get("/v1/me").status_code == 200  # other people's tokens live on
    client.close()


def test_tokens_only_for_people_in_the_org_file(api: Api, runner) -> None:  # type: ignore[no-untyped-def]
    r = runner.invoke(main, ["staff", "token", "create", "nobody"])
    assert r.exit_code == 1 and "nobody" in r.output
    with api.engine.transaction() as conn:  # a token of someone who has since left the org file
        _, stale = tokens.create(conn, "left_last_year", api.engine.clock.now())
    r = httpx.get(f"{api.url}/v1/me", headers={"Authorization": f"Bearer {stale}"})
    assert r.status_code == 401 and r.json()["code"] == "invalid_token"
    assert runner.invoke(main, ["staff", "token", "revoke", "chen_jing", "--id", "999"]).exit_code == 1
