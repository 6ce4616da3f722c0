"""One request to a model and its answer read: the one place an answer is read.

`_Exchange` sends the conversation through litellm (the role's Router, or straight to the
model string), asked for a stream (`stream()`) or for the whole answer (`complete()`, read
as a stream of one chunk), and reads back text, usage, finish reason, which model served it
and where (through the guard's `Cleared`), its cost, and what the engine reported.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

from turnout.engines._provider import EXTRAS_FIELD, TTFT_FIELD, litellm_module
from turnout.engines._request import _Request
from turnout.engines._result import Usage
from turnout.engines._routing import endpoint_retries, router_for
from turnout.engines.privacy import Cleared, Locality
from turnout.engines.schema_budget import SCHEMA_MAX_TOKENS
from turnout.engines.tag import plain_messages
from turnout.engines.tool_calls import ToolCallDelta, ToolSet, new_call_id
from turnout.errors import TurnoutError

RawCall = tuple[str | None, str, str]  # a tool call as the model wrote it: id (if any), name, arguments JSON


@dataclasses.dataclass
class _Answer:
    """One model answer, read whole."""

    text: str
    tool_calls: list[RawCall]
    usage: Usage
    finish_reason: str | None
    served: str  # the litellm model string that answered (after fallbacks)
    locality: Locality
    cost_usd: float | None  # None: litellm does not know the price
    engine_stats: dict[str, Any]
    ttft_s: float | None


class _Exchange:
    """One request sent and its answer read: `deltas()` yields the text as it arrives (all of
    it at once when litellm was asked for the whole answer) and the tool calls' pieces;
    `answer` holds the whole of it afterwards. A local engine asked with tools decodes a
    JSON turn (`tool_calls`): its answer text and calls are read out of it."""

    def __init__(self, request: _Request, cleared: Cleared, conversation: list[dict[str, Any]], streamed: bool) -> None:
        self.request = request
        self.cleared = cleared
        self.conversation = conversation
        self.streamed = streamed
        self.local_tools = request.tools if request.tools is not None and not cleared.primary_remote else None
        self._answer: _Answer | None = None

    @property
    def answer(self) -> _Answer:
        assert self._answer is not None, "read the deltas first"
        return self._answer

    async def deltas(self) -> AsyncIterator[str | ToolCallDelta]:
        request, cleared = self.request, self.cleared
        started = time.perf_counter()
        ttft: float | None = None
        chunks: list[Any] = []
        parts: list[str] = []
        calls: dict[int, list[Any]] = {}  # index → [id, name, arguments fragments]
        usage = Usage()
        finish_reason: str | None = None
        engine_stats: dict[str, Any] = {}
        response = await _send(request, cleared, self.conversation, self.streamed, self.local_tools)
        try:
            async for chunk in _chunks(response, self.streamed):
                chunks.append(chunk)
                if getattr(chunk, "usage", None):
                    usage = _usage(chunk)
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                finish_reason = choice.finish_reason or finish_reason
                engine_stats = (getattr(choice.delta, "provider_specific_fields", None) or {}).get(EXTRAS_FIELD) or engine_stats
                for piece in getattr(choice.delta, "tool_calls", None) or ():
                    ttft = ttft if ttft is not None else time.perf_counter() - started
                    yield _call_piece(calls, piece)
                if choice.delta.content:
                    if ttft is None:  # asked whole, the engine's own measure (a local engine's; else None)
                        ttft = time.perf_counter() - started if self.streamed else _hidden(response).get(TTFT_FIELD)
                    parts.append(choice.delta.content)
                    if self.local_tools is None:
                        yield choice.delta.content
        except Exception as exc:
            if cleared.primary_remote:  # the request went out before it failed
                cleared.count_sent(self.conversation)
            unwrapped = _unwrap(exc)
            if unwrapped is exc:
                raise
            raise unwrapped from None
        text = "".join(parts)
        raw_calls: list[RawCall] = [(c[0], c[1], "".join(c[2])) for _, c in sorted(calls.items())]
        if self.local_tools is not None:
            salt = f"{len(self.conversation)}:{text}"
            text, local_calls = self.local_tools.read_local(text)
            raw_calls = [(new_call_id(salt, i, name, arguments), name, arguments) for i, (name, arguments) in enumerate(local_calls)]
            for index, (call_id, name, arguments) in enumerate(raw_calls):
                yield ToolCallDelta(index=index, id=call_id, name=name, arguments=arguments)
            if text:
                yield text
            finish_reason = "tool_calls" if raw_calls and finish_reason == "stop" else finish_reason
        served, locality = self._served(response)
        engine_stats = engine_stats if self.streamed else _hidden(response).get(EXTRAS_FIELD) or {}
        cost = 0.0 if locality == "local" else _cost(chunks if self.streamed else response, served, self.conversation)
        self._answer = _Answer(text, raw_calls, usage, finish_reason, served, locality, cost, engine_stats, ttft)

    def _served(self, response: Any) -> tuple[str, Locality]:
        """The model that answered (after fallbacks) and, from the guard, where it runs."""
        target = self.request.target
        hidden = _hidden(response)
        served = hidden.get("litellm_model_name")
        served = served if isinstance(served, str) and "/" in served else target.model
        base = hidden.get("api_base")
        answered_at = base if isinstance(base, str) and base else target.api_base
        return served, self.cleared.answered(served, answered_at, self.conversation)


async def _send(
    request: _Request, cleared: Cleared, conversation: list[dict[str, Any]], streamed: bool, local_tools: ToolSet | None
) -> Any:
    """The conversation sent through litellm (asked for a stream, or for the whole answer):
    through the role's Router (retries, fallbacks, a fleet's endpoints) or straight to the
    model string. Tools go as litellm's native tools to a remote model, and as the turn's
    schema and a system message to a local engine (`tool_calls`)."""
    litellm = litellm_module()
    target, settings = request.target, request.settings
    retries = settings.remote_retries if cleared.primary_remote else settings.local_retries
    retries = max(retries, endpoint_retries(settings, target.role))
    params = {"timeout": settings.timeout_s, **request.call, **cleared.call}
    if streamed:
        params.update(stream=True, stream_options={"include_usage": True})
    if local_tools is not None:
        budget = params.get("max_tokens") or SCHEMA_MAX_TOKENS
        turn = local_tools.local_schema(request.answer_schema(), budget)
        params["response_format"] = {"type": "json_schema", "json_schema": {"name": "turn", "schema": turn}}
        conversation = local_tools.local_messages(conversation)
    elif request.tools is not None:
        params.update(request.tools.remote_params())
    plain = plain_messages(conversation)
    try:
        if target.role is not None:
            return await router_for(settings, target.role).acompletion(model=target.role, messages=plain, num_retries=retries, **params)
        if target.api_base:
            params["api_base"] = target.api_base
        return await litellm.acompletion(model=target.model, messages=plain, num_retries=retries, **params)
    except Exception as exc:
        if cleared.primary_remote:  # the request went out before it failed
            cleared.count_sent(conversation)
        unwrapped = _unwrap(exc)
        if unwrapped is exc:
            raise
        raise unwrapped from None


def _cost(answer: Any, served: str, conversation: list[dict[str, Any]]) -> float | None:
    """litellm's price of an answer (a whole response, or a stream's chunks rebuilt into
    one); None where litellm's price map holds no price for the model (litellm itself then
    says 0.0, which would read as free)."""
    litellm = litellm_module()
    try:
        # litellm prices a model its map lacks at 0 (the Router even adds it to the map,
        # without prices): only a price in the map itself counts.
        listed = litellm.model_cost.get(litellm.get_model_info(model=served).get("key")) or {}
        if listed.get("input_cost_per_token") is None and listed.get("output_cost_per_token") is None:
            return None
        if isinstance(answer, list):
            answer = litellm.stream_chunk_builder(answer, messages=plain_messages(conversation))
        return float(litellm.completion_cost(completion_response=answer, model=served))
    except Exception:  # litellm raises its own kinds for a model missing from its price map
        return None


async def _chunks(response: Any, streamed: bool) -> AsyncIterator[Any]:
    """The response's chunks: a stream's as they come; a whole response as one chunk whose
    `delta` is its message."""
    if streamed:
        async for chunk in response:
            yield chunk
        return
    message = response.choices[0].message
    calls = [
        SimpleNamespace(index=index, id=call.id, function=call.function)
        for index, call in enumerate(getattr(message, "tool_calls", None) or ())
    ]
    yield SimpleNamespace(
        usage=getattr(response, "usage", None),
        choices=[SimpleNamespace(finish_reason=response.choices[0].finish_reason,
                                 delta=SimpleNamespace(content=message.content, tool_calls=calls,
                                                       provider_specific_fields=None))],
    )


def _call_piece(calls: dict[int, list[Any]], piece: Any) -> ToolCallDelta:
    """A streamed piece of a tool call, added to the calls read so far."""
    index = getattr(piece, "index", None)
    index = index if isinstance(index, int) else len(calls)
    function = getattr(piece, "function", None)
    name = getattr(function, "name", None)
    arguments = getattr(function, "arguments", None) or ""
    call = calls.setdefault(index, [None, "", []])
    call[0] = call[0] or getattr(piece, "id", None)
    call[1] = call[1] or name or ""
    call[2].append(arguments)
    return ToolCallDelta(index=index, id=getattr(piece, "id", None), name=name, arguments=arguments)


def _hidden(response: Any) -> dict[str, Any]:
    return getattr(response, "_hidden_params", {}) or {}


def _usage(response: Any) -> Usage:
    usage = getattr(response, "usage", None)
    if usage is None:
        return Usage()
    return Usage(input_tokens=usage.prompt_tokens or 0, output_tokens=usage.completion_tokens or 0)


def _unwrap(exc: BaseException) -> BaseException:
    """The TurnoutError an engine raised inside litellm, which wraps it in its own types."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, TurnoutError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return exc
