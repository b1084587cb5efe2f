"""Shared by the API tests: the app under a real uvicorn server on 127.0.0.1, and tokens.

(No tests here; the API test modules import the ``api`` fixture from this module.)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import httpx
import pytest

from engine.api import create_app
from engine.api.server import BackgroundServer
from engine.store import tokens

STAFF = ("liu_fang", "chen_jing", "wang_li", "li_qiang", "zhang_hua", "gao_ya", "wu_gang")

COMPLAINT = {"unit": "3-1201", "owner_name": "王先生", "contact": "13912345678", "channel": "phone",
             "content": "楼上漏水", "anonymous": False}
ISO_WITH_OFFSET = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"


@dataclass
class Api:
    url: str
    engine: Any
    tokens: dict[str, str]
    clients: list[httpx.Client] = field(default_factory=list)

    def as_(self, staff: str, **headers: str) -> httpx.Client:
        """A client acting as ``staff`` (extra headers with ``_`` for ``-``)."""
        h = httpx.Headers({"Authorization": f"Bearer {self.tokens[staff]}"})
        for k, v in headers.items():
            h[k.replace("_", "-")] = v
        c = httpx.Client(base_url=self.url, headers=h, timeout=30)
        self.clients.append(c)
        return c

    def anonymous(self) -> httpx.Client:
        c = httpx.Client(base_url=self.url, timeout=30)
        self.clients.append(c)
        return c

    def start_complaint(self, staff: str = "liu_fang", **changes: Any) -> dict[str, Any]:
        r = self.as_(staff).post("/v1/instances", json={"procedure": "complaint", "data": {**COMPLAINT, **changes}})
        assert r.status_code == 201, r.text
        return r.json()

    def history_length(self, instance_id: int) -> int:
        return len(self.engine.history(instance_id))


def issue_tokens(engine: Any, staff: tuple[str, ...] = STAFF) -> dict[str, str]:
    out = {}
    with engine.transaction() as conn:
        for s in staff:
            out[s] = tokens.create(conn, s, engine.clock.now(), "test")[1]
    return out


@pytest.fixture
def api(engine: Any) -> Iterator[Api]:  # type: ignore[misc]
    app = create_app(engine, max_body_bytes=64 * 1024)
    with BackgroundServer(app) as url:
        a = Api(url, engine, issue_tokens(engine))
        yield a
        for c in a.clients:
            c.close()
