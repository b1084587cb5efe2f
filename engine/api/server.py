"""Running the API under uvicorn: in the foreground (``sop serve``) or in a thread.

The listening socket is bound before uvicorn starts, so the port is known at once (port 0
picks a free one) and a client that connects early waits in the backlog instead of
being refused: no polling for "is it up yet".
"""
from __future__ import annotations

import contextlib
import signal
import socket
import threading
from typing import Any, Iterator, Optional

import uvicorn


class _Server(uvicorn.Server):
    """uvicorn, except that SIGINT/SIGTERM end :meth:`run` and return to the caller.

    Stock uvicorn re-raises the signal after its graceful shutdown, which kills the
    process before ``sop serve`` can stop its sweep and outbox threads.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _server(app: Any, log_level: str, access_log: bool) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level=log_level, access_log=access_log, lifespan="off",
                            timeout_graceful_shutdown=5, server_header=False)
    return _Server(config)


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run(app: Any, sock: socket.socket, log_level: str = "info") -> None:
    """Serve on a bound socket in the foreground until SIGINT/SIGTERM."""
    _server(app, log_level, access_log=True).run(sockets=[sock])


class BackgroundServer:
    """``with BackgroundServer(app) as url:`` — the app on 127.0.0.1, stopped on exit."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.sock = bind(host, port)
        self.server = _server(app, log_level, access_log=False)
        self.thread: Optional[threading.Thread] = None
        self.url = url_of(self.sock)

    def __enter__(self) -> str:
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="sop-api", daemon=True)
        self.thread.start()
        return self.url

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.sock.close()
