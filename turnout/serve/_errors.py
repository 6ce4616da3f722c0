"""Every failure as OpenAI's error body, `{"error": {message, type, param, code}}`, so the
OpenAI SDKs raise their usual exceptions (BadRequestError, RateLimitError, …) with our
message; never FastAPI's 422 shape, never a traceback."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

from turnout.engines._provider import litellm_module
from turnout.errors import (
    EngineUnavailable,
    ModelBehaviorError,
    PromptTooLong,
    TurnoutError,
    UserError,
)

logger = logging.getLogger("turnout.serve")


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ApiError(Exception):
    """An answer other than success, with the status and OpenAI error fields to send."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(message=message, type=type, param=param, code=code)
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.body.model_dump()}, status_code=self.status, headers=self.headers)

    def sse(self) -> str:
        """The error as a server-sent event, for failures after a stream has started (the
        OpenAI SDKs raise APIError on an event that carries `error`)."""
        return f"data: {json.dumps({'error': self.body.model_dump()})}\n\n"


def _param(loc: Sequence[int | str]) -> str:
    """`('messages', 0, 'role')` → `messages[0].role`, as OpenAI names parameters."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def invalid_request(errors: Sequence[Mapping[str, Any]]) -> ApiError:
    """The first validation error of a request body, in OpenAI's words."""
    error = errors[0]
    loc = [part for part in error.get("loc", ()) if part != "body"]
    param = _param(loc) or None
    message = str(error.get("msg", "invalid request")).removeprefix("Value error, ")
    kind = error.get("type")
    if kind == "missing":
        return ApiError(400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    if kind == "extra_forbidden":
        return ApiError(400, f"Unrecognized request argument supplied: {param}", param=param, code="unknown_parameter")
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    where = f"Invalid '{param}': " if param else "Invalid request: "
    return ApiError(400, f"{where}{message}{more}", param=param, code="invalid_value")


_CONTEXT_WINDOW = re.compile(r"[^\n]*exceeds? (the )?context (window|length)[^\n]*", re.IGNORECASE)


def _too_long(exc: BaseException) -> str | None:
    """The engine's own words, when it refused a prompt longer than its context window
    (llama.cpp raises a ValueError, which litellm wraps)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if match := _CONTEXT_WINDOW.search(str(current)):
            return match.group(0).split(": ")[-1].strip()
        current = current.__cause__ or current.__context__
    return None


def engine_failure(exc: BaseException, model: str) -> ApiError:
    """What a failed model call becomes: the client's mistake, the machine's state, or ours."""
    if isinstance(exc, PromptTooLong):
        return ApiError(400, f"The messages are too long for {model}: {exc}.", param="messages",
                        code="context_length_exceeded")
    if (too_long := _too_long(exc)) is not None:
        return ApiError(
            400, f"The messages are too long for {model}: {too_long}.", param="messages", code="context_length_exceeded"
        )
    if isinstance(exc, litellm_module().Timeout):
        return ApiError(504, f"{model} did not answer in time: {getattr(exc, 'message', exc)}", type="server_error", code="timeout")
    if isinstance(exc, UserError):
        return ApiError(400, str(exc), code="invalid_request")
    if isinstance(exc, EngineUnavailable):
        return ApiError(503, str(exc), type="server_error", code="engine_unavailable")
    if isinstance(exc, (ModelBehaviorError, TurnoutError)):
        return ApiError(500, str(exc), type="server_error", code="model_error")
    logger.error("%s failed", model, exc_info=exc)
    return ApiError(
        500, f"{model} failed ({type(exc).__name__}); the server log has the details", type="server_error",
        code="engine_error",
    )


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, (RequestValidationError, ValidationError))
    return invalid_request(exc.errors()).response()


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        error = ApiError(404, f"Unknown request URL: {request.method} {request.url.path}.", code="unknown_url")
    elif exc.status_code == 405:
        error = ApiError(405, f"Method {request.method} is not allowed on {request.url.path}.", code="method_not_allowed")
    else:
        error = ApiError(exc.status_code, str(exc.detail), code=None)
    error.headers.update(exc.headers or {})
    return error.response()


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unexpected failure on %s %s", request.method, request.url.path, exc_info=exc)
    return ApiError(500, "internal server error; the server log has the details", type="server_error").response()


def install(app: FastAPI) -> None:
    """Route every error the app can meet to an OpenAI-shaped answer."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
