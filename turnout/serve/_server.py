"""Running the app under uvicorn: in the foreground (`turnout serve`) or on a thread (tests,
and programs that want a served model next to them)."""

from __future__ import annotations

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


def _server(app: Any, request_timeout_s: float, **config: Any) -> Any:
    import uvicorn

    from turnout.serve._deadlines import protocol_with_deadline

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
