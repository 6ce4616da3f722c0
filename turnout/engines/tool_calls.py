"""Tool calling through the door: OpenAI-style `tools` and `tool_choice` on every engine.

A remote model gets litellm's native tool calling. A local engine is not trusted to write a
call freely: it decodes its turn under one JSON schema that admits only a well-formed choice,

    {"tool_calls": [{"name": <a declared tool>, "arguments": <valid for that tool>}, …]}
    {"answer": <the final answer: text, or the call's output schema>}

where `tool_choice` decides which shapes and which tools are allowed. The tools are described
to the model in a system message, earlier calls and results in the conversation are written
in the same shape, and the decoded object is read back into typed `ToolCall`s. Arguments a
model wrote that fail their tool's schema (a remote model's) are re-asked like any schema.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from turnout.engines import tag
from turnout.engines.schema_bounds import answer_problems, check_schema, grammar_schema
from turnout.errors import UserError

MAX_LOCAL_CALLS = 4  # parallel calls a local engine may make in one turn
MIN_ARGUMENT_CHARS = 64
_ALLOWED_MODES = ("auto", "required", "none")


class ToolSpec(BaseModel):
    """A tool as a model sees it: a name, what it does, and its arguments' JSON schema."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})

    def openai(self) -> dict[str, Any]:
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}


@runtime_checkable
class HasToolSpec(Protocol):
    """Anything that describes itself as a tool (`turnout.agents.Tool`, an agent's `as_tool()`)."""

    @property
    def spec(self) -> ToolSpec: ...


