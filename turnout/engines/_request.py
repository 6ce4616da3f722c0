"""One model call, resolved and checked: the role or model it goes to, its messages, the
litellm parameters, and the span, guard and recording steps `complete()` and `stream()` share."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

from pydantic import BaseModel

from turnout.config import Settings, get_settings
from turnout._config_roles import check_role_name
from turnout.engines._checks import check_model, check_role
from turnout.engines.privacy import Cleared, EgressReport, guard
from turnout.engines._meter import record_refusal
from turnout.engines._recording import json_schema_of, record_call, schema_name
from turnout.engines._replay import ReplaySession, recorded_answer, replay_plan
from turnout.engines._schema_check import raw_schema_of
from turnout.engines.schema_bounds import check_schema
from turnout.engines.scripted import Script
from turnout.engines.tag import Part, Tagged, plain_messages
from turnout.engines.tool_calls import ToolChoice, ToolLike, ToolSet, tool_set
from turnout.errors import EgressRefused, SchemaError, UnknownRole, UserError
from turnout.telemetry import _conventions as sc
from turnout.telemetry._calls import CallRecord
from turnout.telemetry._spans import ChatSpan

logger = logging.getLogger("turnout")
Messages: TypeAlias = str | Tagged | Part | Sequence[Mapping[str, Any]]

OutputT = TypeVar("OutputT", bound=BaseModel)


@dataclass(frozen=True)
class Target:
    """What a role or model string resolves to under the current settings."""

    requested: str
    role: str | None
    model: str
    api_base: str | None


def resolve(role_or_model: str, settings: Settings | None = None) -> Target:
    """A role name (`planner`, or one of your own) or a litellm model string (`provider/name`).
    A role nobody configured calls the default model (said once); a near-miss of a known role
    is refused with the closest name."""
    settings = settings or get_settings()
    if "/" in role_or_model:
        return Target(role_or_model, None, role_or_model, None)
    known = settings.roles.names()
    try:
        check_role_name(role_or_model, known)
    except ValueError as exc:
        raise UnknownRole(f"{exc}; or pass a model string such as llamacpp/smollm2") from None
    config = settings.roles.get(role_or_model)
    if not settings.roles.configured(role_or_model) and role_or_model not in _noticed:
        _noticed.add(role_or_model)
        logger.warning("role %r is not in [roles]: it calls the default model %s; give it a model with "
                       "[roles] %s = \"provider/name\"", role_or_model, config.model, role_or_model)
    return Target(role_or_model, role_or_model, config.model, config.api_base)


_noticed: set[str] = set()


def _messages(messages: Messages) -> list[dict[str, Any]]:
    """Message dicts; content stays tagged (a Tagged or Part) until the guard has judged it."""
    if isinstance(messages, (str, Tagged, Part)):
        return [{"role": "user", "content": messages}]
    return [dict(m) for m in messages]


def raw_response_format(json_schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI `response_format` for a raw JSON schema: local engines decode under it;
    remote models get it as their provider's structured-output request."""
    title = json_schema.get("title")
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", title)[:64] if isinstance(title, str) and title else "output"
    return {"type": "json_schema", "json_schema": {"name": name, "schema": json_schema}}


def _call_params(
    schema: type[BaseModel] | None, json_schema: dict[str, Any] | None, params: dict[str, Any]
) -> dict[str, Any]:
    call = {k: v for k, v in params.items() if v is not None}
    if schema is not None and json_schema is not None:
        raise UserError(
            "pass schema= (a pydantic model, validated into Completion.output) or json_schema= "
            "(a JSON schema dict, answered as raw text), not both"
        )
    if schema is not None:
        call["response_format"] = schema
    elif json_schema is not None:
        call["response_format"] = raw_response_format(json_schema)
    return call


@dataclass
class _Request(Generic[OutputT]):
    """One call, resolved and checked: what `complete()` and `stream()` both start from
    (typed by the schema its answer is validated into)."""

    target: Target
    settings: Settings
    conversation: list[dict[str, Any]]
    call: dict[str, Any]
    schema: type[BaseModel] | None = None
    replay: ReplaySession | None = None  # set when a replay answers this call from its recording
    tools: ToolSet | None = None
    script: Script | None = None  # a test double passed in, held while the call lives

    @classmethod
    def start(
        cls,
        role_or_model: str | Script,
        messages: Messages,
        *,
        schema: type[BaseModel] | None,
        json_schema: dict[str, Any] | None,
        settings: Settings | None,
        params: dict[str, Any],
        tools: Sequence[ToolLike] | None = None,
        tool_choice: ToolChoice | None = None,
    ) -> _Request[Any]:
        """The call resolved and checked. `json_schema`: a raw JSON schema the answer must
        follow (instead of a pydantic `schema`); `tools`/`tool_choice`: OpenAI-style, checked
        (`tool_calls`); `params`: litellm's, None values dropped.
        Under a replay, a call answered from its recording is not checked against a model
        that need not exist here, and a call the replay sends live goes where its rule says."""
        script = role_or_model if isinstance(role_or_model, Script) else None
        requested = script.model if script is not None else str(role_or_model)
        session, live = replay_plan(requested)
        settings = settings or get_settings()
        target = resolve(live or requested, settings)
        if session is None or live is not None:
            if target.role is not None:
                check_role(target.role, settings.roles.get(target.role))
            else:
                check_model(target.model, target.api_base)
        if json_schema is not None:
            check_schema(json_schema)
        toolset = tool_set(tools, tool_choice, params.pop("parallel_tool_calls", None))
        call = _call_params(schema, json_schema, params)
        return cls(target, settings, _messages(messages), call, schema, session if live is None else None, toolset, script)

    def recorded(self, cleared: Cleared) -> CallRecord:
        """The recorded call this request matches; ReplayDiverged when there is none."""
        assert self.replay is not None
        return recorded_answer(self.replay, self.target.requested, plain_messages(cleared.messages), schema_name(self.schema))

    def record_failure(self, span: ChatSpan, cleared: Cleared, exc: Exception) -> None:
        if isinstance(exc, SchemaError):  # what the model spent, and whether it was cut off
            span.record({
                sc.GEN_AI_USAGE_INPUT_TOKENS: exc.input_tokens or 0,
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: exc.output_tokens or 0,
                sc.GEN_AI_RESPONSE_FINISH_REASONS: [exc.finish_reason or "unknown"],
            })
        record_call(
            self.settings, span, cleared.messages, self.schema, self.call, failure=exc,
            requested=self.target.requested, role=self.target.role, model=self.target.model,
            locality="remote" if cleared.primary_remote else "local",
        )

    async def clear(self, span: ChatSpan) -> Cleared:
        """The egress guard's verdict on this call; a refusal is recorded and raised."""
        target = self.target
        try:
            cleared = await guard(target.role, target.model, target.api_base, self.settings, self.conversation)
        except EgressRefused as exc:
            if isinstance(exc.report, EgressReport):
                span.record(exc.report.attributes())
            record_refusal()
            raise
        if cleared.report.remote_models:  # what goes with the messages: the answer's schema, the tools
            answer = self.answer_schema()
            cleared.schema_bytes = len(json.dumps(answer).encode()) if answer is not None else 0
            if self.tools is not None:
                cleared.schema_bytes += self.tools.definitions_bytes()
        return cleared

    def answer_schema(self) -> dict[str, Any] | None:
        """The JSON schema the final answer must follow (pydantic's or the raw one), if any."""
        return json_schema_of(self.schema) if self.schema is not None else raw_schema_of(self.call)

