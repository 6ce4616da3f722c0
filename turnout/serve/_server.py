"""Running the app under uvicorn: in the foreground (`turnout serve`) or on a thread (tests,
and programs that want a served model next to them).

A connection must send each request's headers within `[serve] request_timeout_s` of
connecting (or of its previous answer), or it is closed. uvicorn times out only the idle time
after an answer (`timeout_keep_alive`); a connection that opens and sends nothing, or sends
its headers a byte at a time, it would hold forever (1,500 were held open in one try). The
deadline wraps uvicorn's own HTTP protocol (httptools when installed, else h11): both create
a request cycle (`cycle`) when a request's headers are complete, and call
`on_response_complete` after each answer. Bodies have their own deadline (`_body.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from turnout.config import Settings
from turnout.errors import UserError

GRACEFUL_SHUTDOWN_S = 5


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket already listening on host:port (port 0: any free one), so the address is
    known, and connections queue, before the server starts."""
    sock: socket.socket | None = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --host or --port") from None
    return sock


def base_url(sock: socket.socket) -> str:
    """The OpenAI base URL clients use for this socket (`http://host:port/v1`)."""
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"


def protocol_with_deadline(timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class, closing a connection whose request headers do not arrive in time."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # httptools is optional; h11 always comes with uvicorn
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base  # type: ignore[assignment]

    class HeaderDeadline(Base):  # type: ignore[misc, valid-type]
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            waiting_since = self.cycle  # a new request's headers replace it
            self._deadline = self.loop.call_later(timeout_s, self._expire, waiting_since)

        def _expire(self, waiting_since: Any) -> None:
            if self.cycle is waiting_since and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadline


def _server(app: Any, request_timeout_s: float, **config: Any) -> Any:
    import uvicorn

    return uvicorn.Server(uvicorn.Config(
        app, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, http=protocol_with_deadline(request_timeout_s), **config,
    ))


def run_app(app: Any, settings: Settings, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve `app` on `[serve] host/port` until interrupted (Ctrl-C, SIGTERM)."""
    sock = listening_socket(settings.serve.host, settings.serve.port)
    with contextlib.closing(sock):
        if on_ready is not None:
            on_ready(base_url(sock))
        _server(app, settings.serve.request_timeout_s, log_level="info").run(sockets=[sock])


@dataclass(frozen=True)
class Running:
    """A server running on a thread: `url` is its OpenAI base URL; `app` the FastAPI app."""

    url: str
    app: Any


@contextlib.contextmanager
def run_in_thread(app: Any, host: str, port: int, request_timeout_s: float) -> Iterator[Running]:
    sock = listening_socket(host, port)
    server = _server(app, request_timeout_s, log_config=None, log_level="warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="turnout-serve", daemon=True)
    thread.start()
    try:
        yield Running(base_url(sock), app)
    finally:
        server.should_exit = True
        thread.join(GRACEFUL_SHUTDOWN_S + 5)
        sock.close()
