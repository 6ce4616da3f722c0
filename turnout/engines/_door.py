"""`complete()` and `stream()`: the one door through which turnout calls any model.

role or model string → config → checks → litellm (Router for roles: retries, timeouts,
fallbacks) → the engine → a typed `Completion`, validated against the output schema.
"""

from __future__ import annotations

import json
import time
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from turnout._sync import run_sync
from turnout.config import Settings
from turnout.engines._guard import Cleared
from turnout.engines._locality import split_model
from turnout.engines._meter import record
from turnout.engines._policy import served_locality
from turnout.engines._provider import EXTRAS_FIELD, TTFT_FIELD, litellm_module
from turnout.engines._recording import graph_position, json_schema_of, record_call, revive_failure
from turnout.engines._replay import ReplaySession, current_replay
from turnout.engines._request import Messages, Target, _Request
from turnout.engines._result import Completion, Locality, Timings, Usage
from turnout.engines._routing import endpoint_retries, router_for
from turnout.engines.schema_bounds import answer_problems
from turnout.engines.tag import instructions, plain_messages, summary
from turnout.errors import SchemaError, TurnoutError
from turnout.telemetry._calls import CallRecord
from turnout.telemetry._spans import ChatSpan

OutputT = TypeVar("OutputT", bound=BaseModel)


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


async def _send(target: Target, settings: Settings, cleared: Cleared, messages: list[dict[str, Any]], **params: Any) -> Any:
    litellm = litellm_module()
    retries = settings.remote_retries if cleared.primary_remote else settings.local_retries
    retries = max(retries, endpoint_retries(settings, target.role))
    params.setdefault("timeout", settings.timeout_s)
    params.update(cleared.call)
    plain = plain_messages(messages)
    try:
        if target.role is not None:
            router = router_for(settings)
            return await router.acompletion(model=target.role, messages=plain, num_retries=retries, **params)
        if target.api_base:
            params["api_base"] = target.api_base
        return await litellm.acompletion(model=target.model, messages=plain, num_retries=retries, **params)
    except Exception as exc:
        if cleared.primary_remote:  # the request went out before it failed
            cleared.count_sent(messages)
        unwrapped = _unwrap(exc)
        if unwrapped is exc:
            raise
        raise unwrapped from None


def _served(
    response: Any, target: Target, settings: Settings, cleared: Cleared, conversation: list[dict[str, Any]]
) -> tuple[str, Locality]:
    """The model that answered and where it runs (which of a fleet's servers, when litellm
    says); a conversation that reached a remote model is counted as sent."""
    hidden = getattr(response, "_hidden_params", {}) or {}
    served = hidden.get("litellm_model_name")
    served = served if isinstance(served, str) and "/" in served else target.model
    base = hidden.get("api_base")
    locality = served_locality(served, target.role, base if isinstance(base, str) and base else target.api_base, settings)
    if cleared.primary_remote or locality == "remote":
        cleared.count_sent(conversation)
    return served, locality


def _usage(response: Any) -> Usage:
    usage = getattr(response, "usage", None)
    if usage is None:
        return Usage()
    return Usage(input_tokens=usage.prompt_tokens or 0, output_tokens=usage.completion_tokens or 0)


def _validate(schema: type[OutputT], text: str) -> OutputT:
    return schema.model_validate_json(_strip_fences(text))


def raw_schema_of(call: dict[str, Any]) -> dict[str, Any] | None:
    """The raw JSON schema a call was given (`json_schema=`), if any."""
    response_format = call.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema", {}).get("schema")
        return schema if isinstance(schema, dict) else None
    return None


def _checked(
    schema: type[OutputT] | None, raw_schema: dict[str, Any] | None, text: str
) -> tuple[OutputT | None, str | None]:
    """The validated output (pydantic `schema`), and why the text fails its schema (None
    when it passes). A raw schema is validated too: local engines decode under a grammar
    whose long length bounds `schema_bounds` dropped, and remote models may answer anything."""
    if schema is not None:
        try:
            return _validate(schema, text), None
        except ValidationError as exc:
            return None, _validation_summary(exc)
    if raw_schema is not None:
        return None, answer_problems(raw_schema, _strip_fences(text))
    return None, None


def _schema_title(schema: type[BaseModel] | None) -> str:
    return schema.__name__ if schema is not None else "the JSON schema"


def _schema_json(schema: type[BaseModel] | None, raw_schema: dict[str, Any] | None) -> dict[str, Any]:
    return json_schema_of(schema) if schema is not None else raw_schema or {}


def _strip_fences(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0]
    return stripped


def _validation_summary(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:5]
    )


def _reask(
    messages: list[dict[str, Any]], raw: str, served: str, problems: str, schema: dict[str, Any]
) -> list[dict[str, Any]]:
    return [
        *messages,
        {"role": "assistant", "content": summary(raw, origin=served)},
        {
            "role": "user",
            "content": instructions(
                f"That answer does not validate against the required JSON schema: "
                f"{problems}. Reply with only a JSON object matching this "
                f"schema: {json.dumps(schema)}"
            ),
        },
    ]


