"""Your own agents: a model, instructions, tools and an output type, in a loop.

    from turnout.agents import Agent, tool

    @tool
    def search_code(query: str) -> list[str]:
        '''Paths and lines where the repository's code mentions `query`.'''

    agent = Agent("triage", model="llamacpp/smollm2", instructions="Find where things live.",
                  tools=[search_code], output_type=Location, max_turns=6)
    result = await agent.run("Where is the tax for a region computed?")
    result.output  # a Location

A run is model turn → the tool calls it made (run concurrently) → their results back → the
next turn, until the model answers without calling a tool, or a limit is reached (turns,
tokens, cost, wall time), which raises BudgetExceeded with the transcript. Every model call
goes through the door (`complete()`: config, local constraint, privacy guard, recording) and
every tool call through `Tool.call()` (span, recording, replay), so each turn is a `chat`
span and each tool call an `execute_tool` span, under one `invoke_agent` span; a replay
answers the tool calls from the recording and runs no tool unless it is named live.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from turnout._sync import run_sync
from turnout.agents._base import as_request
from turnout.agents.tools import Tool, ToolLike, as_tool
from turnout.config import Settings
from turnout.engines import Completion, Usage, complete, tag
from turnout.engines._meter import usage_meter
from turnout.engines.scripted import Script
from turnout.engines.tag import Content, Part, Tagged, plain_messages
from turnout.engines.tool_calls import ToolChoice
from turnout.errors import BudgetExceeded, UserError
from turnout.telemetry._spans import agent_span

OutputT = TypeVar("OutputT", bound=BaseModel)


class AgentResult(BaseModel, Generic[OutputT]):
    """What a run of an Agent gave: its answer, and how it got there."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    agent: str
    output: OutputT | None = Field(None, description="The answer in the agent's output_type, when it has one.")
    text: str = Field("", description="The answer's text (its JSON when output_type is set).")
    messages: list[dict[str, Any]] = Field(description="The whole conversation, tool calls and results included.")
    turns: int
    tool_calls: int
    usage: Usage = Field(description="The tokens of this agent's own model turns.")
    total_tokens: int = Field(description="All tokens the run used, its sub-agents' and summaries' included.")
    cost_usd: float | None = Field(description="The run's cost, all calls included; None when a model has no price.")


