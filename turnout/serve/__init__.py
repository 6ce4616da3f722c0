"""`turnout serve`: this machine's in-process engines behind an OpenAI-compatible HTTP API,
so one GPU box can serve sub-agent models to planners on other machines and to any tool
that speaks OpenAI's chat completions.

    app = create_app(settings)                  # a FastAPI app; run it under any ASGI server
    run_server(settings)                        # or: uvicorn on [serve] host/port, until Ctrl-C
    with serving(settings) as server:           # or: on a thread, on a free loopback port
        OpenAI(base_url=server.url, api_key="…")

Every request goes through turnout's door (`turnout.engines.complete` / `stream`), so it is
traced, metered and judged by the egress guard like any other call. Only in-process engines
are served, never a remote model; off loopback an API key is required. FastAPI and uvicorn
(`pip install 'turnout[serve]'`) are imported only when a server is made.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from turnout.config import Settings, get_settings
from turnout.errors import UserError
from turnout.serve._config import check_binding, served_models, serving_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from turnout.serve._server import Running


def require_server_packages() -> None:
    """Raise UserError naming the extra to install when FastAPI or uvicorn is missing."""
    missing = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"turnout serve needs {' and '.join(missing)}: pip install 'turnout[serve]'")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The OpenAI-compatible app over `settings` (default: the process-wide settings).

    Checks first, so a bad configuration fails before anything listens: the binding
    (off loopback only with `[serve] api_key`) and every served model (in-process and present).
    Engines read their own sections (`[llamacpp]`, …) from the process-wide settings."""
    require_server_packages()
    from turnout.serve._app import build_app

    return build_app(settings or get_settings())


def run_server(settings: Settings | None = None, *, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve on `[serve] host` and `port` until interrupted; `on_ready(base_url)` is called
    once the socket listens (with the real port when `port` is 0)."""
    from turnout.serve._server import run_app

    settings = settings or get_settings()
    run_app(create_app(settings), settings, on_ready)


@contextmanager
def serving(settings: Settings | None = None, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[Running]:
    """Run a server on a thread for the length of a `with` block (tests, notebooks, a
    program that wants its own served model); `.url` is the OpenAI base URL."""
    from turnout.serve._server import run_in_thread

    settings = settings or get_settings()
    settings = settings.model_copy(update={"serve": settings.serve.model_copy(update={"host": host, "port": port})})
    with run_in_thread(create_app(settings), host, port, settings.serve.request_timeout_s) as running:
        yield running


__all__ = [
    "check_binding",
    "create_app",
    "require_server_packages",
    "run_server",
    "served_models",
    "serving",
    "serving_settings",
]
