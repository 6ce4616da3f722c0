"""`complete()` and `stream()`: the one door through which turnout calls any model.

role or model string → `_Request` (config, checks, replay plan) → the egress guard → litellm
(Router for roles: retries, timeouts, fallbacks) → the engine → one `Completion`. There is
one path: `stream()` shows the text as it arrives, and `complete()` is the same exchange read
to the end, plus the schema re-ask loop (as httpx's `send()` is its stream read whole).
`_Exchange` (`_exchange.py`) is the one place a model's answer is read. The only difference
is what litellm is asked for: `stream()` a stream, `complete()` the whole answer, read as a
stream of one chunk. Both are made from `call_arguments`, the one signature of a model call.
(Streamed through litellm, every token of a local engine passes its stream wrapper: measured
1.05x raw llama.cpp per token on the embedded model, against 1.01-1.03x asked whole; see
README.)
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any, Generic, ParamSpec, TypeVar

from pydantic import BaseModel

from turnout._sync import run_sync
from turnout.config import Settings
from turnout.engines._exchange import _Exchange
from turnout.engines.privacy import Cleared, span_capture, split_model
from turnout.engines._meter import record
from turnout.engines._recording import record_call, revive_failure
from turnout.engines._request import Messages, Target, _Request
from turnout.engines._result import Completion, Timings, Usage
from turnout.engines._schema_check import checked, raw_schema_of, reask, schema_title
from turnout.engines.scripted import Script
from turnout.engines.tag import plain_messages
from turnout.engines.tool_calls import ToolCall, ToolCallDelta, ToolChoice, ToolLike
from turnout.errors import SchemaError
from turnout.telemetry._spans import ChatSpan, chat_span

OutputT = TypeVar("OutputT", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)
P = ParamSpec("P")
F = TypeVar("F", bound=Callable[..., Any])


def call_arguments(
    role_or_model: str | Script,
    messages: Messages,
    *,
    schema: type[OutputT] | None = None,
    json_schema: dict[str, Any] | None = None,
    tools: Sequence[ToolLike] | None = None,
    tool_choice: ToolChoice | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    timeout: float | None = None,
    settings: Settings | None = None,
    **params: Any,
) -> _Request[OutputT]:
    """What every model call takes, read into the one request that travels the whole way.
    `complete()` and `stream()` take exactly these arguments (they are made from this function).

    `role_or_model`: a role (`"router"`), a litellm model string (`"llamacpp/smollm2"`), or a
    `Script` passed in (a test double: `complete(Script.auto(), …)`). With `schema`, the
    answer is validated into that pydantic model (`Completion.output`); local engines decode
    under the schema's grammar. With `json_schema` (a raw JSON schema, for callers that have
    no pydantic model, such as `turnout serve`'s clients) local engines decode under it too,
    and the answer is returned as `Completion.text`, validated the same way. A schema past
    `schema_bounds`' limits raises SchemaRefused before any model call. With `tools` (OpenAI
    tool dicts, `ToolSpec`s or turnout `Tool`s) and `tool_choice` (`auto`, `required`, `none`
    or a tool's name) the model may call tools: the calls are in `Completion.tool_calls` with
    arguments validated against each tool's schema; a local engine decodes under a constraint
    that admits only well-formed calls (`tool_calls`). Extra keyword arguments go to litellm
    unchanged.
    """
    return _Request.start(
        role_or_model, messages, schema=schema, json_schema=json_schema, settings=settings,
        params={"temperature": temperature, "max_tokens": max_tokens, "timeout": timeout, **params},
        tools=tools, tool_choice=tool_choice,
    )


def _completing(arguments: Callable[P, _Request[R]]) -> Callable[P, Coroutine[Any, Any, Completion[R]]]:
    async def complete(*args: P.args, **kwargs: P.kwargs) -> Completion[R]:
        """Call the model behind a role or a model string and return its whole answer
        (arguments: `call_arguments`). An answer that fails its schema or its tools' argument
        schemas is re-asked `settings.schema_retries` times with the problems, then raised as
        SchemaError carrying the raw text. It is `stream()` read to the end, plus the re-asks."""
        request = arguments(*args, **kwargs)
        result: Completion[R] | None = None
        async for item in _run(request, reasks=request.settings.schema_retries, streamed=False):
            if isinstance(item, Completion):
                result = item
        assert result is not None
        return result

    return _signed(complete, arguments, "Completion[OutputT]")


def _streaming(arguments: Callable[P, _Request[R]]) -> Callable[P, CompletionStream[R]]:
    def stream(*args: P.args, **kwargs: P.kwargs) -> CompletionStream[R]:
        """Like `complete()`, streamed (arguments: `call_arguments`). A schema (pydantic or a
        raw `json_schema`) is validated at the end (no re-ask: the text was already shown),
        raising SchemaError if it fails."""
        request = arguments(*args, **kwargs)

        async def deltas() -> AsyncIterator[str | ToolCallDelta]:
            async for item in _run(request, reasks=0, streamed=True):
                if isinstance(item, Completion):
                    holder.result = item
                else:
                    yield item

        holder: CompletionStream[R] = CompletionStream(deltas())
        return holder

    return _signed(stream, arguments, "CompletionStream[OutputT]")


def _signed(call: F, arguments: Callable[..., Any], returns: str) -> F:
    """`call`, shown (`help()`, `inspect.signature`) with the parameters of `arguments`."""
    setattr(call, "__signature__", inspect.signature(arguments).replace(return_annotation=returns))
    call.__qualname__ = call.__name__
    return call


class CompletionStream(Generic[OutputT]):
    """Text deltas as they arrive; `result` holds the whole Completion once iteration ends.

        stream = engines.stream("coder", "write a haiku")
        async for delta in stream:
            print(delta, end="")
        print(stream.result.usage)

    With tools, `events()` yields the text deltas and the tool calls' pieces (`ToolCallDelta`)
    as they arrive (a local engine's calls whole, each once decoded); iterate one or the other.
    """

    def __init__(self, events: AsyncIterator[str | ToolCallDelta]) -> None:
        self._events = events
        self.result: Completion[OutputT] | None = None

    def __aiter__(self) -> AsyncIterator[str]:
        return self._text()

    def events(self) -> AsyncIterator[str | ToolCallDelta]:
        return self._events

    async def _text(self) -> AsyncIterator[str]:
        async for event in self._events:
            if isinstance(event, str):
                yield event


complete = _completing(call_arguments)
stream = _streaming(call_arguments)


def complete_sync(role_or_model: str | Script, messages: Messages, **kwargs: Any) -> Completion[Any]:
    """`complete()` for scripts and REPLs."""
    return run_sync(complete(role_or_model, messages, **kwargs))


async def _run(request: _Request, *, reasks: int, streamed: bool) -> AsyncIterator[str | ToolCallDelta | Completion[Any]]:
    """The call under its `chat` span (opened here with the request's attributes, finished in
    `_finish` with the answer's, the egress record added): cleared by the guard, answered (live, or from a recording
    under a replay), then measured, traced and recorded. Yields the text as it arrives, then
    the Completion; a failure is recorded on the span and in the recording, and raised."""
    # A stream's span outlives the caller's `async for`: it must not become current there.
    with chat_span(request.target.model, role=request.target.role, messages=plain_messages(request.conversation),
                   capture=span_capture(request.settings, request.target.role),
                   temperature=request.call.get("temperature"), max_tokens=request.call.get("max_tokens"),
                   stream=streamed, current=not streamed) as span:
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
) -> AsyncIterator[str | ToolCallDelta | Completion[Any]]:
    """Ask, read the answer as it streams, check it against the schema (tool calls against
    their tools'); ask again with the problems up to `reasks` times, then raise SchemaError
    with the last raw text."""
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
        calls, problems = _calls(request, answer, conversation)
        output = None
        if not calls and problems is None:
            output, problems = checked(request.schema, raw_schema, answer.text)
        if problems is None:
            yield Completion(  # unparametrized: Completion[X] is rebuilt per call once pydantic's cache drops it
                text=answer.text,
                output=output,
                tool_calls=calls,
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
                f"{_wanted(request, answer)}: {problems}",
                raw_text=_raw(answer),
                model=answer.served,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                finish_reason=answer.finish_reason,
            )
        conversation = reask(conversation, _raw(answer), answer.served, problems, request.schema, raw_schema)


def _calls(request: _Request, answer: Any, conversation: list[dict[str, Any]]) -> tuple[list[ToolCall], str | None]:
    """The answer's tool calls, typed, and what is wrong with them (None: nothing, or no tools)."""
    if request.tools is None:
        return [], None
    return request.tools.validated(answer.tool_calls, salt=f"{len(conversation)}:{_raw(answer)}")


def _raw(answer: Any) -> str:
    """What the model answered, as text: its tool calls written out when it made any."""
    if not answer.tool_calls:
        return str(answer.text)
    return json.dumps({"tool_calls": [{"name": name, "arguments": arguments} for _, name, arguments in answer.tool_calls]})


def _wanted(request: _Request, answer: Any) -> str:
    if answer.tool_calls or (request.tools is not None and request.tools.mode == "required"):
        return "its tools' argument schemas"
    return schema_title(request.schema)


async def _replayed(
    request: _Request, cleared: Cleared, reasks: int, streamed: bool
) -> AsyncIterator[str | ToolCallDelta | Completion[Any]]:
    """The recorded answer, through the scripted engine and the same path as a live one,
    reported as the original call was (a call that failed fails again, with the same error)."""
    from turnout.engines import scripted

    recorded = request.recorded(cleared)
    if recorded.error_type is not None:
        raise revive_failure(recorded)
    name = f"replay-{recorded.span_id}-{id(request):x}"
    calls = [ToolCall.model_validate(call) for call in recorded.tool_calls]
    text = recorded.text
    if request.tools is not None:  # answered by a local engine here: the turn it would decode
        text = request.tools.local_reply(recorded.text, calls, answer_is_json=request.answer_schema() is not None)
    answer = scripted.Reply(
        text=text, input_tokens=recorded.input_tokens, output_tokens=recorded.output_tokens,
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
                    "tool_calls": calls,
                })
            yield item


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
