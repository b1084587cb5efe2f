"""Shared by the web app's tests: the whole app (API + pages) under a real uvicorn server,
staff tokens, and an httpx client logged in through the login form like a browser.

(No tests here; ``test_web_pages`` and ``test_web_browser`` import the ``web`` fixture.)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from engine.api import create_app
from engine.api.server import BackgroundServer
from tests.api_support import COMPLAINT, issue_tokens

STAFF = ("liu_fang", "chen_jing", "wang_li", "li_qiang", "zhang_hua", "gao_ya", "wu_gang")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Web:
    url: str
    engine: Any
    tokens: dict[str, str]
    files: Path
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self) -> httpx.Client:
        c = httpx.Client(base_url=self.url, timeout=30)
        self.clients.append(c)
        return c

    def login(self, staff: str, secret: str | None = None) -> httpx.Client:
        """A client with a session of ``staff`` (logged in with their token unless ``secret``)."""
        c = self.client()
        r = c.post("/login", data={"csrf": csrf_of(c.get("/login").text), "staff": staff,
                                   "secret": secret or self.tokens[staff], "next": "/"})
        assert r.status_code == 303, r.text
        return c

    def start_complaint(self, staff: str = "liu_fang", **changes: Any) -> Any:
        return self.engine.start("complaint", staff, {**COMPLAINT, **changes})


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m, "no CSRF field on the page"
    return m.group(1)


@pytest.fixture
def web(engine: Any, tmp_path: Path) -> Iterator[Web]:  # type: ignore[misc]
    files = tmp_path / "files"
    app = create_app(engine, max_body_bytes=64 * 1024, web_options={"files_dir": files, "secret": "test-secret"})
    with BackgroundServer(app) as url:
        w = Web(url, engine, issue_tokens(engine, STAFF), files)
        yield w
        for c in w.clients:
            c.close()
