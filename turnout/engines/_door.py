"""`complete()` and `stream()`: the one door through which turnout calls any model.

role or model string → `_Request` (config, checks, replay plan) → the egress guard → litellm
(Router for roles: retries, timeouts, fallbacks) → the engine → one `Completion`. There is
one path: `stream()` shows the text as it arrives, and `complete()` is the same exchange read
to the end, plus the schema re-ask loop (as httpx's `send()` is its stream read whole).
`_Exchange` is the one place a model's answer is read: text, usage, finish reason, which
model served it and where, its cost, and what the engine reported. The only difference is
what litellm is asked for: `stream()` a stream, `complete()` the whole answer, read as a
stream of one chunk. (Streamed through litellm, every token of a local engine passes its
stream wrapper: measured 1.05x raw llama.cpp per token on the embedded model, against
1.01-1.03x asked whole; see README.)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from turnout._sync import run_sync
from turnout.config import Settings
from turnout.engines.privacy import Cleared, Locality, split_model
from turnout.engines._meter import record
from turnout.engines._provider import EXTRAS_FIELD, TTFT_FIELD, litellm_module
from turnout.engines._recording import record_call, revive_failure
from turnout.engines._request import Messages, Target, _Request
from turnout.engines._result import Completion, Timings, Usage
from turnout.engines._routing import endpoint_retries, router_for
from turnout.engines._schema_check import checked, raw_schema_of, reask, schema_title
from turnout.engines.scripted import Script
from turnout.engines.tag import plain_messages
from turnout.errors import SchemaError, TurnoutError
from turnout.telemetry._spans import ChatSpan

OutputT = TypeVar("OutputT", bound=BaseModel)


async def complete(
    role_or_model: str | Script,
    messages: Messages,
    *,
    schema: type[OutputT] | None = None,
    json_schema: dict[str, Any] | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    timeout: float | None = None,
    settings: Settings | None = None,
    **params: Any,
) -> Completion[OutputT]:
    """Call the model behind a role (`"router"`) or a litellm model string (`"llamacpp/smollm2"`),
    or a `Script` passed in (a test double: `complete(Script.auto(), …)`).

    With `schema`, the answer is validated into that pydantic model (`Completion.output`);
    local engines decode under the schema's grammar, and an answer that still fails to
    validate is re-asked `settings.schema_retries` times with the error, then raised as
    SchemaError carrying the raw text. With `json_schema` (a raw JSON schema, for callers
    that have no pydantic model, such as `turnout serve`'s clients) local engines decode under
    it too, and the answer is returned as `Completion.text`, validated and re-asked the same
    way. A schema past `schema_bounds`' limits raises SchemaRefused before any model call.
    Extra keyword arguments go to litellm unchanged.
    """
    request = _Request.start(
        role_or_model, messages, schema=schema, json_schema=json_schema, settings=settings,
        params={"temperature": temperature, "max_tokens": max_tokens, "timeout": timeout, **params},
    )
    result: Completion[OutputT] | None = None
    async for item in _run(request, reasks=request.settings.schema_retries, streamed=False):
        if isinstance(item, Completion):
            result = item
    assert result is not None
    return result


def complete_sync(role_or_model: str | Script, messages: Messages, **kwargs: Any) -> Completion[Any]:
    """`complete()` for scripts and REPLs."""
    return run_sync(complete(role_or_model, messages, **kwargs))


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
    role_or_model: str | Script,
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
    request = _Request.start(
        role_or_model, messages, schema=schema, json_schema=json_schema, settings=settings,
        params={"temperature": temperature, "max_tokens": max_tokens, "timeout": timeout, **params},
    )
    holder: CompletionStream[OutputT]

    async def deltas() -> AsyncIterator[str]:
        async for item in _run(request, reasks=0, streamed=True):
            if isinstance(item, Completion):
                holder.result = item
            else:
                yield item

    holder = CompletionStream(deltas())
    return holder


async def _run(request: _Request, *, reasks: int, streamed: bool) -> AsyncIterator[str | Completion[Any]]:
    """The call under its span: cleared by the guard, answered (live, or from a recording
    under a replay), then measured, traced and recorded. Yields the text as it arrives, then
    the Completion; a failure is recorded on the span and in the recording, and raised."""
    with request.span(stream=streamed) as span:
        cleared = await request.clear(span)
        result: Completion[Any] | None = None
        try:
            answers = (_replayed(request, cleared, reasks, streamed) if request.replay is not None
                       else _attempts(request, cleared, reasks, streamed))
            async for item in answers:
                if isinstance(item, Completion):
                    result = item
                else:
                    yield item
        except Exception as exc:
            request.record_failure(span, cleared, exc)
            raise
        finally:
            span.record(cleared.report.attributes())
        assert result is not None
        _finish(span, result)
        record_call(request.settings, span, cleared.messages, request.schema, request.call, result)
        yield result


async def _attempts(
    request: _Request, cleared: Cleared, reasks: int, streamed: bool
) -> AsyncIterator[str | Completion[Any]]:
    """Ask, read the answer as it streams, check it against the schema; ask again with the
    problems up to `reasks` times, then raise SchemaError with the last raw text."""
    started = time.perf_counter()
    raw_schema = raw_schema_of(request.call)
    usage = Usage()
    cost: float | None = 0.0
    conversation = cleared.messages
    attempt = 0
    first_ttft: float | None = None
    while True:
        attempt += 1
        exchange = _Exchange(request, cleared, conversation, streamed)
        async for delta in exchange.deltas():
            yield delta
        answer = exchange.answer
        usage = usage + answer.usage
        cost = None if cost is None or answer.cost_usd is None else cost + answer.cost_usd
        first_ttft = answer.ttft_s if attempt == 1 else first_ttft
        output, problems = checked(request.schema, raw_schema, answer.text)
        if problems is None:
            yield Completion(  # unparametrized: Completion[X] is rebuilt per call once pydantic's cache drops it
                text=answer.text,
                output=output,
                model=answer.served,
                requested=request.target.requested,
                role=request.target.role,
                provider=split_model(answer.served)[0],
                locality=answer.locality,
                finish_reason=answer.finish_reason,
                usage=usage,
                timings=Timings.measure(time.perf_counter() - started, first_ttft, usage.output_tokens),
                cost_usd=cost,
                attempts=attempt,
                engine_stats=answer.engine_stats,
                egress=cleared.report,
            )
            return
        if attempt > reasks:
            raise SchemaError(
                f"{answer.served} answered {attempt} time(s) with output that does not match "
                f"{schema_title(request.schema)}: {problems}",
                raw_text=answer.text,
                model=answer.served,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                finish_reason=answer.finish_reason,
            )
        conversation = reask(conversation, answer.text, answer.served, problems, request.schema, raw_schema)


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


async def _replayed(
    request: _Request, cleared: Cleared, reasks: int, streamed: bool
) -> AsyncIterator[str | Completion[Any]]:
    """The recorded answer, through the scripted engine and the same path as a live one,
    reported as the original call was (a call that failed fails again, with the same error)."""
    from turnout.engines import scripted

    recorded = request.recorded(cleared)
    if recorded.error_type is not None:
        raise revive_failure(recorded)
    name = f"replay-{recorded.span_id}-{id(request):x}"
    answer = scripted.Reply(
        text=recorded.text, input_tokens=recorded.input_tokens, output_tokens=recorded.output_tokens,
        finish_reason=recorded.finish_reason,
    )
    local = dataclasses.replace(request, target=Target(request.target.requested, None, f"scripted/{name}", None), replay=None)
    with scripted.scripted(name, [answer]):
        unguarded = Cleared(cleared.messages, cleared.report, role=None, settings=request.settings)
        async for item in _attempts(local, unguarded, reasks, streamed):
            if isinstance(item, Completion):
                item = item.model_copy(update={
                    "model": recorded.model, "provider": split_model(recorded.model)[0], "role": recorded.role,
                    "locality": recorded.locality, "cost_usd": recorded.cost_usd, "engine_stats": recorded.engine_stats,
                })
            yield item


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


def _finish(span: ChatSpan, result: Completion[Any]) -> None:
    record(result)
    span.finish(
        response_model=result.model,
        provider=result.provider,
        locality=result.locality,
        input_tokens=result.usage.input_tokens,
        output_tokens=result.usage.output_tokens,
        finish_reason=result.finish_reason,
        ttft_s=result.timings.ttft_s,
        tokens_per_s=result.timings.tokens_per_s,
        cost_usd=result.cost_usd,
        attempts=result.attempts,
        text=result.text,
        engine_stats=result.engine_stats,
    )
