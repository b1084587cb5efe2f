"""The staff web app: server-rendered pages (Jinja2) in the API's own process and app.

``install(app)`` adds the pages to the FastAPI application ``sop serve`` runs: login
(``/login``), the inbox (``/``), starting a case (``/start``), an instance with its
diagram, timeline, clocks and forms (``/instances/{id}``), the auditors' verification
(``/instances/{id}/verify``) and the SLA dashboard (``/dashboard``, ``.xlsx``, ``.csv``).
Every page calls the same ``Engine`` methods and read models the JSON API does; there is
no second copy of any rule. Sessions are signed cookies (see :mod:`engine.web.session`);
uploads are kept by :class:`engine.web.evidence.EvidenceStore`.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from engine.web.evidence import EvidenceStore
from engine.web.session import SESSION_COOKIE, SESSION_SECONDS, CsrfRefused, LoginRequired
from engine.web.throttle import LoginThrottle

STATIC = Path(__file__).with_name("static")
SECRET_ENV = "SOP_WEB_SECRET"
FILES_ENV = "SOP_FILES"


def default_files_dir(store_url: str) -> Path:
    """Beside the SQLite file (``sop.db`` → ``sop-files/``), else ``./sop-files``."""
    if os.environ.get(FILES_ENV):
        return Path(os.environ[FILES_ENV])
    if store_url.startswith("sqlite:///") and ":memory:" not in store_url:
        db = Path(store_url.removeprefix("sqlite:///"))
        return db.with_name(db.stem + "-files")
    return Path("sop-files")


def install(app: FastAPI, engine: Any, files_dir: Optional[Path] = None, secret: Optional[str] = None,
            https_only: bool = False) -> None:
    """Add the web pages to ``app`` (the API's app, over ``engine``)."""
    from engine.web import record, reports, routes

    secret = secret or os.environ.get(SECRET_ENV) or secrets.token_urlsafe(32)
    app.state.evidence = EvidenceStore(files_dir or default_files_dir(engine.store_url))
    app.state.login_throttle = LoginThrottle()
    app.add_middleware(SessionMiddleware, secret_key=secret, session_cookie=SESSION_COOKIE,
                       max_age=SESSION_SECONDS, same_site="lax", https_only=https_only)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.include_router(routes.router)
    app.include_router(reports.router)
    app.include_router(record.router)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?next={quote(exc.next_url, safe='/')}", status_code=303)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> HTMLResponse:
        return HTMLResponse("<!doctype html><meta charset=utf-8><title>页面已过期</title>"
                            "<p>页面已过期或来源不明，未保存任何内容。请<a href='/'>返回</a>刷新后重试。</p>",
                            status_code=403)
