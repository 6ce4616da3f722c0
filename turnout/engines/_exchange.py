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
from turnout.engines.tag import plain_messages
from turnout.errors import TurnoutError


@dataclasses.dataclass
class _Answer:
    """One model answer, read whole."""

    text: str
    usage: Usage
    finish_reason: str | None
    served: str  # the litellm model string that answered (after fallbacks)
    locality: Locality
    cost_usd: float | None  # None: litellm does not know the price
    engine_stats: dict[str, Any]
    ttft_s: float | None


class _Exchange:
    """One request sent and its answer read: `deltas()` yields the text as it arrives (all of
    it at once when litellm was asked for the whole answer); `answer` holds the whole of it
    afterwards."""

    def __init__(self, request: _Request, cleared: Cleared, conversation: list[dict[str, Any]], streamed: bool) -> None:
        self.request = request
        self.cleared = cleared
        self.conversation = conversation
        self.streamed = streamed
        self._answer: _Answer | None = None

    @property
    def answer(self) -> _Answer:
        assert self._answer is not None, "read the deltas first"
        return self._answer

    async def deltas(self) -> AsyncIterator[str]:
        request, cleared = self.request, self.cleared
        started = time.perf_counter()
        ttft: float | None = None
        chunks: list[Any] = []
        parts: list[str] = []
        usage = Usage()
        finish_reason: str | None = None
        engine_stats: dict[str, Any] = {}
        response = await _send(request, cleared, self.conversation, self.streamed)
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
                if choice.delta.content:
                    if ttft is None:  # asked whole, the engine's own measure (a local engine's; else None)
                        ttft = time.perf_counter() - started if self.streamed else _hidden(response).get(TTFT_FIELD)
                    parts.append(choice.delta.content)
                    yield choice.delta.content
        except Exception as exc:
            if cleared.primary_remote:  # the request went out before it failed
                cleared.count_sent(self.conversation)
            unwrapped = _unwrap(exc)
            if unwrapped is exc:
                raise
            raise unwrapped from None
        served, locality = self._served(response)
        engine_stats = engine_stats if self.streamed else _hidden(response).get(EXTRAS_FIELD) or {}
        cost = 0.0 if locality == "local" else _cost(chunks if self.streamed else response, served, self.conversation)
        self._answer = _Answer("".join(parts), usage, finish_reason, served, locality, cost, engine_stats, ttft)

    def _served(self, response: Any) -> tuple[str, Locality]:
        """The model that answered (after fallbacks) and, from the guard, where it runs."""
        target = self.request.target
        hidden = _hidden(response)
        served = hidden.get("litellm_model_name")
        served = served if isinstance(served, str) and "/" in served else target.model
        base = hidden.get("api_base")
        answered_at = base if isinstance(base, str) and base else target.api_base
        return served, self.cleared.answered(served, answered_at, self.conversation)


async def _send(request: _Request, cleared: Cleared, conversation: list[dict[str, Any]], streamed: bool) -> Any:
    """The conversation sent through litellm (asked for a stream, or for the whole answer):
    through the role's Router (retries, fallbacks, a fleet's endpoints) or straight to the
    model string."""
    litellm = litellm_module()
    target, settings = request.target, request.settings
    retries = settings.remote_retries if cleared.primary_remote else settings.local_retries
    retries = max(retries, endpoint_retries(settings, target.role))
    params = {"timeout": settings.timeout_s, **request.call, **cleared.call}
    if streamed:
        params.update(stream=True, stream_options={"include_usage": True})
    plain = plain_messages(conversation)
    try:
        if target.role is not None:
            return await router_for(settings).acompletion(model=target.role, messages=plain, num_retries=retries, **params)
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
    yield SimpleNamespace(
        usage=getattr(response, "usage", None),
        choices=[SimpleNamespace(finish_reason=response.choices[0].finish_reason,
                                 delta=SimpleNamespace(content=message.content, provider_specific_fields=None))],
    )


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
