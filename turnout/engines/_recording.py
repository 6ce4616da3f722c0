"""The door's side of call recordings: one CallRecord per finished model call."""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from turnout.config import Settings
from turnout.engines._result import Completion
from turnout.engines.tag import plain_messages
from turnout.telemetry._calls import CallRecord, append_call, request_key
from turnout.telemetry._redact import redact
from turnout.telemetry._spans import ChatSpan

if TYPE_CHECKING:
    from opentelemetry.trace import Span


def graph_position() -> tuple[str | None, int | None]:
    """The LangGraph node and step this call is made from (None outside a graph)."""
    if "langgraph.config" not in sys.modules:
        return None, None
    from langgraph.config import get_config

    try:
        metadata = get_config().get("metadata") or {}
    except RuntimeError:  # not inside a runnable
        return None, None
    step = metadata.get("langgraph_step")
    return metadata.get("langgraph_node"), step if isinstance(step, int) else None


def schema_name(schema: type[BaseModel] | None) -> str | None:
    return schema.__name__ if schema is not None else None


@lru_cache(maxsize=512)
def json_schema_of(schema: type[BaseModel]) -> dict[str, Any]:
    """`schema.model_json_schema()`, built once per class (calls reuse their schemas)."""
    return schema.model_json_schema()


def record_call(
    settings: Settings,
    span: ChatSpan,
    messages: list[dict[str, Any]],
    schema: type[BaseModel] | None,
    params: dict[str, Any],
    result: Completion[Any] | None = None,
    *,
    failure: BaseException | None = None,
    requested: str = "",
    role: str | None = None,
    model: str = "",
    locality: str = "local",
) -> None:
    """Append the call (its answer, or how it failed) to its run's recording, when recording is
    on and the call is traced. Secrets are redacted as in traces; the replay key is taken
    before, so a replayed run still matches its calls."""
    traces = settings.traces_path
    context = span.span.get_span_context()
    if not settings.record_calls or traces is None or not context.is_valid:
        return
    plain = plain_messages(messages)
    node, step = graph_position()
    if result is not None:
        requested, role, model, locality = result.requested, result.role, result.model, result.locality
        outcome: dict[str, Any] = {
            "text": result.text, "finish_reason": result.finish_reason, "input_tokens": result.usage.input_tokens,
            "output_tokens": result.usage.output_tokens, "cost_usd": result.cost_usd, "duration_s": result.timings.total_s,
            "engine_stats": result.engine_stats, "tool_calls": [call.model_dump() for call in result.tool_calls],
        }
    else:
        assert failure is not None
        outcome = {
            "text": getattr(failure, "raw_text", ""), "error_type": type(failure).__name__, "error": redact(str(failure)),
        }
    outcome["text"] = redact(outcome["text"] or "")
    append_call(
        traces,
        CallRecord(
            trace_id=f"{context.trace_id:032x}",
            span_id=f"{context.span_id:016x}",
            key=request_key(requested, plain, schema_name(schema)),
            node=node,
            step=step,
            requested=requested,
            role=role,
            model=model,
            locality=locality,
            messages=[{**message, "content": _redacted(message.get("content"))} for message in plain],
            schema_name=schema_name(schema),
            json_schema=json_schema_of(schema) if schema is not None else None,
            params={k: v for k, v in params.items() if k in ("temperature", "max_tokens") and v is not None},
            **outcome,
        ),
    )


def record_tool_call(
    settings: Settings, span: Span, name: str, arguments: dict[str, Any], text: str, kind: str, error: str | None,
    duration_s: float,
) -> None:
    """Append a tool call (its arguments and the result the model was given) to its run's
    recording, so a replay answers it without running the tool again."""
    from turnout.engines._replay import tool_call_messages, tool_requested

    traces = settings.traces_path
    context = span.get_span_context()
    if not settings.record_calls or traces is None or not context.is_valid:
        return
    node, step = graph_position()
    requested = tool_requested(name)
    messages = tool_call_messages(arguments)
    append_call(
        traces,
        CallRecord(
            trace_id=f"{context.trace_id:032x}", span_id=f"{context.span_id:016x}",
            key=request_key(requested, messages, None), node=node, step=step, requested=requested,
            model=requested, locality="local", messages=[{**m, "content": redact(m["content"])} for m in messages],
            params={"kind": kind}, text=redact(text), error_type="ToolError" if error else None,
            error=redact(error) if error else None, duration_s=duration_s,
        ),
    )


def _redacted(content: Any) -> Any:
    return redact(content) if isinstance(content, str) else content


def revive_failure(record: CallRecord) -> Exception:
    """The exception a recorded call failed with, as near the original as can be rebuilt:
    turnout's own errors by class, anything else as an exception of the same class name."""
    from turnout import errors

    cls = getattr(errors, record.error_type or "", None)
    message = record.error or ""
    if cls is errors.SchemaError:
        return errors.SchemaError(message, raw_text=record.text, model=record.model)
    if isinstance(cls, type) and issubclass(cls, errors.TurnoutError) and cls is not errors.EgressRefused:
        try:
            return cls(message)
        except TypeError:
            pass
    return type(record.error_type or "RecordedFailure", (Exception,), {})(message)
