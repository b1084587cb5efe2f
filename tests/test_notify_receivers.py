"""Real receivers on 127.0.0.1 for the notification tests (no tests here).

- :class:`HttpReceiver`: an HTTP server that records every request and, like a receiver
  that honours ``Idempotency-Key``, delivers each key once; it answers from a script.
- :class:`SmtpReceiver`: an aiosmtpd SMTP server with optional AUTH and scripted refusals.

Both bind their socket before serving, so the port is known at once and nothing polls.
"""
from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class HttpReceiver:
    """``with HttpReceiver() as rx:`` — ``rx.url``, ``rx.requests``, ``rx.delivered``."""

    def __init__(self, answers: Optional[list[tuple[int, Any]]] = None) -> None:
        self.answers = list(answers or [])  # consumed one per request; then 200 {"errcode": 0}
        self.requests: list[Received] = []
        self.delivered: dict[str, Received] = {}
        self.arrived = threading.Event()
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kind = self.headers.get("Content-Type", "")
                body: Any = json.loads(raw) if "json" in kind else raw.decode()
                receiver._record(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status, answer = receiver.answers.pop(0) if receiver.answers else (200, {"errcode": 0})
                payload = json.dumps(answer, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _record(self, r: Received) -> None:
        with self._changed:
            self.requests.append(r)
            key = r.headers.get("idempotency-key")
            if key and key not in self.delivered:
                self.delivered[key] = r
            self.arrived.set()
            self._changed.notify_all()

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        """Block until ``predicate(self)`` holds for what has arrived (False on timeout)."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    def __enter__(self) -> "HttpReceiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class SmtpHandler:
    refuse_rcpt: dict[str, str] = field(default_factory=dict)   # address -> reply, e.g. "550 no such user"
    data_replies: list[str] = field(default_factory=list)         # consumed per message, then "250 OK"
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: Any) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.data_replies:
            return self.data_replies.pop(0)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


class SmtpReceiver(Controller):
    """aiosmtpd on a socket bound before start; AUTH LOGIN/PLAIN when ``login`` is given."""

    def __init__(self, handler: SmtpHandler, login: Optional[tuple[str, str]] = None) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        kwargs: dict[str, Any] = {}
        if login:
            def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
                ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == login
                return AuthResult(success=ok, handled=False)
            kwargs = {"authenticator": check, "auth_require_tls": False}
        super().__init__(handler, hostname="127.0.0.1", port=self._sock.getsockname()[1], **kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)

    def __enter__(self) -> "SmtpReceiver":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