class ToolCall(BaseModel):
    """One call a model made: `arguments` are validated against the tool's schema."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)

    def openai(self) -> dict[str, Any]:
        """The call as it goes back into a conversation (an assistant message's `tool_calls`)."""
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": json.dumps(self.arguments)}}

    def result(self, content: tag.Content) -> dict[str, Any]:
        """The tool message answering this call. A plain string is `tool_output`: under
        `no-code` a remote model does not see it; tag it (`tag.path(…)`, …) if it may."""
        tagged = tag.tool_output(content, origin=self.name) if isinstance(content, str) else content
        return {"role": "tool", "tool_call_id": self.id, "name": self.name, "content": tagged}


class ToolCallDelta(BaseModel):
    """A piece of a streamed tool call: the first piece of a call has its id and name;
    `arguments` is the next fragment of the arguments' JSON text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


ToolChoice: TypeAlias = Literal["auto", "required", "none"] | str | Mapping[str, Any]
ToolLike: TypeAlias = ToolSpec | HasToolSpec | Mapping[str, Any]


@dataclass(frozen=True)
class ToolSet:
    """The tools of one call, checked, and what `tool_choice` allows."""

    specs: tuple[ToolSpec, ...]
    mode: Literal["auto", "required", "none"]
    named: str | None  # tool_choice named this one tool
    parallel: bool
    raw_choice: Any  # as the caller gave it, for litellm

    @property
    def callable(self) -> tuple[ToolSpec, ...]:
        if self.mode == "none":
            return ()
        return tuple(s for s in self.specs if self.named is None or s.name == self.named)

    def spec(self, name: str) -> ToolSpec | None:
        return next((s for s in self.specs if s.name == name), None)

    def definitions_bytes(self) -> int:
        return len(json.dumps([s.openai() for s in self.specs]).encode())

    def remote_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"tools": [s.openai() for s in self.specs]}
        if self.raw_choice is not None:
            params["tool_choice"] = self.raw_choice
        if not self.parallel:
            params["parallel_tool_calls"] = False
        return params

    # --- a local engine's turn ---------------------------------------------------------

    def local_schema(self, answer_schema: dict[str, Any] | None, max_tokens: int | None = None) -> dict[str, Any]:
        """The one schema a local engine decodes its turn under. With `max_tokens`, it allows
        as many parallel calls (up to MAX_LOCAL_CALLS) as still leave every free-text argument
        room for MIN_ARGUMENT_CHARS characters once the bounds are fitted to the budget."""
        most = MAX_LOCAL_CALLS if self.parallel else 1
        if max_tokens is None or most == 1:
            return self._local_schema(answer_schema, most)
        single = _shortest_text(self._local_schema(answer_schema, 1), max_tokens)
        for count in range(most, 1, -1):
            schema = self._local_schema(answer_schema, count)
            if _shortest_text(schema, max_tokens) >= min(MIN_ARGUMENT_CHARS, single):
                return schema
        return self._local_schema(answer_schema, 1)

    def _local_schema(self, answer_schema: dict[str, Any] | None, most_calls: int) -> dict[str, Any]:
        definitions: dict[str, Any] = {}
        calls = [
            {"type": "object",
             "properties": {"name": {"const": s.name},
                            "arguments": _hoisted(_object_schema(s.parameters), s.name, definitions)},
             "required": ["name", "arguments"], "additionalProperties": False}
            for s in self.callable
        ]
        calling = {
            "type": "object",
            "properties": {"tool_calls": {"type": "array", "items": calls[0] if len(calls) == 1 else {"anyOf": calls},
                                          "minItems": 1, "maxItems": most_calls}},
            "required": ["tool_calls"], "additionalProperties": False,
        }
        answer = _hoisted(answer_schema, "answer", definitions) if answer_schema else {"type": "string"}
        answering = {"type": "object", "properties": {"answer": answer},
                     "required": ["answer"], "additionalProperties": False}
        if self.mode == "none":
            turn: dict[str, Any] = answering
        elif self.mode == "required" or self.named is not None:
            turn = calling
        else:
            turn = {"anyOf": [calling, answering]}
        return {**turn, "$defs": definitions} if definitions else turn

    def local_messages(self, conversation: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The conversation as a local chat template takes it: the tools described in the
        system message, earlier calls as the assistant's JSON, results as user messages."""
        names: dict[str, str] = {}
        out: list[dict[str, Any]] = []
        for message in conversation:
            calls = message.get("tool_calls")
            if message.get("role") == "assistant" and calls:
                written = []
                for call in calls:
                    function = call.get("function", {})
                    names[str(call.get("id"))] = function.get("name", "")
                    written.append({"name": function.get("name"), "arguments": _arguments(function.get("arguments"))})
                out.append({"role": "assistant", "content": tag.summary(json.dumps({"tool_calls": written}))})
            elif message.get("role") == "tool":
                name = message.get("name") or names.get(str(message.get("tool_call_id")), "tool")
                heading = tag.instructions(f"Result of {name} (call {message.get('tool_call_id')}):\n")
                out.append({"role": "user", "content": heading + tag.as_tagged(message.get("content") or "")})
            else:
                out.append(dict(message))
        guide = tag.instructions(self._guide())
        if out and out[0].get("role") == "system":
            out[0] = {**out[0], "content": tag.as_tagged(out[0].get("content") or "") + tag.instructions("\n\n") + guide}
        else:
            out.insert(0, {"role": "system", "content": guide})
        return out

    def _guide(self) -> str:
        lines = []
        if self.callable:
            lines.append('To call tools, reply {"tool_calls": [{"name": …, "arguments": {…}}]}. Tools:')
            lines += [f"- {s.name}: {s.description or '(no description)'} Arguments: "
                      f"{json.dumps(_object_schema(s.parameters).get('properties', {}))}" for s in self.callable]
        if self.mode == "auto" and self.named is None:
            lines.append('When the results answer the request, reply {"answer": …}.')
        elif self.mode == "none":
            lines.append('Reply {"answer": …}.')
        return "\n".join(lines)

    def read_local(self, text: str) -> tuple[str, list[tuple[str, str]]]:
        """A local engine's decoded turn: (the answer text, the calls as (name, arguments JSON))."""
        try:
            turn = json.loads(text)
        except ValueError:
            return text, []
        if not isinstance(turn, dict):
            return text, []
        if "tool_calls" in turn:
            return "", [(str(c.get("name")), json.dumps(c.get("arguments", {}))) for c in turn["tool_calls"]]
        answer = turn.get("answer", "")
        return (answer if isinstance(answer, str) else json.dumps(answer)), []

    def local_reply(self, text: str, calls: Sequence[ToolCall], answer_is_json: bool) -> str:
        """What a local engine would have decoded for this turn (replay answers with it)."""
        if calls:
            return json.dumps({"tool_calls": [{"name": c.name, "arguments": c.arguments} for c in calls]})
        return json.dumps({"answer": json.loads(text) if answer_is_json else text})

    def validated(self, raw: Sequence[tuple[str | None, str, str]], salt: str) -> tuple[list[ToolCall], str | None]:
        """The calls (id, name, arguments JSON) as typed ToolCalls, and what is wrong with
        them (None when every call names a tool it may call with arguments its schema takes)."""
        calls: list[ToolCall] = []
        problems: list[str] = []
        allowed = {s.name for s in self.callable}
        if self.mode == "required" or self.named is not None:
            if not raw:
                problems.append(f"tool_choice is {self.named or 'required'}: the answer must call "
                                f"{self.named or 'a tool'}, and it called none")
        for index, (call_id, name, arguments) in enumerate(raw):
            spec = self.spec(name)
            if spec is None or name not in allowed:
                known = ", ".join(sorted(allowed)) or "none (tool_choice is none)"
                problems.append(f"call {index + 1} names {name!r}, which is not a tool it may call ({known})")
                continue
            wrong = answer_problems(spec.parameters, arguments or "{}")
            if wrong:
                problems.append(f"call {index + 1} to {name}: {wrong}")
                continue
            ident = call_id or new_call_id(salt, index, name, arguments)
            calls.append(ToolCall(id=ident, name=name, arguments=json.loads(arguments or "{}")))
        return calls, "; ".join(problems) or None


def new_call_id(salt: str, index: int, name: str, arguments: str) -> str:
    """An id for a call its model gave none (local engines): the same turn gets the same ids,
    so a replayed run's conversation is the original's."""
    return "call_" + hashlib.sha256(f"{salt}:{index}:{name}:{arguments}".encode()).hexdigest()[:16]


def tool_set(tools: Sequence[ToolLike] | None, tool_choice: ToolChoice | None,
             parallel_tool_calls: bool | None = None) -> ToolSet | None:
    """The call's tools checked: well-formed, names unique, `tool_choice` one of auto,
    required, none or a declared tool. None when the call has no tools."""
    if not tools:
        if tool_choice not in (None, "none"):
            raise UserError(f"tool_choice={tool_choice!r} was given without tools: pass tools=[…] as well")
        return None
    specs = tuple(spec_of(t) for t in tools)
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise UserError(f"two tools are named {spec.name!r}: tool names must be unique in one call; rename one")
        seen.add(spec.name)
        check_schema(spec.parameters)
    mode: Literal["auto", "required", "none"] = "auto"
    named: str | None = None
    if isinstance(tool_choice, Mapping):
        named = str((tool_choice.get("function") or {}).get("name") or "")
    elif tool_choice in _ALLOWED_MODES:
        mode = tool_choice  # type: ignore[assignment]
    elif isinstance(tool_choice, str):
        named = tool_choice
    if named is not None and named not in seen:
        raise UserError(f"tool_choice names {named!r}, which is not among the tools given "
                        f"({', '.join(sorted(seen))}); name one of them, or auto, required or none")
    raw_choice = ({"type": "function", "function": {"name": named}} if named is not None
                  else tool_choice if tool_choice is not None else None)
    return ToolSet(specs, "required" if named is not None else mode, named,
                   True if parallel_tool_calls is None else parallel_tool_calls, raw_choice)


def spec_of(tool: ToolLike) -> ToolSpec:
    """A ToolSpec from a ToolSpec, an object with `.spec`, or an OpenAI tool dict."""
    if isinstance(tool, ToolSpec):
        return tool
    if isinstance(tool, HasToolSpec):
        return tool.spec
    if isinstance(tool, Mapping):
        function = tool.get("function") if tool.get("type") == "function" else tool
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return ToolSpec(name=function["name"], description=function.get("description") or "",
                            parameters=dict(function.get("parameters") or {"type": "object", "properties": {}}))
    raise UserError(f"not a tool: {tool!r}; pass an OpenAI tool dict "
                    '({"type": "function", "function": {"name": …, "parameters": {…}}}), a ToolSpec or a turnout Tool')


def _shortest_text(schema: dict[str, Any], max_tokens: int) -> float:
    """The shortest free-text bound in `schema` once fitted to `max_tokens` (0: it does not fit)."""
    from turnout.engines.schema_budget import fit_to_budget
    from turnout.errors import SchemaRefused

    try:
        fitted = fit_to_budget(grammar_schema(schema), max_tokens, 6).schema
    except SchemaRefused:
        return 0
    bounds: list[float] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "string" and not {"enum", "const", "pattern"} & node.keys():
                bounds.append(node.get("maxLength", float("inf")))
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(fitted)
    return min(bounds, default=float("inf"))


def _hoisted(schema: dict[str, Any], prefix: str, definitions: dict[str, Any]) -> dict[str, Any]:
    """`schema` without its own `$defs`: they move into `definitions` under `prefix.`, and its
    references follow them (a schema nested in the turn's cannot keep root-relative refs)."""
    own = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    if not own:
        return schema

    def moved(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: moved(v) for k, v in node.items() if k not in ("$defs", "definitions")}
            ref = node.get("$ref")
            if isinstance(ref, str):
                for root in ("#/$defs/", "#/definitions/"):
                    if ref.startswith(root):
                        out["$ref"] = f"#/$defs/{prefix}.{ref[len(root):]}"
            return out
        if isinstance(node, list):
            return [moved(v) for v in node]
        return node

    for name, definition in own.items():
        definitions[f"{prefix}.{name}"] = moved(definition)
    return moved(schema)  # type: ignore[no-any-return]


def _object_schema(parameters: dict[str, Any]) -> dict[str, Any]:
    return parameters if parameters.get("type") == "object" else {"type": "object", **parameters}


def _arguments(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments
