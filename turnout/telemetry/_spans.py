"""Model-call and tool spans, following the OpenTelemetry GenAI semantic conventions.

Every model call (`engines.complete()`, `engines.stream()`, in `_door._run`) has a `chat
{model}` span: `chat_span` opens it with the request's attributes, `ChatSpan.finish` records
the answer's; tools open `execute_tool {name}`. Both are free when telemetry is not configured: nothing is computed
for a span that is not recording.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from turnout.telemetry import _conventions as sc
from turnout.telemetry._content import CaptureMode, input_messages, output_messages

_tracer = trace.get_tracer("turnout")
F = TypeVar("F", bound=Callable[..., Any])


def tracer() -> trace.Tracer:
    return _tracer


def mark_failed(span: Span, exc: BaseException) -> None:
    span.set_attribute(sc.ERROR_TYPE, type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR, str(exc)[:500]))
    span.record_exception(exc)


def mark_error(span: Span, error_type: str, message: str) -> None:
    """An error handled inside the span's work (a step that failed its branch only, a run that
    ended without an answer): its status says so, though nothing was raised through it."""
    span.set_attribute(sc.ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, message[:500]))


class ChatSpan:
    """The span of one model call, filled in as the call progresses."""

    def __init__(self, span: Span, capture: CaptureMode) -> None:
        self.span = span
        self.capture = capture

    def record(self, attributes: dict[str, Any]) -> None:
        if self.span.is_recording():
            self.span.set_attributes(attributes)

    def finish(
        self,
        *,
        response_model: str,
        provider: str,
        locality: str,
        input_tokens: int,
        output_tokens: int,
        finish_reason: str | None,
        ttft_s: float | None,
        tokens_per_s: float | None,
        cost_usd: float | None,
        attempts: int,
        text: str,
        engine_stats: dict[str, Any] | None = None,
    ) -> None:
        span = self.span
        if not span.is_recording():
            return
        attributes: dict[str, Any] = {
            sc.GEN_AI_RESPONSE_MODEL: response_model.partition("/")[2] or response_model,
            sc.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
            sc.GEN_AI_RESPONSE_FINISH_REASONS: [finish_reason or "stop"],
            sc.TURNOUT_MODEL: response_model,
            sc.TURNOUT_ENGINE: provider,
            sc.TURNOUT_LOCALITY: locality,
            sc.TURNOUT_ATTEMPTS: attempts,
        }
        if ttft_s is not None:
            attributes[sc.TURNOUT_TTFT_S] = ttft_s
            attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ttft_s
        if tokens_per_s is not None:
            attributes[sc.TURNOUT_TOKENS_PER_S] = tokens_per_s
        if cost_usd is not None:
            attributes[sc.TURNOUT_COST_USD] = cost_usd
        for key, value in (engine_stats or {}).items():
            if isinstance(value, (bool, int, float, str)):
                attributes[f"{sc.TURNOUT_ENGINE_STATS}.{key}"] = value
        span.set_attributes(attributes)  # one call: each set_attribute takes the span's lock
        if self.capture.on_span:
            span.set_attribute(sc.GEN_AI_OUTPUT_MESSAGES, output_messages(text, finish_reason))
        if self.capture.as_event:
            span.add_event(
                sc.INFERENCE_DETAILS_EVENT,
                {sc.GEN_AI_OUTPUT_MESSAGES: output_messages(text, finish_reason)},
            )


@contextmanager
def chat_span(
    model: str,
    *,
    role: str | None,
    messages: list[dict[str, Any]],
    capture: CaptureMode,
    temperature: float | None = None,
    max_tokens: int | None = None,
    stream: bool = False,
    current: bool = True,
) -> Iterator[ChatSpan]:
    """A `chat {model}` CLIENT span; `current=False` for spans that outlive a `with` block
    in the caller's code (streams), which must not become the caller's current span."""
    provider, _, name = model.partition("/")
    name = name or model
    attributes: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: sc.CHAT,
        sc.GEN_AI_PROVIDER_NAME: sc.provider_name(provider),
        sc.GEN_AI_REQUEST_MODEL: name,
        sc.TURNOUT_MODEL: model,
    }
    if role:
        attributes[sc.TURNOUT_ROLE] = role
    if temperature is not None:
        attributes[sc.GEN_AI_REQUEST_TEMPERATURE] = temperature
    if max_tokens is not None:
        attributes[sc.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    if stream:
        attributes[sc.GEN_AI_REQUEST_STREAM] = True
    span = _tracer.start_span(f"{sc.CHAT} {name}", kind=SpanKind.CLIENT, attributes=attributes)
    if span.is_recording() and capture is not CaptureMode.NO_CONTENT:
        content = input_messages(messages)
        if capture.on_span:
            span.set_attribute(sc.GEN_AI_INPUT_MESSAGES, content)
        if capture.as_event:
            span.add_event(sc.INFERENCE_DETAILS_EVENT, {sc.GEN_AI_INPUT_MESSAGES: content})
    try:
        if current:
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                yield ChatSpan(span, capture)
        else:
            yield ChatSpan(span, capture)
    except BaseException as exc:
        mark_failed(span, exc)
        raise
    finally:
        span.end()


@contextmanager
def operation_span(name: str, attributes: dict[str, Any]) -> Iterator[Span]:
    attributes = {k: v for k, v in attributes.items() if v is not None}
    with _tracer.start_as_current_span(
        name,
        kind=SpanKind.INTERNAL,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            if not is_control_flow(exc):
                mark_failed(span, exc)
            raise


def is_control_flow(exc: BaseException) -> bool:
    """LangGraph's interrupts and Command(goto=...) travel as exceptions; they are not errors."""
    return type(exc).__name__ in ("GraphInterrupt", "NodeInterrupt", "ParentCommand", "GraphBubbleUp")


def tool_span(name: str, **attributes: Any) -> Any:
    """An `execute_tool {name}` span around a tool's work, current while it runs."""
    return operation_span(
        f"{sc.EXECUTE_TOOL} {name}",
        {sc.GEN_AI_OPERATION_NAME: sc.EXECUTE_TOOL, sc.GEN_AI_TOOL_NAME: name, **attributes},
    )


def agent_span(agent: str, **attributes: Any) -> Any:  # yields the span: mark_error(span, …) on a handled failure
    """An `invoke_agent {agent}` span, current while the agent works (for agents run inside
    a node that is not itself an agent, such as a fan-out worker)."""
    return operation_span(
        f"{sc.INVOKE_AGENT} {agent}",
        {sc.GEN_AI_OPERATION_NAME: sc.INVOKE_AGENT, sc.GEN_AI_AGENT_NAME: agent, **attributes},
    )


def traced_tool(name: str | None = None) -> Callable[[F], F]:
    """Decorate a tool function (sync or async) so each call gets an `execute_tool` span."""

    def decorate(func: F) -> F:
        tool_name = name or func.__name__
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with tool_span(tool_name):
                    return await func(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with tool_span(tool_name):
                return func(*args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate


def agent_node(name: str) -> Callable[[F], F]:
    """Mark a graph node function as the work of the turnout agent `name`, so a traced graph
    (`instrument`) names its span `invoke_agent {name}`:

        @agent_node("planner")
        async def plan(state, runtime): ...
    """

    def mark(func: F) -> F:
        func.agent_name = name  # type: ignore[attr-defined]
        return func

    return mark