class Agent(Generic[OutputT]):
    """An agent you define: `Agent(name, model=…, instructions=…, tools=[…], output_type=…)`."""

    def __init__(
        self,
        name: str,
        *,
        model: str | Script | None = None,
        instructions: str = "",
        tools: Sequence[ToolLike | Agent[Any]] = (),
        output_type: type[OutputT] | None = None,
        tool_choice: ToolChoice = "auto",
        max_turns: int = 8,
        max_tokens_total: int | None = None,
        max_cost_usd: float | None = None,
        max_wall_s: float | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = 512,
        description: str | None = None,
        settings: Settings | None = None,
        input_key: str = "request",
        output_key: str = "answer",
    ) -> None:
        """`model`: a role (`"coder"`, or your own role in `[roles]`), a litellm model string or
        a `Script`; by default the role named `name`. `tools`: functions, `Tool`s, or agents
        (each becomes a tool through `as_tool()`). `max_tokens` bounds one turn's answer;
        `max_tokens_total`, `max_cost_usd` and `max_wall_s` the whole run, sub-agents included.
        `input_key`/`output_key`: the state keys it reads and writes as a LangGraph node."""
        if max_turns < 1:
            raise UserError(f"agent {name}: max_turns is {max_turns}; it must be at least 1")
        self.name = name
        self.script = model if isinstance(model, Script) else None  # held: a script lives while its agent does
        self.model: str = model.model if isinstance(model, Script) else model or name
        self.instructions = instructions
        self.tools = [as_tool(item) for item in tools]
        seen: set[str] = set()
        for item in self.tools:
            if item.name in seen:
                raise UserError(f"agent {name}: two tools are named {item.name!r}; give one another name (Tool(fn, name=…))")
            seen.add(item.name)
        self.output_type = output_type
        self.tool_choice = tool_choice
        self.max_turns = max_turns
        self.max_tokens_total = max_tokens_total
        self.max_cost_usd = max_cost_usd
        self.max_wall_s = max_wall_s
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.description = description or instructions or f"the {name} agent"
        self.settings = settings
        self.input_key = input_key
        self.output_key = output_key

    def __repr__(self) -> str:
        return f"Agent({self.name!r}, model={self.model!r}, tools={[t.name for t in self.tools]})"

    async def run(self, request: Content | Sequence[Mapping[str, Any]]) -> AgentResult[OutputT]:
        """Run to an answer: `request` is the task (a plain string is the user's request) or
        a whole conversation to continue."""
        with agent_span(self.name) as span, usage_meter() as meter:
            conversation = self._start(request)
            started = time.monotonic()
            tools = {t.name: t for t in self.tools}
            calls_made = 0
            own = Usage()
            for turn in range(1, self.max_turns + 1):
                self._check_budget(meter.totals.tokens, meter.totals.cost_usd, meter.totals.unpriced_calls,
                                   started, conversation, span)
                answer: Completion[Any] = await complete(
                    self.model, conversation, schema=self.output_type, tools=[t.spec for t in self.tools] or None,
                    tool_choice=self.tool_choice if self.tools else None, temperature=self.temperature,
                    max_tokens=self.max_tokens, settings=self.settings,
                )
                own = own + answer.usage
                conversation.append(answer.message())
                if not answer.tool_calls:
                    return AgentResult(
                        agent=self.name, output=answer.output, text=answer.text, messages=plain_messages(conversation),
                        turns=turn, tool_calls=calls_made, usage=own, total_tokens=meter.totals.tokens,
                        cost_usd=None if meter.totals.unpriced_calls else meter.totals.cost_usd,
                    )
                calls_made += len(answer.tool_calls)
                results = await asyncio.gather(*(
                    tools[call.name].call(call.arguments, call_id=call.id, settings=self.settings)
                    for call in answer.tool_calls
                ))
                conversation.extend(call.result(result.content) for call, result in zip(answer.tool_calls, results))
            raise self._exceeded(
                "max_turns", f"agent {self.name} made {self.max_turns} model turns (max_turns) and was still calling "
                "tools; raise max_turns, or tell it in its instructions when to answer", conversation, span,
            )

    def run_sync(self, request: Content | Sequence[Mapping[str, Any]]) -> AgentResult[OutputT]:
        """`run()` for scripts and REPLs."""
        return run_sync(self.run(request))

    def as_tool(self, *, name: str | None = None, description: str | None = None) -> Tool:
        """This agent as a tool of another agent: it takes a `request` and answers with its
        output. The answer is a summary a model wrote (`summary` to the guard)."""
        agent = self

        async def ask(request: str) -> Part:
            result = await agent.run(request)
            return tag.summary(result.text, origin=agent.name)

        ask.__doc__ = description or agent.description
        return Tool(ask, name=name or agent.name, description=description or agent.description, timeout_s=None)

    async def __call__(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """LangGraph node: `state[input_key]` in, `{output_key: output or text}` out."""
        result = await self.run(state[self.input_key])
        return {self.output_key: result.output if self.output_type is not None else result.text}

    # --- one run's steps ---------------------------------------------------------------

    def _start(self, request: Content | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        conversation: list[dict[str, Any]] = []
        if self.instructions:
            conversation.append({"role": "system", "content": tag.instructions(self.instructions)})
        if isinstance(request, (str, Part, Tagged)):
            conversation.append({"role": "user", "content": as_request(request)})
        else:
            conversation.extend(dict(message) for message in request)
        return conversation

    def _check_budget(
        self, tokens: int, cost: float, unpriced: int, started: float, conversation: list[dict[str, Any]], span: Any
    ) -> None:
        if self.max_tokens_total is not None and tokens >= self.max_tokens_total:
            raise self._exceeded("max_tokens_total", f"agent {self.name} used {tokens:,} tokens, its budget is "
                                 f"{self.max_tokens_total:,} (max_tokens_total)", conversation, span)
        if self.max_cost_usd is not None and (cost >= self.max_cost_usd or unpriced):
            spent = "an unknown amount (a model without a price was called)" if unpriced else f"${cost:.4f}"
            raise self._exceeded("max_cost_usd", f"agent {self.name} spent {spent}; its budget is "
                                 f"${self.max_cost_usd} (max_cost_usd)", conversation, span)
        if self.max_wall_s is not None and time.monotonic() - started >= self.max_wall_s:
            raise self._exceeded("max_wall_s", f"agent {self.name} ran {time.monotonic() - started:.1f}s; its "
                                 f"budget is {self.max_wall_s:g}s (max_wall_s)", conversation, span)

    def _exceeded(self, limit: str, message: str, conversation: list[dict[str, Any]], span: Any) -> BudgetExceeded:
        transcript = plain_messages(conversation)
        span.add_event("turnout.agent.transcript", {"turnout.agent.limit": limit,
                                                     "turnout.agent.transcript": json.dumps(transcript, default=str)[:20_000]})
        return BudgetExceeded(message, limit=limit, transcript=transcript)
