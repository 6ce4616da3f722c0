"""`ChatTurnout`: a LangChain chat model on turnout's door.

    from langchain.agents import create_agent  # pip install "turnout[langchain]"
    from turnout.integrations.langchain import ChatTurnout, langchain_tool

    agent = create_agent(ChatTurnout("coder"), [langchain_tool(t) for t in repo.reading()])

Every call goes through `turnout.engines.complete()` / `stream()`: the role's config (local
engine, cloud model, fallbacks, fleet), the local constraint that keeps a small model's tool
calls well-formed, the privacy guard, the `chat` span and the run's recording. LangChain's
`bind_tools`, `with_structured_output` (through a tool call), streaming and async all work,
so LangChain's `create_agent`, LangGraph's `ToolNode` and its `create_react_agent` (deprecated
since LangGraph 1.0 in favour of `create_agent`) run on it.

What each message is, for the egress guard: a system message is `instructions`, a human
message the user's `request`, an AI message a `summary` a model wrote, and a tool message
`tool_output` — unless the tool came from `langchain_tool()`, whose messages keep the kinds
the turnout tool gave its parts (a location stays a `path`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

from turnout._sync import run_sync
from turnout.agents.tools import Tool
from turnout.config import Settings
from turnout.engines import Completion, ToolCallDelta, complete, stream, tag
from turnout.engines.scripted import Script
from turnout.engines.tag import Part, Tagged

PARTS_KEY = "turnout_parts"  # a tool message's artifact: its content's tagged parts


class ChatTurnout(BaseChatModel):
    """A LangChain chat model that calls a turnout role (`"coder"`, your own `"triage"`), a
    litellm model string, or a `Script` — through turnout's door."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    role_or_model: str
    temperature: float | None = 0.0
    max_tokens: int | None = 512
    settings: Settings | None = Field(None, exclude=True)
    script: Script | None = Field(None, exclude=True)  # held: a Script lives while its model does

    def __init__(self, role_or_model: str | Script = "planner", **kwargs: Any) -> None:
        script = role_or_model if isinstance(role_or_model, Script) else None
        super().__init__(role_or_model=script.model if script else role_or_model, script=script, **kwargs)  # type: ignore[call-arg]

    @property
    def _llm_type(self) -> str:
        return "turnout"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"role_or_model": self.role_or_model, "temperature": self.temperature, "max_tokens": self.max_tokens}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool | Tool],
        *,
        tool_choice: str | bool | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Tools for every call of the bound model: LangChain tools, functions, pydantic
        classes, OpenAI tool dicts or turnout Tools. `tool_choice`: auto, none, a tool's name,
        or any / required / True for "call some tool"."""
        formatted = [t.spec.openai() if isinstance(t, Tool) else convert_to_openai_tool(t) for t in tools]
        choice: Any = tool_choice
        if tool_choice is True or tool_choice == "any":
            choice = "required"
        elif tool_choice is False:
            choice = None
        return self.bind(tools=formatted, tool_choice=choice, **kwargs)

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:
        return run_sync(self._agenerate(messages, stop, **kwargs))

    async def _agenerate(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> ChatResult:
        answer: Completion[Any] = await complete(self.role_or_model, _conversation(messages), **self._call(stop, kwargs))
        return ChatResult(generations=[ChatGeneration(message=_message(answer))])

    def _stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield from run_sync(_collect(self._astream(messages, stop, **kwargs)))

    async def _astream(
        self, messages: list[BaseMessage], stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        answer = stream(self.role_or_model, _conversation(messages), **self._call(stop, kwargs))
        async for event in answer.events():
            if isinstance(event, ToolCallDelta):
                chunk = AIMessageChunk(content="", tool_call_chunks=[{
                    "name": event.name, "args": event.arguments, "id": event.id, "index": event.index,
                    "type": "tool_call_chunk"}])
            else:
                chunk = AIMessageChunk(content=event)
                if run_manager is not None:
                    await run_manager.on_llm_new_token(event)
            yield ChatGenerationChunk(message=chunk)
        if answer.result is not None:
            yield ChatGenerationChunk(message=AIMessageChunk(
                content="", usage_metadata=_usage(answer.result), response_metadata=_metadata(answer.result),
                chunk_position="last"))

    def _call(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        call = {"temperature": self.temperature, "max_tokens": self.max_tokens, "settings": self.settings, **kwargs}
        call.pop("ls_structured_output_format", None)  # LangChain's tracing hint, not a model parameter
        if stop:
            call["stop"] = stop
        return call


def langchain_tool(tool: Tool) -> StructuredTool:
    """A turnout Tool as a LangChain tool (for `ToolNode`, `create_react_agent`, `create_agent`):
    its schema and description; each call traced, recorded and replayed as an Agent's are
    (`Tool.call`); its result's tagged parts carried to `ChatTurnout`, so the guard sees a
    location as a `path`, not as tool output."""

    async def run(**arguments: Any) -> tuple[str, dict[str, Any]]:
        result = await tool.call(arguments)
        parts = [part.model_dump() for part in result.content.parts]
        return str(result.content), {PARTS_KEY: parts}

    return StructuredTool.from_function(
        coroutine=run, name=tool.name, description=tool.description or tool.name, args_schema=tool.arguments or tool.spec.parameters,
        response_format="content_and_artifact",
    )


def _conversation(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        text = message.text if isinstance(message.content, list) else str(message.content)
        if isinstance(message, SystemMessage):
            out.append({"role": "system", "content": tag.instructions(text)})
        elif isinstance(message, HumanMessage):
            out.append({"role": "user", "content": tag.request(text)})
        elif isinstance(message, AIMessage):
            entry: dict[str, Any] = {"role": "assistant", "content": tag.summary(text) if text else None}
            if message.tool_calls:
                entry["tool_calls"] = [
                    {"id": call["id"], "type": "function",
                     "function": {"name": call["name"], "arguments": json.dumps(call["args"])}}
                    for call in message.tool_calls
                ]
            out.append(entry)
        elif isinstance(message, ToolMessage):
            out.append({"role": "tool", "tool_call_id": message.tool_call_id, "name": message.name,
                        "content": _tool_content(message, text)})
        else:
            out.append({"role": "user", "content": tag.request(text)})
    return out


def _tool_content(message: ToolMessage, text: str) -> Tagged | Part:
    artifact = message.artifact
    if isinstance(artifact, dict) and isinstance(artifact.get(PARTS_KEY), list):
        parts = tuple(Part.model_validate(part) for part in artifact[PARTS_KEY])
        if "".join(p.text for p in parts) == text:  # the content was not changed on the way
            return Tagged(parts=parts)
    return tag.tool_output(text, origin=message.name)


def _message(answer: Completion[Any]) -> AIMessage:
    return AIMessage(
        content=answer.text,
        tool_calls=[{"name": c.name, "args": c.arguments, "id": c.id, "type": "tool_call"} for c in answer.tool_calls],
        usage_metadata=_usage(answer),
        response_metadata=_metadata(answer),
    )


def _usage(answer: Completion[Any]) -> UsageMetadata:
    return UsageMetadata(input_tokens=answer.usage.input_tokens, output_tokens=answer.usage.output_tokens,
                         total_tokens=answer.usage.total_tokens)


def _metadata(answer: Completion[Any]) -> dict[str, Any]:
    return {"model_name": answer.model, "finish_reason": answer.finish_reason, "locality": answer.locality,
            "cost_usd": answer.cost_usd, "role": answer.role}


async def _collect(chunks: AsyncIterator[ChatGenerationChunk]) -> list[ChatGenerationChunk]:
    return [chunk async for chunk in chunks]
