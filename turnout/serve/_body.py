"""Request bodies over `[serve] max_body_bytes` are refused (413): at once when Content-Length
says so, and as soon as a body sent without one (chunked) grows past the limit, so no
client can make the server buffer more than that."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from turnout.serve._errors import ApiError


def too_large(limit: int) -> ApiError:
    return ApiError(
        413, f"The request body is over this server's limit of {limit:,} bytes ([serve] max_body_bytes).",
        code="request_too_large",
    )


class BodyLimit:
    """ASGI middleware; the streamed case raises ApiError(413) out of `receive`, which the
    route's exception handler answers."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await too_large(self.max_bytes).response()(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large(self.max_bytes)
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
