"""Python functions as tools a model can call.

    @tool
    def search_code(query: str, limit: int = 5) -> list[str]:
        '''Search the repository's code for a phrase; paths and lines of the best matches.'''

The argument schema comes from the type hints (through pydantic, so `Annotated[int, Field(
ge=1)]`, enums, literals and models all work); the description from the docstring. A call's
arguments are validated before the function runs; sync functions run in a worker thread,
with a timeout (at which an async function is cancelled; a sync one cannot be stopped, so it
runs to its end in its thread while the agent goes on). What the tool returns goes back to
the model as `tool_output` (under `no-code` no remote model sees it), unless the tool
declares a kind a remote model may see (`kind="path"`) or returns tagged content itself. Nothing is lost silently: an exception, a
timeout and a result cut to size are each said to the model and on the `execute_tool` span.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import time
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, overload

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from turnout.config import Settings, get_settings
from turnout.engines import tag
from turnout.engines._recording import record_tool_call
from turnout.engines._replay import recorded_answer, replay_plan, tool_call_messages, tool_requested
from turnout.engines.tag import ContentKind, Part, Tagged
from turnout.engines.schema_bounds import answer_problems
from turnout.engines.tool_calls import ToolSpec
from turnout.errors import ToolDefinitionError
from turnout.telemetry import _conventions as sc
from turnout.telemetry._spans import mark_error, tool_span

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_RESULT_CHARS = 8_000
TRUNCATED = "\n[… {cut:,} more characters cut: the result was longer than {limit:,} characters]"


@dataclass(frozen=True)
class ToolResult:
    """What a call gave back to the model: the content, and whether it failed or was cut."""

    content: Tagged
    error: str | None = None  # the error the model was told (exception, timeout, bad arguments)
    truncated_chars: int = 0


class Tool:
    """A function the model can call: its spec (name, description, argument schema) and how to
    run it. Build one with `@tool` or `Tool(fn, …)`."""

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        kind: ContentKind = "tool_output",
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
        spec: ToolSpec | None = None,
        span_attributes: dict[str, Any] | None = None,
    ) -> None:
        """`spec`: the tool as the model sees it, when it does not come from `function`'s
        signature (`Tool.remote`); `kind`: what the tool's output holds, for the egress guard (`tool_output`, which
        `no-code` keeps from remote models; `path` or `signature` for a tool whose output is
        only those)."""
        self.function = function
        self.name = spec.name if spec is not None else name or function.__name__
        self.description = (spec.description if spec is not None else description if description is not None
                            else inspect.cleandoc(function.__doc__ or ""))
        self.kind: ContentKind = kind
        self.timeout_s = timeout_s
        self.max_result_chars = max_result_chars
        self.arguments: type[BaseModel] | None = None if spec is not None else arguments_model(function, self.name)
        self.spec = spec or ToolSpec(name=self.name, description=self.description,
                                     parameters=self.arguments.model_json_schema() if self.arguments else {})
        self.span_attributes: dict[str, Any] = dict(span_attributes or {})
        functools.update_wrapper(self, function)  # type: ignore[arg-type]

    @classmethod
    def remote(
        cls, spec: ToolSpec, run: Callable[[dict[str, Any]], Awaitable[Any]], *, kind: ContentKind = "tool_output",
        timeout_s: float | None = DEFAULT_TIMEOUT_S, max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
        span_attributes: dict[str, Any] | None = None,
    ) -> Tool:
        """A tool that runs elsewhere (an MCP server's): its spec as given, its arguments
        checked against the spec's JSON schema, `run(arguments)` doing the work."""

        async def call_remote(**arguments: Any) -> Any:
            return await run(arguments)

        return cls(call_remote, kind=kind, timeout_s=timeout_s, max_result_chars=max_result_chars, spec=spec,
                   span_attributes=span_attributes)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The function itself, called directly."""
        return self.function(*args, **kwargs)

    async def call(self, arguments: dict[str, Any], *, call_id: str | None = None,
                   settings: Settings | None = None) -> ToolResult:
        """A model's call of this tool, under its `execute_tool` span: run (or, under a replay,
        answered from the recording unless the tool is named live) and recorded."""
        attributes = {sc.GEN_AI_TOOL_CALL_ID: call_id, sc.GEN_AI_TOOL_TYPE: "function",
                      sc.GEN_AI_TOOL_DESCRIPTION: self.description[:200] or None, **self.span_attributes}
        with tool_span(self.name, **attributes) as span:
            started = time.perf_counter()
            session, live = replay_plan(tool_requested(self.name))
            if session is not None and live is None:
                recorded = recorded_answer(session, tool_requested(self.name), tool_call_messages(arguments), None)
                kind = recorded.params.get("kind", "tool_output")
                result = ToolResult(tag.as_tagged(Part(kind=kind, text=recorded.text, origin=self.name)), error=recorded.error)
                span.set_attribute("turnout.tool.replayed", True)
            else:
                result = await self.invoke(arguments)
            text = str(result.content)
            span.set_attribute("turnout.tool.result_bytes", len(text.encode()))
            if result.truncated_chars:
                span.set_attribute("turnout.tool.truncated_chars", result.truncated_chars)
            if result.error:
                mark_error(span, "ToolError", result.error)
            kinds = {part.kind for part in result.content.parts}
            record_tool_call(settings or get_settings(), span, self.name, arguments, text,
                             kinds.pop() if len(kinds) == 1 else "tool_output", result.error, time.perf_counter() - started)
            return result

    async def invoke(self, arguments: dict[str, Any]) -> ToolResult:
        """Run the tool on a model's arguments (untraced, unrecorded: `call()` is the model's
        way in); failures become results the model can read."""
        if self.arguments is None:
            problems = answer_problems(self.spec.parameters, json.dumps(arguments))
            if problems:
                return self._failed(f"the arguments do not fit {self.name}'s schema: {problems}")
            kwargs = dict(arguments)
        else:
            try:
                values = self.arguments.model_validate(arguments)
            except ValidationError as exc:
                return self._failed(f"the arguments do not fit {self.name}'s schema: {_problems(exc)}")
            kwargs = {name: getattr(values, name) for name in type(values).model_fields}
        try:
            async with asyncio.timeout(self.timeout_s):
                if inspect.iscoroutinefunction(self.function):
                    value = await self.function(**kwargs)
                else:
                    value = await asyncio.to_thread(self.function, **kwargs)
                    if inspect.isawaitable(value):
                        value = await value
        except TimeoutError:
            return self._failed(f"{self.name} did not finish within {self.timeout_s:g}s and was stopped waiting for")
        except Exception as exc:  # the model is told, and may try something else
            return self._failed(f"{self.name} raised {type(exc).__name__}: {exc}")
        return self.result(value)

    def result(self, value: Any) -> ToolResult:
        """A return value as the content the model reads, cut to `max_result_chars`."""
        content = value if isinstance(value, (Part, Tagged)) else Part(kind=self.kind, text=_text(value), origin=self.name)
        tagged = tag.as_tagged(content)
        text = str(tagged)
        if len(text) <= self.max_result_chars:
            return ToolResult(tagged)
        cut = len(text) - self.max_result_chars
        kept: list[Part] = []
        room = self.max_result_chars
        for part in tagged.parts:
            if room <= 0:
                break
            kept.append(part if len(part.text) <= room else part.model_copy(update={"text": part.text[:room]}))
            room -= len(part.text)
        kept.append(tag.instructions(TRUNCATED.format(cut=cut, limit=self.max_result_chars)))
        return ToolResult(Tagged(parts=tuple(kept)), truncated_chars=cut)

    def _failed(self, message: str) -> ToolResult:
        return ToolResult(tag.as_tagged(tag.instructions(f"error: {message}")), error=message)


@overload
def tool(function: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None, kind: ContentKind = "tool_output",
    timeout_s: float | None = DEFAULT_TIMEOUT_S, max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(function: Callable[..., Any] | None = None, /, **options: Any) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a function a Tool: `@tool` or `@tool(kind="path", timeout_s=10)`."""
    if function is not None:
        return Tool(function, **options)
    return lambda f: Tool(f, **options)


