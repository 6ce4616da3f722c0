"""`POST /v1/chat/completions`: an OpenAI request through turnout's door and back, whole or
as server-sent events.

Every call goes through `turnout.engines.complete()` / `stream()` by model string, so it
is traced (a `chat {model}` span, a child of the caller's span when it sends
`traceparent`), metered and judged by the egress guard like any other turnout call.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from turnout.config import Settings
from turnout.engines import Completion, UsageMeter, complete, stream
from turnout.serve._admission import Admission, Overloaded
from turnout.serve._errors import ApiError, engine_failure, invalid_request
from turnout.serve._jobs import ClientGone, Disconnect, End, Job, Relay
from turnout.serve._protocol import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    Usage,
    completion_id,
    finish_reason,
)

# What nginx and other proxies need to pass events through as they come.
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# A client that leaves before its answer: nobody reads this status (nginx's "client closed").
_CLIENT_GONE = 499


@dataclass
class Chat:
    """What the chat route needs from the server."""

    settings: Settings
    models: dict[str, int]  # model string → when it began to be served (unix seconds)
    admission: Admission
    meter: UsageMeter


async def parse(request: Request) -> ChatCompletionRequest:
    """The request body as a ChatCompletionRequest, or a 400 in OpenAI's words."""
    raw = await request.body()
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"The request body is not valid JSON: {exc}", code="invalid_json") from None
    except RecursionError:
        raise ApiError(400, "The request body nests JSON too deeply to read.", code="invalid_json") from None
    try:
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(
            400, "The request body holds a lone UTF-16 surrogate (\\ud800–\\udfff), which is no character.",
            code="invalid_json",
        ) from None
    except RecursionError:
        raise ApiError(400, "The request body nests JSON too deeply to read.", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    try:
        return ChatCompletionRequest.model_validate(payload)
    except ValidationError as exc:
        raise invalid_request(exc.errors()) from None


def door_arguments(chat: ChatCompletionRequest, settings: Settings) -> dict[str, Any]:
    """The door's keyword arguments for this request; the server's token cap applies."""
    limit = settings.serve.max_tokens
    asked = chat.requested_max_tokens
    if asked is not None and asked > limit:
        param = "max_completion_tokens" if chat.max_completion_tokens is not None else "max_tokens"
        raise ApiError(
            400, f"{param} = {asked} is over this server's limit of {limit} tokens ([serve] max_tokens)",
            param=param, code="invalid_value",
        )
    return {
        "json_schema": chat.json_schema,
        "max_tokens": asked or limit,
        "temperature": chat.temperature,
        "top_p": chat.top_p,
        "stop": chat.stop,
        "seed": chat.seed,
        "settings": settings,
    }


async def answer(chat: ChatCompletionRequest, request: Request, server: Chat) -> Response:
    """Admit, generate and answer; a client that leaves cancels its generation."""
    if chat.model not in server.models:
        raise ApiError(
            404, f"The model `{chat.model}` does not exist on this server; it serves "
            f"{', '.join(server.models)} (GET /v1/models).", param="model", code="model_not_found",
        )
    arguments = door_arguments(chat, server.settings)
    messages = [message.as_door_message() for message in chat.messages]
    trace_context = propagate.extract(request.headers, context=otel_context.Context())
    disconnect = Disconnect(request)
    try:
        lease = await disconnect.race(asyncio.ensure_future(server.admission.enter()))
        job = Job(lease, server.meter, trace_context)
        if chat.stream:
            return await _streamed(chat, messages, arguments, job, disconnect)
        return await _whole(chat, messages, arguments, job, disconnect)
    except Overloaded as exc:
        raise ApiError(
            429, f"The server is busy: {server.admission.max_concurrency} requests are generating and "
            f"{server.admission.max_queue} are waiting; retry after {exc.retry_after_s}s.",
            type="rate_limit_error", code="rate_limit_exceeded", headers={"Retry-After": str(exc.retry_after_s)},
        ) from None
    except ClientGone:
        return Response(status_code=_CLIENT_GONE)
    finally:
        disconnect.close()


async def _whole(
    chat: ChatCompletionRequest, messages: list[dict[str, str]], arguments: dict[str, Any], job: Job, disconnect: Disconnect
) -> Response:
    task = job.start(lambda: complete(chat.model, messages, **arguments))
    try:
        result = await disconnect.race(task)
    except ClientGone:
        raise
    except Exception as exc:  # noqa: BLE001 - every engine failure is answered in OpenAI's shape
        raise engine_failure(exc, chat.model) from None
    return JSONResponse(completion_body(chat.model, result).model_dump(mode="json"))


async def _streamed(
    chat: ChatCompletionRequest, messages: list[dict[str, str]], arguments: dict[str, Any], job: Job, disconnect: Disconnect
) -> Response:
    relay = Relay(lambda: stream(chat.model, messages, **arguments), job)
    try:  # the first delta before any header: a call that fails at once gets a real status
        first = await disconnect.race(asyncio.ensure_future(relay.next()))
    except BaseException:
        relay.cancel()
        raise
    if isinstance(first, BaseException):
        raise engine_failure(first, chat.model)
    include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
    events = _events(relay, first, chat.model, include_usage)
    return StreamingResponse(events, media_type="text/event-stream", headers=_SSE_HEADERS)


def completion_body(model: str, result: Completion[Any]) -> ChatCompletion:
    return ChatCompletion(
        model=model,
        choices=[Choice(message=AssistantMessage(content=result.text), finish_reason=finish_reason(result.finish_reason))],
        usage=Usage.of(result.usage.input_tokens, result.usage.output_tokens),
    )


async def _events(relay: Relay, first: str | End | BaseException, model: str, include_usage: bool) -> AsyncIterator[str]:
    """OpenAI's chunk stream: the role, the text deltas, the finish reason, the usage (when
    asked for), `[DONE]`. Ending early (the client left) cancels the generation."""
    ident, created = completion_id(), int(time.time())

    def chunk(delta: Delta, reason: str | None = None) -> str:
        choice = ChunkChoice(delta=delta, finish_reason=reason)
        return ChatCompletionChunk(id=ident, created=created, model=model, choices=[choice]).sse()

    try:
        yield chunk(Delta(role="assistant", content=""))
        async for item in relay.items(first):
            if isinstance(item, str):
                yield chunk(Delta(content=item))
            elif isinstance(item, End):
                yield chunk(Delta(), finish_reason(item.result.finish_reason))
                if include_usage:
                    usage = Usage.of(item.result.usage.input_tokens, item.result.usage.output_tokens)
                    yield ChatCompletionChunk(id=ident, created=created, model=model, choices=[], usage=usage).sse()
                yield "data: [DONE]\n\n"
            else:
                yield engine_failure(item, model).sse()
    finally:
        relay.cancel()
