"""Slow and idle clients are cut off: a connection must send each request's headers within
`[serve] request_timeout_s` of connecting (or of its previous answer), and each part of its
body within the same time; otherwise it is closed (headers) or answered 408 (body).

uvicorn times out only the idle time after an answer (`timeout_keep_alive`); a connection that
opens and sends nothing, or sends its headers a byte at a time, it holds forever (1,500 were
held open in one try). The header deadline wraps uvicorn's own HTTP protocol (httptools when
installed, else h11): both create a request cycle (`cycle`) when a request's headers are
complete and call `on_response_complete` after each answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from turnout.serve._errors import ApiError


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


class BodyDeadline:
    """ASGI middleware: while a request body is still arriving, each part must come within
    `timeout_s`, else 408. Once the body is complete, `receive` is left alone (it then only
    reports a disconnect, which may come at any time during a long generation)."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False

        async def timed() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout(self.timeout_s):
                    message = await receive()
            except TimeoutError:
                raise ApiError(
                    408, f"The request body did not arrive within {self.timeout_s:g}s ([serve] request_timeout_s).",
                    code="request_timeout",
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await self.app(scope, timed, send)