async def complete(
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
) -> Completion[OutputT]:
    """Call the model behind a role (`"router"`) or a litellm model string (`"llamacpp/smollm2"`).

    With `schema`, the answer is validated into that pydantic model (`Completion.output`);
    local engines decode under the schema's grammar, and an answer that still fails to
    validate is re-asked `settings.schema_retries` times with the error, then raised as
    SchemaError carrying the raw text. With `json_schema` (a raw JSON schema, for callers
    that have no pydantic model, such as `turnout serve`'s clients) local engines decode under
    it too, and the answer is returned as `Completion.text`, validated and re-asked the same
    way. A schema past `schema_bounds`' limits raises SchemaRefused before any model call.
    Extra keyword arguments go to litellm unchanged.
    """
    session, live, request = _start(
        role_or_model, messages, schema, settings, temperature, max_tokens, timeout, params, json_schema=json_schema
    )
    with request.span() as span:
        cleared = await request.clear(span)
        recorded = request.recorded(session, cleared, schema) if session is not None and live is None else None
        try:
            if recorded is not None:
                result = await _replayed(request, cleared, schema, recorded)
            else:
                result = await _complete(request.target, request.settings, cleared, schema, request.call)
        except Exception as exc:
            request.record_failure(span, cleared, schema, exc)
            raise
        finally:
            span.record(cleared.report.attributes())
        _finish(span, result)
        record_call(request.settings, span, cleared.messages, schema, request.call, result)
        return result


def _start(
    role_or_model: str,
    messages: Messages,
    schema: type[BaseModel] | None,
    settings: Settings | None,
    temperature: float | None,
    max_tokens: int | None,
    timeout: float | None,
    params: dict[str, Any],
    *,
    json_schema: dict[str, Any] | None = None,
) -> tuple[ReplaySession | None, str | None, _Request]:
    """The replay plan (see `_replay_plan`) and the prepared request; a call a replay answers
    from its recording is not checked against a model that need not exist here."""
    session, live = _replay_plan(role_or_model)
    request = _Request.prepare(
        live or role_or_model, messages, schema, settings, temperature, max_tokens, timeout, params,
        json_schema=json_schema, check=session is None or live is not None,
    )
    return session, live, request


def _replay_plan(role_or_model: str) -> tuple[ReplaySession | None, str | None]:
    """Under a replay: the session, and what a live call goes to (None: answer from the
    recording). Outside one: (None, None), a normal call."""
    session = current_replay()
    if session is None:
        return None, None
    node, step = graph_position()
    rule = session.live_rule(node, step, role_or_model)
    if rule is None:
        return session, None
    session.live_calls += 1
    return session, rule.model or role_or_model


async def _replayed(request: _Request, cleared: Cleared, schema: type[OutputT] | None, record: CallRecord) -> Completion[OutputT]:
    """The recorded answer, through the scripted engine, reported as the original call was
    (a call that failed fails again, with the same error)."""
    from turnout.engines import scripted

    if record.error_type is not None:
        raise revive_failure(record)

    name = f"replay-{record.span_id}-{id(request):x}"
    answer = scripted.Reply(
        text=record.text, input_tokens=record.input_tokens, output_tokens=record.output_tokens,
        finish_reason=record.finish_reason,
    )
    with scripted.scripted(name, [answer]):
        local = Target(request.target.requested, None, f"scripted/{name}", None)
        call = {k: v for k, v in request.call.items() if k not in ("stream", "stream_options")}
        result = await _complete(local, request.settings, Cleared(cleared.messages, cleared.report), schema, call)
    return result.model_copy(update={
        "model": record.model, "provider": split_model(record.model)[0], "role": record.role,
        "locality": record.locality, "cost_usd": record.cost_usd, "engine_stats": record.engine_stats,
    })


async def _complete(
    target: Target,
    settings: Settings,
    cleared: Cleared,
    schema: type[OutputT] | None,
    call: dict[str, Any],
) -> Completion[OutputT]:
    started = time.perf_counter()
    raw_schema = raw_schema_of(call)
    usage = Usage()
    cost = 0.0
    attempt = 0
    conversation = cleared.messages
    while True:
        attempt += 1
        response = await _send(target, settings, cleared, conversation, **call)
        usage = usage + _usage(response)
        served, locality = _served(response, target, settings, cleared, conversation)
        hidden = getattr(response, "_hidden_params", {}) or {}
        cost += 0.0 if locality == "local" else (hidden.get("response_cost") or 0.0)
        text = response.choices[0].message.content or ""
        output, problems = _checked(schema, raw_schema, text)
        if problems is not None:
            if attempt > settings.schema_retries:
                raise SchemaError(
                    f"{served} answered {attempt} time(s) with output that does not match "
                    f"{_schema_title(schema)}: {problems}",
                    raw_text=text,
                    model=served,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    finish_reason=response.choices[0].finish_reason,
                )
            conversation = _reask(conversation, text, served, problems, _schema_json(schema, raw_schema))
            continue
        total = time.perf_counter() - started
        return Completion(  # unparametrized: Completion[X] is rebuilt per call once pydantic's cache drops it
            text=text,
            output=output,
            model=served,
            requested=target.requested,
            role=target.role,
            provider=split_model(served)[0],
            locality=locality,
            finish_reason=response.choices[0].finish_reason,
            usage=usage,
            timings=Timings.measure(total, hidden.get(TTFT_FIELD) if attempt == 1 else None, usage.output_tokens),
            cost_usd=cost,
            attempts=attempt,
            engine_stats=hidden.get(EXTRAS_FIELD) or {},
            egress=cleared.report,
        )


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


def complete_sync(role_or_model: str, messages: Messages, **kwargs: Any) -> Completion[Any]:
    """`complete()` for scripts and REPLs."""
    return run_sync(complete(role_or_model, messages, **kwargs))