def as_tool(item: Tool | Callable[..., Any] | Any) -> Tool:
    """A Tool from a Tool, an agent (`agent.as_tool()`) or a plain function."""
    if isinstance(item, Tool):
        return item
    if hasattr(item, "as_tool") and callable(item.as_tool):
        made = item.as_tool()
        if isinstance(made, Tool):
            return made
    if callable(item):
        return Tool(item)
    raise ToolDefinitionError(f"not a tool: {item!r}; pass a function, a Tool or an Agent")


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


def arguments_model(function: Callable[..., Any], name: str) -> type[BaseModel]:
    """The pydantic model of a function's arguments; ToolDefinitionError names a parameter
    that has no type hint, takes *args/**kwargs, or has a type no JSON schema can say."""
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception as exc:
        raise ToolDefinitionError(f"tool {name}: its type hints cannot be read ({exc})") from None
    fields: dict[str, Any] = {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"tool {name}: parameter {parameter.name!r} is *args/**kwargs, which a model cannot fill; "
                "name each argument"
            )
        if parameter.name not in hints:
            raise ToolDefinitionError(
                f"tool {name}: parameter {parameter.name!r} has no type hint; annotate it "
                f"(e.g. {parameter.name}: str) so the model knows what to pass"
            )
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (hints[parameter.name], default)
    try:
        model = create_model(f"{name}_arguments", __base__=_Arguments, **fields)
        model.model_json_schema()
    except Exception as exc:
        bad = next((p for p, (hint, _) in fields.items() if not _describable(hint)), None)
        where = f"parameter {bad!r}" if bad else "its parameters"
        raise ToolDefinitionError(
            f"tool {name}: {where} has a type a JSON schema cannot describe ({exc.__class__.__name__}); "
            "use str, int, float, bool, lists, dicts, enums, Literal or pydantic models"
        ) from None
    return model


def _describable(hint: Any) -> bool:
    try:
        create_model("probe", value=(hint, ...)).model_json_schema()
    except Exception:
        return False
    return True


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    if value is None:
        return "(no result)"
    try:
        return json.dumps(value, default=_jsonable)
    except (TypeError, ValueError):
        return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:5])


ToolLike = Tool | Callable[..., Any] | Callable[..., Awaitable[Any]]
