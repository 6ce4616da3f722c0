"""`stream()`: the door for answers shown as they are written."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from turnout.config import Settings
from turnout.engines._door import (
    _checked,
    _finish,
    _replayed,
    _schema_title,
    _send,
    _served,
    _start,
    _unwrap,
    _usage,
    raw_schema_of,
)
from turnout.engines._guard import Cleared
from turnout.engines._locality import split_model
from turnout.engines._recording import record_call
from turnout.engines._request import Messages
from turnout.engines._result import Completion, Timings, Usage
from turnout.errors import SchemaError
from turnout.telemetry._spans import ChatSpan

OutputT = TypeVar("OutputT", bound=BaseModel)


class CompletionStream(Generic[OutputT]):
    """Text deltas as they arrive; `result` holds the whole Completion once iteration ends.

        stream = engines.stream("coder", "write a haiku")
        async for delta in stream:
            print(delta, end="")
        print(stream.result.usage)
    """

    def __init__(self, deltas: AsyncIterator[str]) -> None:
        self._deltas = deltas
        self.result: Completion[OutputT] | None = None

    def __aiter__(self) -> AsyncIterator[str]:
        return self._deltas


def stream(
    role_or_model: str,
    messages: Messages,
    *,
    schema: type[OutputT] | None = None,
    json_schema: dict[str, Any] | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    timeout: float | None = None,
    settings: Settings | None = None,
    **params: Any,
) -> CompletionStream[OutputT]:
    """Like `complete()`, streamed. A schema (pydantic or a raw `json_schema`) is validated
    at the end (no re-ask: the text was already shown), raising SchemaError if it fails."""
    session, live, request = _start(
        role_or_model, messages, schema, settings, temperature, max_tokens, timeout, params, json_schema=json_schema
    )
    request.call.update(stream=True, stream_options={"include_usage": True})
    target, settings, call = request.target, request.settings, request.call
    holder: CompletionStream[OutputT]

    async def deltas() -> AsyncIterator[str]:
        with request.span(stream=True) as span:
            cleared = await request.clear(span)
            try:
                if session is not None and live is None:
                    holder.result = await _replayed(request, cleared, schema, request.recorded(session, cleared, schema))
                    _finish(span, holder.result)
                    yield holder.result.text
                else:
                    async for delta in _stream(span, cleared):
                        yield delta
            finally:
                span.record(cleared.report.attributes())
            if holder.result is not None:
                record_call(settings, span, cleared.messages, schema, call, holder.result)

    async def _stream(span: ChatSpan, cleared: Cleared) -> AsyncIterator[str]:
        started = time.perf_counter()
        ttft: float | None = None
        parts: list[str] = []
        usage = Usage()
        finish_reason: str | None = None
        response = await _send(target, settings, cleared, cleared.messages, **call)
        try:
            async for chunk in response:
                if getattr(chunk, "usage", None):
                    usage = _usage(chunk)
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                finish_reason = choice.finish_reason or finish_reason
                if choice.delta.content:
                    if ttft is None:
                        ttft = time.perf_counter() - started
                    parts.append(choice.delta.content)
                    yield choice.delta.content
        except Exception as exc:
            unwrapped = _unwrap(exc)
            if unwrapped is exc:
                raise
            raise unwrapped from None
        served, locality = _served(response, target, settings, cleared, cleared.messages)
        text = "".join(parts)
        output, problems = _checked(schema, raw_schema_of(call), text)
        if problems is not None:
            raise SchemaError(
                f"{served} streamed output that does not match {_schema_title(schema)}: {problems}",
                raw_text=text,
                model=served,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                finish_reason=finish_reason,
            )
        holder.result = Completion(  # unparametrized: Completion[X] is rebuilt per call once pydantic's cache drops it
            text=text,
            output=output,
            model=served,
            requested=role_or_model,
            role=target.role,
            provider=split_model(served)[0],
            locality=locality,
            finish_reason=finish_reason,
            usage=usage,
            timings=Timings.measure(time.perf_counter() - started, ttft, usage.output_tokens),
            cost_usd=0.0 if locality == "local" else None,
            egress=cleared.report,
        )
        _finish(span, holder.result)

    holder = CompletionStream(deltas())
    return holder
