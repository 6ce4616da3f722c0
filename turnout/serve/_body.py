"""How a request body is received: never more than `[serve] max_body_bytes` (413), and never
slower than `[serve] request_timeout_s` per part (408).

The size limit answers at once when Content-Length says too much, and as soon as a body sent
without one (chunked) grows past it, so no client can make the server buffer more. The time
limit holds only while the body is still arriving: once it is complete, `receive` only
reports a disconnect, which may come at any time during a long generation.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from turnout.serve._errors import ApiError


def too_large(limit: int) -> ApiError:
    return ApiError(
        413, f"The request body is over this server's limit of {limit:,} bytes ([serve] max_body_bytes).",
        code="request_too_large",
    )


def too_slow(timeout_s: float) -> ApiError:
    return ApiError(
        408, f"The request body did not arrive within {timeout_s:g}s ([serve] request_timeout_s).",
        code="request_timeout",
    )


class RequestBody:
    """ASGI middleware; a limit passed mid-body raises ApiError out of `receive`, which the
    route's exception handler answers."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await too_large(self.max_bytes).response()(scope, receive, send)
            return
        received = 0
        complete = False

        async def limited() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout(self.timeout_s):
                    message = await receive()
            except TimeoutError:
                raise too_slow(self.timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large(self.max_bytes)
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, limited, send)


def _content_length(scope: Scope) -> int | None:
    headers: Any = scope.get("headers") or ()
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
